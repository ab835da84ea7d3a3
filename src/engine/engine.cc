// Engine (src/engine/engine.h): timers, sending (sealing, relayed paths, address challenges), cancellation
// scopes, RPCs, HELLO, ping and stun. Receiving is in engine_receive.cc, sessions in engine_sessions.cc.
#include "engine/engine.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "common/msgpack_util.h"
#include "crypto/key_cache.h"
#include "engine/message.h"
#include "wire/datagram.h"
#include "wire/frame.h"

namespace storjnet {

namespace {
constexpr size_t kMessageHeader = msg::kHeader;

// Bytes on the wire for a message of `len` bytes (every datagram, fragments included).
size_t sealed_size(size_t len, bool cookie) {
  size_t per = wire::kSealedOverhead + (cookie ? wire::kCookieSize : 0);
  if (len <= wire::kMaxWhole) return per + 1 + len;
  size_t count = (len + wire::kMaxChunk - 1) / wire::kMaxChunk;
  return count * (per + wire::kFragmentHeaderSize) + len;
}
// Bytes on the wire for a PADDED frame: as long as the largest WHOLE one.
size_t padded_size(bool cookie) { return sealed_size(wire::kMaxWhole, cookie); }
}  // namespace

Engine::Engine(Environment& env, Identity identity, EngineConfig config)
    : env_(env),
      identity_(std::move(identity)),
      config_(config),
      reassembler_(config.reassembly),
      guard_(config.amplification, drops_),
      first_contact_(env, config_) {
  set_handler(Method::kPing, [this](const IncomingRequest&, const Reply& r) { r.ok(identity_.id().view()); });
  set_handler(Method::kStun, [](const IncomingRequest& req, const Reply& r) {
    r.ok(pack(std::make_tuple(req.from.endpoint.ip_string(), req.from.endpoint.port)));
  });
}

// ---------------------------------------------------------------- timers

TimerId Engine::schedule(const Scope& s, Duration delay, std::function<void()> fn) {
  if (!usable(s)) return {};
  return schedule_in(s.id_, delay, std::move(fn));
}

bool Engine::usable(const Scope& s) const {
  // A scope of another engine would file our work under an id that engine hands out, and its end would not
  // reach us: a programming error, refused loudly.
  if (s.engine_ && s.engine_ != this) throw std::invalid_argument("Engine: a scope of another engine");
  return s.engine_ != nullptr;
}

TimerId Engine::schedule_in(uint64_t scope, Duration delay, std::function<void()> fn) {
  TimePoint at = env_.now() + delay;
  TimerId id = timers_.schedule(at, std::move(fn), scope);
  if (at < requested_wake_) {
    requested_wake_ = at;
    env_.wake_at(at);
  }
  return id;
}

void Engine::set_handler(Method m, Handler h) {
  uint8_t& slot = handler_of_[static_cast<uint8_t>(m) % kMethodSlots];
  if (slot == 0) {
    handlers_.push_back(std::move(h));
    slot = static_cast<uint8_t>(handlers_.size());
  } else {
    handlers_[slot - 1] = std::move(h);
  }
}

void Engine::update_wake() {
  TimePoint next = timers_.next_deadline();
  if (next != requested_wake_) {
    requested_wake_ = next;
    if (next != TimerQueue::kNever) env_.wake_at(next);
  }
}

void Engine::on_wake() {
  requested_wake_ = TimerQueue::kNever;
  timers_.run_due(env_.now());
  update_wake();
}

// ---------------------------------------------------------------- sending

void Engine::send_frame(Session& s, const Contact& to, ByteView frame) {
  wire::Nonce nonce = wire::make_nonce(s.tx_epoch, s.tx_salt, s.tx_counter++);
  auto via = via_.find(to.key);
  if (via != via_.end() && !via->second.live(env_.now())) {
    via_.erase(via);
    via = via_.end();
  }
  const wire::Cookie* cookie = nullptr;
  if (auto c = cookies_.find(to.endpoint); via == via_.end() && c != cookies_.end()) {
    if (c->second.until > env_.now())
      cookie = &c->second.cookie;
    else
      cookies_.erase(c);
  }
  Bytes dg = msg::seal(config_.network_id, identity_.public_key(), s.key, nonce, frame, cookie);
  if (via == via_.end()) return transmit(to.endpoint, dg);
  // Relayed path: the sealed datagram travels unchanged inside a one-way relay_forward to the relay.
  ++stats_.relayed_out;
  Contact relay = via->second.relay;
  Bytes body = msg::relay_forward(to.id, dg);
  send_message(relay, msg::make(kOneway, 0, static_cast<uint8_t>(Method::kRelay), body), SendKind::kInitiative);
}

void Engine::set_via(const PublicKey& key, const Contact& relay) {
  if (key == relay.key || key == identity_.public_key() || relay.key == identity_.public_key()) return;
  if (via_.size() >= kMaxVia && !via_.count(key)) {
    std::erase_if(via_, [&](const auto& kv) { return !kv.second.live(env_.now()); });
    if (via_.size() >= kMaxVia) via_.erase(via_.begin());
  }
  auto it = via_.find(key);
  bool heard = it != via_.end() && it->second.relay.key == relay.key && it->second.heard;
  via_[key] = Via{relay, env_.now(), heard};
}

bool Engine::heard_via(const PublicKey& key) const {
  auto it = via_.find(key);
  return it != via_.end() && it->second.heard;
}

std::optional<Contact> Engine::via(const PublicKey& key) const {
  auto it = via_.find(key);
  if (it == via_.end()) return std::nullopt;
  return it->second.relay;
}

std::vector<std::pair<PublicKey, Contact>> Engine::via_paths() const {
  std::vector<std::pair<PublicKey, Contact>> out;
  for (const auto& [key, v] : via_)
    if (v.live(env_.now())) out.emplace_back(key, v.relay);
  return out;
}

Contact Engine::direct_target(const Contact& to) const {
  if (direct_after_via_.empty()) return to;
  auto d = direct_after_via_.find(to.key);
  if (d == direct_after_via_.end() || d->second.relay != to.endpoint || via_.count(to.key) ||
      env_.now() - d->second.at >= kViaIdle)
    return to;
  return Contact{to.id, to.key, d->second.from, to.alt};
}

std::string Engine::route(const Contact& given) const {
  if (auto v = via_.find(given.key); v != via_.end() && v->second.live(env_.now()))
    return "relayed via " + v->second.relay.endpoint.to_string() + (v->second.heard ? "" : " unheard");
  const Contact to = direct_target(given);
  if (auto d = direct_after_via_.find(to.key); d != direct_after_via_.end() && d->second.from == to.endpoint) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(env_.now() - d->second.at).count();
    return "direct " + to.endpoint.to_string() + " after a relay, heard " + std::to_string(ms) + " ms ago";
  }
  return "direct " + to.endpoint.to_string();
}

void Engine::send_message(const Contact& given, ByteView message, SendKind kind, uint32_t* msg_id) {
  const Contact to = direct_target(given);
  // A relayed path's relay session is made first: making it later, between our fragments, could evict ours.
  auto v = via_.find(to.key);
  if (v != via_.end())
    if (Session* r = session_for_send(v->second.relay.key)) r->last_used = env_.now();
  // Through a relayed path (send_frame) the bytes go to the relay, and the relay's address budget applies to the
  // relay_forward; the peer's own address budget does not: nothing reaches that address, and no echo through
  // the relay could prove it (a relayed stream once stalled on it for good).
  bool relayed = v != via_.end() && v->second.live(env_.now());
  auto known = sessions_.find(to.key);
  if (known == sessions_.end() && offload_send(given, to, message, kind)) return;  // sent once its key is known
  Session* s = known != sessions_.end() ? &known->second : session_for_send(to.key);
  if (!s) return;
  s->last_used = env_.now();
  bool cookie = cookies_.count(to.endpoint) > 0;
  bool initiative = kind == SendKind::kInitiative;
  // A request to a peer we never answered has not had our address proven to it: when its answer can be large
  // (set_padded), a full-size PADDED frame buys that answer room under the peer's 3x limit, so it needs no
  // challenge round trip. Other requests go as they are: their answers fit 3x anyway.
  if (!relayed && initiative && !s->shown_address && message.size() >= kMessageHeader && message[0] == kRequest &&
      padded_[message[5] % kMethodSlots] && message.size() <= wire::kMaxPadded &&
      guard_.allow(to.endpoint, to.key, padded_size(cookie), true, env_.now())) {
    send_frame(*s, to, wire::encode_padded(message));
    return;
  }
  size_t bytes = sealed_size(message.size(), cookie);
  if (!relayed && !guard_.allow(to.endpoint, to.key, bytes, initiative, env_.now())) {
    // Unproven address over its budget (docs/protocol.md, "Threat model"): hold and ask for the proof.
    drops_.add(DropReason::kAmplificationLimit);
    if (kind != SendKind::kControl && guard_.hold(to.endpoint, to.key, Bytes(message.begin(), message.end()), env_.now()) &&
        !hold_sweep_)
      hold_sweep_ = schedule(config_.amplification.hold_timeout / 2, [this] { sweep_held(); });
    if (kind != SendKind::kControl) send_challenge(to);
    return;
  }
  // An answer or an echo lets the peer prove our address (it carries its unguessable rpc id or token).
  if (!message.empty() && (message[0] == kResponse || message[0] == kError || message[0] == kEcho ||
                           message[0] == kProvingResponse))
    s->shown_address = true;
  if (message.size() <= wire::kMaxWhole) {
    scratch_frame_.resize(1 + message.size());
    scratch_frame_[0] = wire::kFrameWhole;
    std::memcpy(scratch_frame_.data() + 1, message.data(), message.size());
    send_frame(*s, to, scratch_frame_);
    return;
  }
  uint32_t id = msg_id && *msg_id ? *msg_id : ++s->next_msg_id;
  if (id == 0) id = ++s->next_msg_id;
  if (msg_id) *msg_id = id;
  for (auto& f : wire::encode_frames(message, id)) send_frame(*s, to, f);
}


void Engine::transmit(const Endpoint& to, ByteView dg) {
  ++stats_.datagrams_out;
  stats_.bytes_out += dg.size();
  recent_sends_.sent(to, env_.now(), arrivals_);
  env_.send(to, dg);
}

void Engine::challenge(const Contact& to) {
  auto it = sessions_.find(to.key);
  if (it == sessions_.end() || guard_.proven(to.endpoint, to.key)) return;
  TimePoint now = env_.now();
  Duration retry = config_.rpc_timeout / std::max(1, config_.rpc_attempts);
  if (!it->second.challenge_due(now, retry)) return;
  it->second.challenged_now(now);
  send_challenge(to);
}

void Engine::send_challenge(const Contact& to) {
  uint64_t token = guard_.challenge_token(to.endpoint, to.key, env_.random_u64(), env_.now());
  ++stats_.challenges_sent;
  send_message(to, msg::token(kChallenge, token), SendKind::kControl);
}

void Engine::flush_held(const Contact& to) {
  for (auto& m : guard_.release(to.endpoint, to.key)) send_message(to, m, SendKind::kAnswer);
}

void Engine::sweep_held() {
  hold_sweep_ = TimerId{};
  guard_.expire(env_.now());
  if (guard_.holding()) hold_sweep_ = schedule(config_.amplification.hold_timeout / 2, [this] { sweep_held(); });
}

// ---------------------------------------------------------------- cancellation scopes

Engine::Scope Engine::scope() { return Scope(this, next_scope_++); }

void Engine::Scope::end() {
  if (Engine* e = std::exchange(engine_, nullptr)) e->end_scope(id_);
  bound_.end();
}

void Engine::end_scope(uint64_t scope) {
  // Everything is taken out first and destroyed at the end: a destructor (a Once's cancelled callback) may
  // call the engine again.
  std::vector<RpcCallback> rpcs;
  std::vector<std::function<void(std::optional<Contact>)>> hellos;
  std::vector<std::function<void()>> timers, slows;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.scope != scope) {
      ++it;
      continue;
    }
    timers_.cancel(it->second.timer);
    release_share(it->second.to);
    rpcs.push_back(std::move(it->second.cb));
    if (it->second.on_slow) slows.push_back(std::move(it->second.on_slow));
    it = pending_.erase(it);
  }
  for (auto it = hellos_.begin(); it != hellos_.end();) {
    if (it->second.scope != scope) {
      ++it;
      continue;
    }
    timers_.cancel(it->second.timer);
    hellos.push_back(std::move(it->second.cb));
    if (it->second.on_slow) slows.push_back(std::move(it->second.on_slow));
    it = hellos_.erase(it);
  }
  timers_.take_scope(scope, timers);
}

void Engine::request(const Scope& s, const Contact& to, Method m, ByteView payload, RpcCallback cb, RpcOptions opts) {
  if (usable(s)) request_in(s.id_, to, m, payload, std::move(cb), std::move(opts));
}

void Engine::request_in(uint64_t scope, const Contact& to, Method method, ByteView payload, RpcCallback cb,
                        RpcOptions opts) {
  auto m = static_cast<uint8_t>(method);
  auto peer_it = pending_per_peer_.find(to.key);
  auto prefix_it = pending_per_prefix_.find(to.endpoint.prefix());
  bool over_share = (peer_it != pending_per_peer_.end() && peer_it->second.count >= config_.max_pending_per_peer) ||
                    (prefix_it != pending_per_prefix_.end() && prefix_it->second >= config_.max_pending_per_prefix);
  if (over_share) drops_.add(DropReason::kPendingShare);
  if (over_share || pending_.size() >= config_.max_pending_rpcs || payload.size() + kMessageHeader > wire::kMaxMessage) {
    RpcResult r;
    r.status = RpcStatus::kOverloaded;
    r.from = to;
    cb(std::move(r));
    return;
  }
  // Unpredictable: a response carrying it from the address we sent to proves the peer receives there.
  uint32_t id;
  do {
    id = static_cast<uint32_t>(env_.random_u64());
  } while (id == 0 || pending_.count(id));
  PeerPending& peer = pending_per_peer_[to.key];
  ++peer.count;
  const bool overdue_now = peer.overdue && peer.overdue_at == to.endpoint;  // read before the send below
  ++pending_per_prefix_[to.endpoint.prefix()];
  int attempts = opts.attempts > 0 ? opts.attempts : config_.rpc_attempts;
  Duration total = opts.timeout.count() > 0 ? opts.timeout : config_.rpc_timeout;
  Pending& p = pending_[id];
  p.to = to;
  p.message = msg::make(kRequest, id, m, payload);
  p.attempts_left = attempts - 1;
  p.attempt_timeout = attempt_timeout(to, total / attempts);
  p.cb = std::move(cb);
  p.scope = scope;
  p.rtt_sample = opts.rtt_sample;
  p.on_slow = std::move(opts.on_slow);
  p.sent_at = env_.now();
  p.deadline = p.sent_at + total;
  ++stats_.requests_out[m % kMethodSlots];
  send_message(to, p.message, SendKind::kInitiative, &p.msg_id);
  Duration wait = std::min(p.attempt_timeout, total);
  if (p.on_slow) {  // told when overdue, if that comes before the attempt's end
    Duration overdue = overdue_now ? Duration{0} : std::max(answer_due(to), opts.slow_floor);
    p.slow_timer = overdue < wait;
    if (p.slow_timer) wait = overdue;
  }
  p.timer = schedule(wait, [this, id] { on_rpc_timeout(id); });
}

Duration Engine::answer_due(const Contact& to) const {
  auto it = sessions_.find(to.key);
  if (it != sessions_.end() && it->second.rtt.sampled())
    return std::max(it->second.rtt.rto(), 2 * it->second.rtt.srtt());
  return unknown_peer_due();
}

Duration Engine::unknown_peer_due() const { return std::max<Duration>(2 * rtt_all_.rto(), kUnknownPeerDue); }

Duration Engine::attempt_timeout(const Contact& to, Duration share) const {
  auto it = sessions_.find(to.key);
  bool own = it != sessions_.end() && it->second.rtt.sampled();
  return std::max(share, own ? it->second.rtt.rto() : rtt_all_.rto());
}

void Engine::rtt_sampled(const Contact& from, Duration rtt) {
  rtt_all_.sample(rtt);
  if (auto it = sessions_.find(from.key); it != sessions_.end()) it->second.rtt.sample(rtt);
}

void Engine::on_rpc_timeout(uint32_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  p.timer = TimerId{};
  TimePoint now = env_.now();
  // No answer in time, whichever way it goes on: the peer is overdue unless it answered since this attempt went.
  auto peer = pending_per_peer_.find(p.to.key);
  if (peer != pending_per_peer_.end() && peer->second.answered < p.sent_at && p.rtt_sample) {
    peer->second.overdue = true;
    peer->second.overdue_at = p.to.endpoint;
  }
  if (p.slow_timer) {  // overdue: tell the caller, then wait out the attempt's own time
    p.slow_timer = false;
    TimePoint attempt_end = std::min(p.sent_at + p.attempt_timeout, p.deadline);
    p.timer = schedule(std::max(attempt_end - now, Duration{}), [this, id] { on_rpc_timeout(id); });
    auto slow = std::move(p.on_slow);  // p is not used after the hook: it may add requests
    p.on_slow = nullptr;
    if (slow) slow();
    return;
  }
  auto session = sessions_.find(p.to.key);
  // Retransmit while time is left, and only if an answer can come back in it (as the peer's answers take).
  Duration left = p.deadline - now;
  Duration srtt = session != sessions_.end() && session->second.rtt.sampled() ? session->second.rtt.srtt() : Duration{};
  if (p.attempts_left > 0 && left > Duration{} && left <= srtt) {
    // Too late for another copy to be answered in time: wait out the deadline for the copies already sent.
    p.attempts_left = 0;
    p.timer = schedule(left, [this, id] { on_rpc_timeout(id); });
    return;
  }
  if (p.attempts_left > 0 && left > Duration{}) {
    --p.attempts_left;
    ++stats_.retransmits;
    p.sent_at = now;
    p.resent = true;
    send_message(p.to, p.message, SendKind::kInitiative, &p.msg_id);
    p.timer = schedule(std::min(p.attempt_timeout, left), [this, id] { on_rpc_timeout(id); });
    auto resent = std::move(p.on_slow);  // p is not used after the hooks: they may add requests
    p.on_slow = nullptr;
    if (on_unanswered_) {
      Contact to = p.to;
      uint8_t method = p.message.size() > 5 ? p.message[5] : 0;
      on_unanswered_(to, method);
    }
    if (resent) resent();
    return;
  }
  ++stats_.timeouts;
  RpcResult r;
  r.status = RpcStatus::kTimeout;
  r.from = p.to;
  auto cb = std::move(p.cb);
  release_share(p.to);
  pending_.erase(it);
  cb(std::move(r));
}

size_t Engine::redirect(const PublicKey& key, const Endpoint& ep) {
  if (!pending_per_peer_.count(key)) return 0;
  std::vector<uint32_t> ids;
  for (auto& [id, p] : pending_)
    if (p.to.key == key && p.to.endpoint != ep) ids.push_back(id);
  for (uint32_t id : ids) {
    Pending& p = pending_[id];
    if (auto q = pending_per_prefix_.find(p.to.endpoint.prefix()); q != pending_per_prefix_.end() && --q->second == 0)
      pending_per_prefix_.erase(q);
    ++pending_per_prefix_[ep.prefix()];
    p.to.endpoint = ep;
    p.sent_at = env_.now();
    p.resent = true;
    send_message(p.to, p.message, SendKind::kInitiative, &p.msg_id);
  }
  // The peer was just heard from there: whatever was overdue went to its old address.
  if (auto peer = pending_per_peer_.find(key); peer != pending_per_peer_.end()) {
    peer->second.overdue = false;
    peer->second.answered = env_.now();
  }
  return ids.size();
}

void Engine::release_share(const Contact& to) {
  if (auto p = pending_per_peer_.find(to.key); p != pending_per_peer_.end() && --p->second.count == 0)
    pending_per_peer_.erase(p);
  if (auto p = pending_per_prefix_.find(to.endpoint.prefix()); p != pending_per_prefix_.end() && --p->second == 0)
    pending_per_prefix_.erase(p);
}

void Engine::notify(const Contact& to, Method m, ByteView payload) {
  if (payload.size() + kMessageHeader > wire::kMaxMessage) return;
  send_message(to, msg::make(kOneway, 0, static_cast<uint8_t>(m), payload), SendKind::kInitiative);
}

void Engine::respond(const Contact& to, uint32_t rpc_id, uint8_t method, MsgType type, ByteView payload) {
  if (payload.size() + kMessageHeader > wire::kMaxMessage) {
    type = kError;
    payload = as_bytes("response too large");
  }
  // The answer prove_on_answer asked for carries an address challenge, unless the token would make a
  // one-datagram answer two (the newcomer check then pings as before).
  size_t size = kMessageHeader + payload.size();
  if (std::exchange(prove_answer_, false) && type == kResponse && answering_ && answering_rpc_ == rpc_id &&
      answering_->key == to.key && answering_->endpoint == to.endpoint && !guard_.proven(to.endpoint, to.key) &&
      (size > wire::kMaxWhole || size + 8 <= wire::kMaxWhole) && size + 8 <= wire::kMaxMessage) {
    uint64_t token = guard_.challenge_token(to.endpoint, to.key, env_.random_u64(), env_.now());
    ++stats_.answer_challenges;
    Bytes m(size + 8);
    m[0] = kProvingResponse;
    wire::put_u32(m.data() + 1, rpc_id);
    m[5] = method;
    wire::put_u64(m.data() + kMessageHeader, token);
    if (!payload.empty()) std::memcpy(m.data() + kMessageHeader + 8, payload.data(), payload.size());
    send_message(to, m, SendKind::kAnswer);
    return;
  }
  send_message(to, msg::make(type, rpc_id, method, payload), SendKind::kAnswer);
}

bool Engine::prove_on_answer(const Contact& from) {
  if (!answering_ || answering_->key != from.key || answering_->endpoint != from.endpoint ||
      guard_.proven(from.endpoint, from.key))
    return false;
  prove_answer_ = true;
  return true;
}

void Reply::ok(ByteView payload) const {
  if (!oneway_) engine_->respond(to_, rpc_id_, method_, Engine::kResponse, payload);
}

void Reply::error(std::string_view reason) const {
  if (!oneway_) engine_->respond(to_, rpc_id_, method_, Engine::kError, as_bytes(reason));
}

// ---------------------------------------------------------------- hello, ping, stun

void Engine::send_hello(const PendingHello& h, uint64_t challenge) {
  Bytes dg = wire::encode_hello(config_.network_id, {identity_.public_key(), challenge});
  transmit(h.ep, dg);
}

void Engine::hello(const Scope& s, const Endpoint& ep, std::function<void(std::optional<Contact>)> cb,
                   RpcOptions opts) {
  if (usable(s)) hello_in(s.id_, ep, std::move(cb), opts);
}

void Engine::hello_in(uint64_t scope, const Endpoint& ep, std::function<void(std::optional<Contact>)> cb,
                      RpcOptions opts) {
  uint64_t challenge;
  do {
    challenge = env_.random_u64();
  } while (hellos_.count(challenge));
  int attempts = opts.attempts > 0 ? opts.attempts : config_.rpc_attempts;
  Duration total = opts.timeout.count() > 0 ? opts.timeout : config_.rpc_timeout;
  PendingHello& h = hellos_[challenge];
  h.ep = ep;
  h.attempts_left = attempts - 1;
  h.attempt_timeout = total / attempts;
  h.cb = std::move(cb);
  h.on_slow = std::move(opts.on_slow);
  h.scope = scope;
  send_hello(h, challenge);
  Duration wait = h.attempt_timeout;
  if (h.on_slow) {  // an address alone has no round trip of its own: overdue as a peer never timed
    const Duration due = std::max(unknown_peer_due(), opts.slow_floor);
    h.slow_timer = due < wait;
    if (h.slow_timer) {
      h.attempt_end = env_.now() + wait;
      wait = due;
    }
  }
  h.timer = schedule(wait, [this, challenge] { on_hello_timeout(challenge); });
}

void Engine::on_hello_timeout(uint64_t challenge) {
  auto it = hellos_.find(challenge);
  if (it == hellos_.end()) return;
  PendingHello& h = it->second;
  if (h.slow_timer) {  // overdue: tell the caller, then wait out the attempt's own time (from its send)
    h.slow_timer = false;
    const Duration rest = std::max(h.attempt_end - env_.now(), Duration{0});
    h.timer = schedule(rest, [this, challenge] { on_hello_timeout(challenge); });
    auto slow = std::move(h.on_slow);  // h is not used after the hook: it may add hellos
    h.on_slow = nullptr;
    slow();
    return;
  }
  if (h.attempts_left > 0) {
    --h.attempts_left;
    ++stats_.retransmits;
    send_hello(h, challenge);
    h.timer = schedule(h.attempt_timeout, [this, challenge] { on_hello_timeout(challenge); });
    auto slow = std::move(h.on_slow);  // h is not used after the hook: it may add hellos
    h.on_slow = nullptr;
    if (slow) slow();
    return;
  }
  ++stats_.timeouts;
  auto cb = std::move(h.cb);
  hellos_.erase(it);
  cb(std::nullopt);
}

void Engine::ping(const Scope& s, const Contact& to, std::function<void(std::optional<NodeId>)> cb, RpcOptions opts) {
  if (usable(s)) ping_in(s.id_, to, std::move(cb), opts);
}

void Engine::stun(const Scope& s, const Contact& to, std::function<void(std::optional<Endpoint>)> cb, RpcOptions opts) {
  if (usable(s)) stun_in(s.id_, to, std::move(cb), opts);
}

void Engine::ping_in(uint64_t scope, const Contact& to, std::function<void(std::optional<NodeId>)> cb, RpcOptions opts) {
  request_in(scope, to, Method::kPing, {}, [cb = std::move(cb), expect = to.id](RpcResult&& r) {
    if (r.ok() && r.payload.size() == NodeId::kSize && NodeId::from_bytes(r.payload) == expect)
      cb(NodeId::from_bytes(r.payload));
    else
      cb(std::nullopt);
  }, opts);
}

void Engine::stun_in(uint64_t scope, const Contact& to, std::function<void(std::optional<Endpoint>)> cb,
                     RpcOptions opts) {
  request_in(scope, to, Method::kStun, {}, [cb = std::move(cb)](RpcResult&& r) {
    if (r.ok()) {
      if (auto oh = unpack_wire(r.payload)) {
        try {
          auto [ip, port] = oh->get().as<std::tuple<std::string, uint16_t>>();
          if (auto ep = Endpoint::from_ip(ip, port)) return cb(*ep);
        } catch (const std::exception&) {
        }
      }
    }
    cb(std::nullopt);
  }, opts);
}

}  // namespace storjnet
