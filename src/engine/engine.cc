#include "engine/engine.h"

#include <algorithm>
#include <cstring>

#include "common/msgpack_util.h"
#include "wire/datagram.h"
#include "wire/frame.h"

namespace storjnet {

namespace {
constexpr size_t kMessageHeader = 6;  // type (1) | rpc id (4, BE) | method (1)
}

Engine::Engine(Environment& env, Identity identity, EngineConfig config)
    : env_(env), identity_(std::move(identity)), config_(config), reassembler_(config.reassembly) {
  set_handler(Method::kPing, [this](const IncomingRequest&, const Reply& r) { r.ok(identity_.id().view()); });
  set_handler(Method::kStun, [](const IncomingRequest& req, const Reply& r) {
    r.ok(pack(std::make_tuple(req.from.endpoint.ip_string(), req.from.endpoint.port)));
  });
}

// ---------------------------------------------------------------- timers

TimerId Engine::schedule(Duration delay, std::function<void()> fn) {
  TimePoint at = env_.now() + delay;
  TimerId id = timers_.schedule(at, std::move(fn));
  if (at < requested_wake_) {
    requested_wake_ = at;
    env_.wake_at(at);
  }
  return id;
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

// ---------------------------------------------------------------- sessions

Engine::Session* Engine::new_session(const PublicKey& pk, const crypto::SessionKey& key) {
  if (sessions_.size() >= config_.max_sessions) evict_sessions();
  Session& s = sessions_[pk];
  s.key = key;
  s.id = Identity::id_of(pk);
  // A node-wide strictly increasing epoch orders this session after every earlier one, across restarts too.
  last_epoch_ = std::max(env_.unix_us(), last_epoch_ + 1);
  s.tx_epoch = last_epoch_;
  s.tx_salt = env_.random_u64();
  s.last_used = env_.now();
  s.tokens = config_.peer_request_burst;
  s.tokens_at = s.last_used;
  ++stats_.sessions_created;
  return &s;
}

void Engine::evict_sessions() {
  // Drop the least recently used eighth in one pass: amortised O(1) per new session.
  std::vector<TimePoint> ages;
  ages.reserve(sessions_.size());
  for (auto& [pk, s] : sessions_) ages.push_back(s.last_used);
  size_t n = std::max<size_t>(1, ages.size() / 8);
  std::nth_element(ages.begin(), ages.begin() + (n - 1), ages.end());
  TimePoint cutoff = ages[n - 1];
  for (auto it = sessions_.begin(); it != sessions_.end() && n > 0;) {
    if (it->second.last_used <= cutoff) {
      it = sessions_.erase(it);
      --n;
      ++stats_.sessions_evicted;
    } else {
      ++it;
    }
  }
}

Engine::Session* Engine::session_for_send(const PublicKey& pk) {
  auto it = sessions_.find(pk);
  if (it != sessions_.end()) return &it->second;
  crypto::SessionKey key;
  if (!crypto::derive_session_key(identity_, pk, key)) return nullptr;
  return new_session(pk, key);
}

bool Engine::take_token(Session& s) {
  TimePoint now = env_.now();
  double elapsed = std::chrono::duration<double>(now - s.tokens_at).count();
  s.tokens = std::min(config_.peer_request_burst, s.tokens + elapsed * config_.peer_request_rate);
  s.tokens_at = now;
  if (s.tokens < 1) return false;
  s.tokens -= 1;
  return true;
}

// ---------------------------------------------------------------- sending

void Engine::send_frame(Session& s, const Endpoint& to, ByteView frame) {
  wire::Nonce nonce = wire::make_nonce(s.tx_epoch, s.tx_salt, s.tx_counter++);
  Bytes dg;
  dg.reserve(wire::kSealedOverhead + frame.size());
  wire::encode_sealed_header(config_.network_id, identity_.public_key(), nonce, dg);
  crypto::seal(s.key, nonce, {dg.data(), dg.size()}, frame, dg);
  ++stats_.datagrams_out;
  stats_.bytes_out += dg.size();
  env_.send(to, dg);
}

void Engine::send_message(const Contact& to, ByteView message, uint32_t* msg_id) {
  Session* s = session_for_send(to.key);
  if (!s) return;
  s->last_used = env_.now();
  if (message.size() <= wire::kMaxWhole) {
    scratch_frame_.resize(1 + message.size());
    scratch_frame_[0] = wire::kFrameWhole;
    std::memcpy(scratch_frame_.data() + 1, message.data(), message.size());
    send_frame(*s, to.endpoint, scratch_frame_);
    return;
  }
  uint32_t id = msg_id && *msg_id ? *msg_id : ++s->next_msg_id;
  if (id == 0) id = ++s->next_msg_id;
  if (msg_id) *msg_id = id;
  for (auto& f : wire::encode_frames(message, id)) send_frame(*s, to.endpoint, f);
}

static Bytes make_message(uint8_t type, uint32_t rpc_id, uint8_t method, ByteView payload) {
  Bytes m(kMessageHeader + payload.size());
  m[0] = type;
  wire::put_u32(m.data() + 1, rpc_id);
  m[5] = method;
  if (!payload.empty()) std::memcpy(m.data() + kMessageHeader, payload.data(), payload.size());
  return m;
}

void Engine::request(const Contact& to, Method method, ByteView payload, RpcCallback cb, RpcOptions opts) {
  auto m = static_cast<uint8_t>(method);
  if (pending_.size() >= config_.max_pending_rpcs || payload.size() + kMessageHeader > wire::kMaxMessage) {
    RpcResult r;
    r.status = RpcStatus::kOverloaded;
    r.from = to;
    cb(std::move(r));
    return;
  }
  uint32_t id;
  do {
    id = next_rpc_id_++;
  } while (id == 0 || pending_.count(id));
  int attempts = opts.attempts > 0 ? opts.attempts : config_.rpc_attempts;
  Duration total = opts.timeout.count() > 0 ? opts.timeout : config_.rpc_timeout;
  Pending& p = pending_[id];
  p.to = to;
  p.message = make_message(kRequest, id, m, payload);
  p.attempts_left = attempts - 1;
  p.attempt_timeout = total / attempts;
  p.cb = std::move(cb);
  p.sent_at = env_.now();
  ++stats_.requests_out[m % kMethodSlots];
  send_message(to, p.message, &p.msg_id);
  p.timer = schedule(p.attempt_timeout, [this, id] { on_rpc_timeout(id); });
}

void Engine::on_rpc_timeout(uint32_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  p.timer = TimerId{};
  if (p.attempts_left > 0) {
    --p.attempts_left;
    ++stats_.retransmits;
    p.sent_at = env_.now();
    send_message(p.to, p.message, &p.msg_id);
    p.timer = schedule(p.attempt_timeout, [this, id] { on_rpc_timeout(id); });
    return;
  }
  ++stats_.timeouts;
  RpcResult r;
  r.status = RpcStatus::kTimeout;
  r.from = p.to;
  auto cb = std::move(p.cb);
  pending_.erase(it);
  cb(std::move(r));
}

void Engine::notify(const Contact& to, Method m, ByteView payload) {
  if (payload.size() + kMessageHeader > wire::kMaxMessage) return;
  send_message(to, make_message(kOneway, 0, static_cast<uint8_t>(m), payload));
}

void Engine::respond(const Contact& to, uint32_t rpc_id, uint8_t method, MsgType type, ByteView payload) {
  if (payload.size() + kMessageHeader > wire::kMaxMessage) {
    type = kError;
    payload = as_bytes("response too large");
  }
  send_message(to, make_message(type, rpc_id, method, payload));
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
  ++stats_.datagrams_out;
  stats_.bytes_out += dg.size();
  env_.send(h.ep, dg);
}

void Engine::hello(const Endpoint& ep, std::function<void(std::optional<Contact>)> cb, RpcOptions opts) {
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
  send_hello(h, challenge);
  h.timer = schedule(h.attempt_timeout, [this, challenge] { on_hello_timeout(challenge); });
}

void Engine::on_hello_timeout(uint64_t challenge) {
  auto it = hellos_.find(challenge);
  if (it == hellos_.end()) return;
  PendingHello& h = it->second;
  if (h.attempts_left > 0) {
    --h.attempts_left;
    ++stats_.retransmits;
    send_hello(h, challenge);
    h.timer = schedule(h.attempt_timeout, [this, challenge] { on_hello_timeout(challenge); });
    return;
  }
  ++stats_.timeouts;
  auto cb = std::move(h.cb);
  hellos_.erase(it);
  cb(std::nullopt);
}

void Engine::ping(const Contact& to, std::function<void(std::optional<NodeId>)> cb, RpcOptions opts) {
  request(to, Method::kPing, {}, [cb = std::move(cb), expect = to.id](RpcResult&& r) {
    if (r.ok() && r.payload.size() == NodeId::kSize && NodeId::from_bytes(r.payload) == expect)
      cb(NodeId::from_bytes(r.payload));
    else
      cb(std::nullopt);
  }, opts);
}

void Engine::stun(const Contact& to, std::function<void(std::optional<Endpoint>)> cb, RpcOptions opts) {
  request(to, Method::kStun, {}, [cb = std::move(cb)](RpcResult&& r) {
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

// ---------------------------------------------------------------- receiving

void Engine::on_datagram(const Endpoint& from, ByteView data) {
  ++stats_.datagrams_in;
  stats_.bytes_in += data.size();
  auto r = wire::decode(data, config_.network_id);
  if (!r.datagram) {
    drops_.add(r.drop);
    return;
  }
  if (auto* h = std::get_if<wire::Hello>(&*r.datagram)) {
    if (h->sender == identity_.public_key()) {
      drops_.add(DropReason::kBadKey);
      return;
    }
    // Stateless answer, smaller than the (padded) hello: no amplification, nothing kept.
    Bytes dg = wire::encode_hello_reply(config_.network_id, {identity_.public_key(), h->challenge});
    ++stats_.datagrams_out;
    stats_.bytes_out += dg.size();
    env_.send(from, dg);
  } else if (auto* hr = std::get_if<wire::HelloReply>(&*r.datagram)) {
    auto it = hellos_.find(hr->challenge);
    if (it == hellos_.end() || it->second.ep != from) {
      drops_.add(DropReason::kUnexpectedResponse);
    } else if (hr->responder == identity_.public_key()) {
      drops_.add(DropReason::kBadKey);
    } else {
      auto cb = std::move(it->second.cb);
      timers_.cancel(it->second.timer);
      hellos_.erase(it);
      cb(Contact::from_key(hr->responder, from));
    }
  } else {
    handle_sealed(from, std::get<wire::Sealed>(*r.datagram));
  }
  update_wake();
}

void Engine::handle_sealed(const Endpoint& from, const wire::Sealed& s) {
  if (s.sender == identity_.public_key()) {
    drops_.add(DropReason::kBadKey);
    return;
  }
  uint64_t epoch, salt, counter;
  wire::split_nonce(s.nonce, epoch, salt, counter);
  Session* sess = nullptr;
  auto it = sessions_.find(s.sender);
  if (it != sessions_.end()) {
    sess = &it->second;
    switch (sess->rx.check(epoch, salt, counter)) {
      case crypto::ReplayWindow::Verdict::kReplay: drops_.add(DropReason::kReplay); return;
      case crypto::ReplayWindow::Verdict::kStale: drops_.add(DropReason::kStaleSession); return;
      case crypto::ReplayWindow::Verdict::kFresh: break;
    }
    if (!crypto::open(sess->key, s.nonce, s.header, s.ciphertext, scratch_plain_)) {
      drops_.add(DropReason::kAuthFailed);
      return;
    }
  } else {
    // Unknown sender: derive the key (uncached) and authenticate before keeping any state for it.
    crypto::SessionKey key;
    if (!crypto::derive_session_key(identity_, s.sender, key, /*cache=*/false)) {
      drops_.add(DropReason::kBadKey);
      return;
    }
    if (!crypto::open(key, s.nonce, s.header, s.ciphertext, scratch_plain_)) {
      drops_.add(DropReason::kAuthFailed);
      return;
    }
    crypto::remember_session_key(identity_, s.sender, key);
    sess = new_session(s.sender, key);
  }
  sess->rx.accept(epoch, salt, counter);
  sess->last_used = env_.now();
  Contact contact{sess->id, s.sender, from};

  auto frame = wire::decode_frame(scratch_plain_);
  if (!frame) {
    drops_.add(DropReason::kBadFrame);
    return;
  }
  if (frame->type == wire::kFrameWhole) {
    Bytes message(frame->body.begin(), frame->body.end());
    handle_message(contact, message);
    return;
  }
  Bytes message;
  switch (reassembler_.add(contact.id, from, frame->msg_id, frame->index, frame->count, frame->body, env_.now(),
                           message, drops_)) {
    case wire::Reassembler::Result::kComplete: handle_message(contact, message); break;
    case wire::Reassembler::Result::kIncomplete:
      if (!reassembly_sweep_) reassembly_sweep_ = schedule(config_.reassembly.timeout, [this] { sweep_reassembly(); });
      break;
    case wire::Reassembler::Result::kDuplicate: drops_.add(DropReason::kReplay); break;
    case wire::Reassembler::Result::kInvalid: drops_.add(DropReason::kBadFrame); break;
    case wire::Reassembler::Result::kOverLimit: drops_.add(DropReason::kReassemblyLimit); break;
    case wire::Reassembler::Result::kShortFragment: drops_.add(DropReason::kShortFragment); break;
  }
}

void Engine::sweep_reassembly() {
  reassembly_sweep_ = TimerId{};
  drops_.add(DropReason::kReassemblyTimeout, reassembler_.expire(env_.now()));
  if (!reassembler_.empty())
    reassembly_sweep_ = schedule(config_.reassembly.timeout / 2, [this] { sweep_reassembly(); });
}

void Engine::handle_message(const Contact& from, ByteView m) {
  if (m.size() < kMessageHeader || m[0] > kOneway) {
    drops_.add(DropReason::kBadMessage);
    return;
  }
  uint8_t type = m[0];
  uint32_t rpc_id = wire::get_u32(m.data() + 1);
  uint8_t method = m[5];
  ByteView payload = m.subspan(kMessageHeader);

  if (type == kRequest || type == kOneway) {
    if (method >= kMethodSlots) {
      drops_.add(DropReason::kUnknownMethod);
      if (type == kRequest) respond(from, rpc_id, method, kError, as_bytes("unknown method"));
      return;
    }
    auto it = sessions_.find(from.key);
    if (rate_limited_[method] && it != sessions_.end() && !take_token(it->second)) {
      drops_.add(DropReason::kRateLimited);
      if (type == kRequest) respond(from, rpc_id, method, kError, as_bytes("rate limited"));
      return;
    }
    if (on_contact_) on_contact_(from, false);
    ++stats_.requests_in[method % kMethodSlots];
    const Handler& h = handlers_[method];
    if (!h) {
      drops_.add(DropReason::kUnknownMethod);
      if (type == kRequest) respond(from, rpc_id, method, kError, as_bytes("unknown method"));
      return;
    }
    h(IncomingRequest{from, method, payload, type == kOneway}, Reply(this, from, rpc_id, method, type == kOneway));
    return;
  }
  // Any authenticated response proves the sender alive, even a late one whose request already timed out
  // (under load that is common; not counting it would evict healthy contacts).
  if (on_contact_) on_contact_(from, true);
  auto it = pending_.find(rpc_id);
  if (it == pending_.end() || it->second.to.key != from.key) {
    drops_.add(DropReason::kUnexpectedResponse);
    return;
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  timers_.cancel(p.timer);
  RpcResult r;
  r.from = from;
  r.rtt = env_.now() - p.sent_at;
  if (type == kResponse) {
    r.status = RpcStatus::kOk;
    r.payload.assign(payload.begin(), payload.end());
  } else {
    r.status = RpcStatus::kRemoteError;
    r.error.assign(payload.begin(), payload.end());
  }
  p.cb(std::move(r));
}

}  // namespace storjnet
