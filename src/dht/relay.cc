// Relay: reservations, relayed datagrams and the initiator's fallback (src/dht/relay.h, docs/protocol.md 5.3).
#include "dht/relay.h"

#include <algorithm>

#include "dht/punch_codec.h"
#include "dht/value_store.h"
#include "engine/message.h"
#include "wire/datagram.h"

namespace storjnet::dht {

namespace {
constexpr uint8_t kListVersion = 1;
constexpr Duration kRefusedFor = std::chrono::minutes(5);  // a relay that refused us is not asked again sooner
constexpr double kReserveRate = 1;                          // reservation requests served per peer per second
}  // namespace

// ------------------------------------------------------------ codecs

Bytes encode_reservation(uint32_t seconds) {
  Bytes out(4);
  wire::put_u32(out.data(), seconds);
  return out;
}

std::optional<uint32_t> decode_reservation(ByteView in) {
  if (in.size() != 4) return std::nullopt;
  uint32_t s = wire::get_u32(in.data());
  if (s == 0 || s > 3600) return std::nullopt;
  return s;
}

Bytes encode_relay_list(const std::vector<Contact>& relays) {
  size_t n = std::min(relays.size(), Relay::kMaxListed);
  Bytes out{kListVersion, static_cast<uint8_t>(n)};
  for (size_t i = 0; i < n; ++i) {
    out.insert(out.end(), relays[i].key.begin(), relays[i].key.end());
    Bytes ep = encode_punch_endpoint(relays[i].endpoint);
    out.insert(out.end(), ep.begin(), ep.end());
  }
  return out;
}

std::optional<std::vector<Contact>> decode_relay_list(ByteView in) {
  if (in.size() < 2 || in[0] != kListVersion || in[1] > Relay::kMaxListed) return std::nullopt;
  std::vector<Contact> out;
  size_t at = 2;
  for (size_t i = 0; i < in[1]; ++i) {
    PublicKey key;
    if (in.size() < at + key.size() + 1) return std::nullopt;
    std::copy_n(in.begin() + static_cast<ptrdiff_t>(at), key.size(), key.begin());
    at += key.size();
    size_t len = in[at] == 4 ? 7 : 19;  // family byte | address | port; decode_punch_endpoint checks the family
    if (in.size() < at + len) return std::nullopt;
    auto ep = decode_punch_endpoint(in.subspan(at, len));
    if (!ep) return std::nullopt;
    at += len;
    out.push_back(Contact::from_key(key, *ep));
  }
  if (at != in.size()) return std::nullopt;
  return out;
}

std::string relay_list_key(const NodeId& id) { return self_named_user_key(id); }

// ------------------------------------------------------------ setup

Relay::Relay(Engine& engine, RoutingTable& table, const DhtConfig& cfg, std::function<bool()> reachable,
             Publish publish, Fetch fetch)
    : engine_(engine),
      table_(table),
      cfg_(cfg),
      reachable_(std::move(reachable)),
      publish_(std::move(publish)),
      fetch_(std::move(fetch)),
      reserve_rate_(kReserveRate, 1024),
      scope_(engine.scope()) {
  total_ = {cfg_.relay_total_rate, engine_.now()};
  engine_.set_handler(Method::kRelayReserve, [this](const IncomingRequest& q, const Reply& r) { on_reserve(q, r); });
  engine_.set_handler(Method::kRelay, [this](const IncomingRequest& q, const Reply&) { on_forward(q); });
  engine_.set_handler(Method::kRelayed, [this](const IncomingRequest& q, const Reply&) { on_deliver(q); });
  engine_.set_rate_limited(Method::kRelayReserve);
  schedule_maintain();
}

void Relay::schedule_maintain() {
  Duration every = cfg_.keepalive_interval > Duration::zero() ? cfg_.keepalive_interval : std::chrono::seconds(15);
  maintain_timer_ = engine_.schedule(scope_, every, [this] { maintain(); });
}

Relay::~Relay() {
  scope_.end();
  for (Method m : {Method::kRelayReserve, Method::kRelay, Method::kRelayed}) engine_.set_handler(m, nullptr);
}

void Relay::refuse() {
  ++refused_count_;
  engine_.drops().add(DropReason::kRelayRefused);
}

void Relay::fill(DhtStats& s) const {
  s.relay_reservations_granted = reservations_granted_;
  s.relay_forwarded = forwarded_;
  s.relay_forwarded_bytes = forwarded_bytes_;
  s.relay_refused = refused_count_;
  s.relay_reservations_served = served_.size();
  s.relay_circuits = circuit_count_;
  s.relay_reservations_held = held_.size();
  s.relay_reservations_made = reservations_made_;
  s.relay_reservations_renewed = reservations_renewed_;
  s.relay_renewals_unanswered = renewals_unanswered_;
  s.relay_paths_switched = paths_switched_;
  s.relay_lists_published = publishes_;
  s.relay_fallbacks = fallbacks_started_;
  s.relay_fallbacks_found = fallbacks_found_;
  s.relayed_out = engine_.stats().relayed_out;
  s.relayed_in = engine_.stats().relayed_in;
}

std::vector<Contact> Relay::relays() const {
  std::vector<Contact> out;
  for (const auto& [id, h] : held_) out.push_back(h.relay);
  std::sort(out.begin(), out.end(), [](const Contact& a, const Contact& b) { return a.id < b.id; });
  return out;
}

// ------------------------------------------------------------ relay side

void Relay::on_reserve(const IncomingRequest& q, const Reply& r) {
  // Not one-way, and not itself relayed (the engine keeps a path via a relay only for a peer whose last
  // datagram came through one): no reservations or circuits through other relays.
  if (q.oneway || engine_.via(q.from.key)) return refuse();
  if (!cfg_.relay || !((reachable_ && reachable_()) || (open_ && open_()))) {
    refuse();
    return r.error("not relaying");
  }
  // Its deliveries go to the address we see it at: that must be its own.
  if (!engine_.address_proven(q.from.endpoint, q.from.key)) {
    engine_.challenge(q.from);
    return refuse();
  }
  TimePoint now = engine_.now();
  if (!reserve_rate_.allow(q.from.id, now)) return refuse();
  auto it = served_.find(q.from.id);
  if (it != served_.end() && it->second.until <= now) {  // lapsed: its circuits go with it
    circuit_count_ -= circuits_by_target_[q.from.id].size();
    circuits_by_target_.erase(q.from.id);
    served_.erase(it);
    it = served_.end();
  }
  if (it == served_.end()) {
    if (served_.size() >= cfg_.relay_max_reservations) {
      refuse();
      return r.error("relay full");
    }
    auto block = q.from.endpoint.prefix();
    size_t same_block = static_cast<size_t>(std::count_if(served_.begin(), served_.end(), [&](const auto& kv) {
      return kv.second.until > now && kv.second.holder.endpoint.prefix() == block;
    }));
    if (same_block >= kMaxReservationsPerBlock) {
      refuse();
      return r.error("relay full for this address block");
    }
    it = served_.emplace(q.from.id, Reservation{q.from, now}).first;
    ++reservations_granted_;
  }
  it->second.holder = q.from;  // renewed: its address as seen now
  it->second.until = now + cfg_.relay_reservation_life;
  it->second.heard = now;
  r.ok(encode_reservation(static_cast<uint32_t>(
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(cfg_.relay_reservation_life).count()))));
}

bool Relay::pay(TokenBucket& pair, double rate, double burst, size_t bytes, TimePoint now) {
  auto n = static_cast<double>(bytes);
  pair.refill(rate, burst, now);
  total_.refill(cfg_.relay_total_rate, cfg_.relay_total_rate, now);
  if (pair.tokens < n || total_.tokens < n) return false;
  pair.tokens -= n;
  total_.tokens -= n;
  return true;
}

Relay::Circuit* Relay::open_circuit(const Contact& initiator, Reservation& target, TimePoint now) {
  auto& by_initiator = circuits_by_target_[target.holder.id];
  auto it = by_initiator.find(initiator.id);
  if (it == by_initiator.end()) {
    if (by_initiator.size() >= kMaxCircuitsPerTarget || circuit_count_ >= kMaxCircuits) return nullptr;
    it = by_initiator.emplace(initiator.id, Circuit{initiator, target.holder.id, now, {cfg_.relay_pair_burst, now}}).first;
    ++circuit_count_;
  }
  it->second.initiator = initiator;  // its address as seen now (proven by the caller)
  return &it->second;
}

void Relay::on_forward(const IncomingRequest& q) {
  if (!q.oneway || !cfg_.relay || engine_.via(q.from.key)) return refuse();
  auto f = msg::parse_relay_forward(q.payload);
  if (!f || f->target == q.from.id || f->target == engine_.id()) return refuse();
  // Only the sender's own sealed datagram is carried (a header check, no key work).
  auto d = wire::decode(f->inner, engine_.config().network_id);
  auto* sealed = d.datagram ? std::get_if<wire::Sealed>(&*d.datagram) : nullptr;
  if (!sealed || sealed->sender != q.from.key) return refuse();
  TimePoint now = engine_.now();
  Circuit* c = nullptr;
  Contact to;
  if (auto res = served_.find(f->target); res != served_.end() && res->second.until > now) {
    // Initiator -> reserved target. The target's answers will go to the address we see the initiator at.
    if (!engine_.address_proven(q.from.endpoint, q.from.key)) {
      engine_.challenge(q.from);
      return refuse();
    }
    c = open_circuit(q.from, res->second, now);
    to = res->second.holder;
  } else if (auto mine = served_.find(q.from.id); mine != served_.end() && mine->second.until > now) {
    // A reserved node answering an initiator that opened a circuit to it recently.
    auto by_initiator = circuits_by_target_.find(q.from.id);
    if (by_initiator != circuits_by_target_.end())
      if (auto it = by_initiator->second.find(f->target);
          it != by_initiator->second.end() && now - it->second.last < cfg_.relay_circuit_life) {
        c = &it->second;
        to = c->initiator;
      }
  }
  if (!c || !pay(c->bytes, cfg_.relay_pair_rate, cfg_.relay_pair_burst, f->inner.size(), now)) return refuse();
  c->last = now;
  ++forwarded_;
  forwarded_bytes_ += f->inner.size();
  engine_.notify(to, Method::kRelayed, f->inner);
}

void Relay::expire(TimePoint now) {
  for (auto it = served_.begin(); it != served_.end();) {
    if (it->second.until > now) {
      ++it;
      continue;
    }
    if (auto c = circuits_by_target_.find(it->first); c != circuits_by_target_.end()) {
      circuit_count_ -= c->second.size();
      circuits_by_target_.erase(c);
    }
    it = served_.erase(it);
  }
  for (auto t = circuits_by_target_.begin(); t != circuits_by_target_.end();) {
    circuit_count_ -= std::erase_if(t->second, [&](const auto& kv) { return now - kv.second.last >= cfg_.relay_circuit_life; });
    t = t->second.empty() ? circuits_by_target_.erase(t) : std::next(t);
  }
}

// ------------------------------------------------------------ reserving node and initiator

void Relay::on_deliver(const IncomingRequest& q) {
  // Only from our relays, or from a relay we sent through ourselves: no one else may make us open datagrams
  // in its name (they would cost key work under its address budget).
  if (!q.oneway) return refuse();
  if (auto u = used_.find(q.from.key); u != used_.end())
    u->second = engine_.now();
  else if (!held_.count(q.from.id))
    return refuse();
  engine_.on_relayed(q.from, q.payload);  // the engine counts its own refusals
}

void Relay::maintain() {
  schedule_maintain();
  TimePoint now = engine_.now();
  expire(now);
  std::erase_if(refused_, [&](const auto& kv) { return now - kv.second >= kRefusedFor; });
  std::erase_if(asking_, [&](const auto& kv) { return now - kv.second >= 2 * cfg_.rpc_timeout; });
  std::erase_if(used_, [&](const auto& kv) { return now - kv.second >= Engine::kViaIdle; });
  std::erase_if(fallbacks_, [&](const auto& kv) { return now - kv.second.started >= kRetryAfter; });
  if (!cfg_.relay) return;
  bool dual_needed = needs_dual_ && needs_dual_();
  if (reachable_ && reachable_() && !dual_needed) {  // others reach us directly: no reservations
    held_.clear();
    if (published_ != std::vector<NodeId>{}) publish_list();
    return;
  }
  std::erase_if(held_, [&](const auto& kv) { return kv.second.until <= now; });
  // Renewal (and traffic that keeps our NAT open). A request can be answered at once (overloaded): held_ may
  // change under reserve_with, so the list is taken first.
  for (const Contact& r : relays()) reserve_with(r);
  top_up(dual_needed);
}

void Relay::top_up(bool dual_needed) {
  size_t have = held_.size();
  for (const auto& [id, at] : asking_) have += !held_.count(id);
  if (have >= cfg_.relay_reservations) return publish_list();
  // Candidates: every contact of the table, closest to our id first and dial-back confirmed ones before the
  // rest (a relay refuses unless it finds itself reachable; a refusal is remembered for kRefusedFor, and
  // moves on to the next candidate at once). Only the closest few once left a node whose neighbourhood held
  // no relay with none at all, so no initiator could reach it (netlab, 2026-12-03).
  auto candidates = table_.closest_answer(engine_.id(), std::max(4 * cfg_.relay_reservations + 4, table_.size()));
  std::stable_partition(candidates.begin(), candidates.end(), [&](const Contact& c) { return table_.confirmed(c.id); });
  // Unreachable: relays that the peers of the family our reachability is judged on reach (a dual-stack node
  // behind an IPv4 NAT, its IPv6 address open, needs relays with an IPv4 address).
  Endpoint::Family judged = judged_family(engine_.env().families());
  bool need_judged = !(reachable_ && reachable_());
  auto has_judged = [&](const Contact& c) {
    if (c.endpoint.family == judged) return true;
    auto other = other_address_ ? other_address_(c.id) : std::nullopt;
    return other && other->family == judged;
  };
  for (const Contact& c : candidates) {
    if (have >= cfg_.relay_reservations) break;
    if (held_.count(c.id) || asking_.count(c.id) || refused_.count(c.id)) continue;
    if (dual_needed && !(other_address_ && other_address_(c.id))) continue;  // a relay the other family reaches
    if (need_judged && !has_judged(c)) continue;
    reserve_with(c);
    ++have;
  }
  publish_list();
}

void Relay::reserve_with(const Contact& relay) {
  asking_[relay.id] = engine_.now();
  engine_.request(scope_, relay, Method::kRelayReserve, {}, [this, relay](RpcResult&& res) {
    asking_.erase(relay.id);
    auto secs = res.ok() ? decode_reservation(res.payload) : std::nullopt;
    auto held = held_.find(relay.id);
    if (!secs && res.status == RpcStatus::kTimeout && held != held_.end() && held->second.until > engine_.now()) {
      // An unanswered renewal (say our NAT's mapping moved and the relay is checking the new address): the
      // reservation still runs, and the relay follows our new address as soon as it authenticates a datagram
      // from it (heard). Keeping it keeps the published list stable for the initiators that read it.
      ++renewals_unanswered_;
    } else if (!secs) {
      held_.erase(relay.id);
      refused_[relay.id] = engine_.now();
      if (cfg_.relay) {  // the next candidate now, not at the next maintain
        bool dual_needed = needs_dual_ && needs_dual_();
        if (!(reachable_ && reachable_()) || dual_needed) return top_up(dual_needed);
      }
    } else {
      auto [it, added] = held_.try_emplace(relay.id);
      reservations_made_ += added;
      reservations_renewed_ += !added;
      it->second.relay = Contact{relay.id, relay.key, res.from.endpoint};
      it->second.until = engine_.now() + std::chrono::seconds(*secs);
    }
    publish_list();
  }, RpcOptions{cfg_.rpc_timeout, cfg_.rpc_attempts});
}

void Relay::publish_list() {
  if (!publish_) return;
  auto relays = this->relays();
  std::vector<NodeId> ids;
  for (const auto& r : relays) ids.push_back(r.id);
  if (ids == published_) return;
  if (other_address_) {  // each relay once per address: readers of either family find one they reach
    std::vector<Contact> both;
    for (const auto& r : relays) {
      both.push_back(r);
      if (auto other = other_address_(r.id); other && other->family != r.endpoint.family)
        both.push_back(Contact{r.id, r.key, *other});
    }
    relays = std::move(both);
  }
  published_ = ids;
  ++publishes_;
  // A failed put is retried at the next maintain (every keepalive_interval).
  publish_(relay_list_key(engine_.id()), encode_relay_list(relays), scope_.bind<bool>([this, ids](bool ok) {
    if (!ok && published_ == ids) published_.reset();  // unknown: the next publish_list puts whatever the list is
  }));
}

void Relay::punch_started(const Contact& target) {
  if (!cfg_.relay || !fetch_ || target.key == engine_.identity().public_key() || engine_.via(target.key)) return;
  TimePoint now = engine_.now();
  if (auto it = fallbacks_.find(target.id); it != fallbacks_.end() && current(it->second, now)) {
    if (it->second.relays && on_relays_) on_relays_(target.id, *it->second.relays);  // this punch's rendezvous too
    return;
  }
  if (!new_fallback(target)) return;
  engine_.schedule(scope_, kFallbackAfter, [this, id = target.id] { fallback_due(id); });
  using Got = std::optional<OwnedValue>;
  fetch_(relay_list_key(target.id), target.id, scope_.bind<Got>([this, id = target.id](Got v) {
    auto it = fallbacks_.find(id);
    if (it == fallbacks_.end()) return;
    auto list = read_list(id, v);
    Fallback& f = it->second;
    f.relays = list.value_or(std::vector<Contact>{});
    f.listed = engine_.now();
    if (on_relays_ && !f.relays->empty()) on_relays_(id, *f.relays);
    if (f.due && !f.done && hold_ && hold_(id)) {
      // Late: the punch asks B's relays now. Relayed at once, the pair would stay relayed though the punch
      // connects it a round trip later (the answer through the relay sets the path again).
      f.due = false;
      engine_.schedule(scope_, kHoldCheck, [this, id] { fallback_due(id); });
      return;
    }
    fall_back(f);
  }));
}

bool Relay::current(const Fallback& f, TimePoint now) const {
  if (now - f.started >= kRetryAfter) return false;
  return !(f.relays && f.relays->empty() && now - f.listed >= kEmptyListRetry);
}

Relay::Fallback* Relay::new_fallback(const Contact& target) {
  TimePoint now = engine_.now();
  if (fallbacks_.size() >= kMaxFallbacks) {
    std::erase_if(fallbacks_, [&](const auto& kv) { return now - kv.second.started >= kRetryAfter; });
    if (fallbacks_.size() >= kMaxFallbacks) return nullptr;
  }
  Fallback& f = fallbacks_[target.id];
  f = Fallback{};
  f.target = target;
  f.started = now;
  ++fallbacks_started_;
  return &f;
}

std::optional<std::vector<Contact>> Relay::read_list(const NodeId& id, const std::optional<OwnedValue>& v) {
  if (!v) return std::nullopt;
  // The owner's key is the target's own: whoever else put a list under its key's name is not listened to.
  if (Identity::id_of(v->owner) != id) {
    refuse();
    return std::nullopt;
  }
  auto list = decode_relay_list(v->value);
  if (!list) refuse();
  return list;
}

void Relay::reach(const NodeId& id, std::function<void(std::optional<Contact>)> cb) {
  if (!cfg_.relay || !fetch_ || id == engine_.id()) return cb(std::nullopt);
  if (auto it = fallbacks_.find(id); it != fallbacks_.end() && current(it->second, engine_.now())) {
    // Read lately (by a punch's fallback or another reach): its relayed path if one is set, else nothing new.
    const Contact& t = it->second.target;
    auto via = t.key == PublicKey{} ? std::nullopt : engine_.via(t.key);
    return cb(via ? std::optional(Contact{id, t.key, via->endpoint}) : std::nullopt);
  }
  Fallback* f = new_fallback(Contact{id, PublicKey{}, Endpoint{}});
  if (!f) return cb(std::nullopt);
  f->due = true;  // no punch to wait for: the path is set as soon as the list is read
  using Got = std::optional<OwnedValue>;
  fetch_(relay_list_key(id), id, scope_.bind<Got>([this, id, cb = std::move(cb)](Got v) {
    auto it = fallbacks_.find(id);
    auto list = read_list(id, v);
    // (A punch's fallback that replaced ours once it lapsed reads the list itself.)
    if (it == fallbacks_.end() || it->second.relays) return cb(std::nullopt);
    if (!list) {  // none (yet): kept as an empty list, read again after kEmptyListRetry
      it->second.relays.emplace();
      it->second.listed = engine_.now();
      return cb(std::nullopt);
    }
    Fallback& f = it->second;
    f.relays = std::move(list);
    f.listed = engine_.now();
    f.target.key = v->owner;  // the session with the target is end-to-end authenticated by this key
    f.done = true;
    auto via = use_next_relay(f) ? engine_.via(v->owner) : std::nullopt;
    if (!via) return cb(std::nullopt);
    ++fallbacks_found_;
    cb(Contact{id, v->owner, via->endpoint});
  }));
}

void Relay::fallback_due(const NodeId& id) {
  auto it = fallbacks_.find(id);
  if (it == fallbacks_.end() || it->second.done) return;
  TimePoint now = engine_.now();
  bool held = now - it->second.started < kFallbackAfter + kMaxHold ||
              (it->second.relays && now - it->second.listed < kListHold);
  if (hold_ && hold_(id) && held) {
    engine_.schedule(scope_, kHoldCheck, [this, id] { fallback_due(id); });
    return;
  }
  it->second.due = true;
  fall_back(it->second);
}

void Relay::heard(const Contact& c) {
  // Heard directly while the fallback waits: the punch (or the direct path) works.
  if (auto it = fallbacks_.find(c.id); it != fallbacks_.end() && !it->second.due) it->second.done = true;
  // A node we hold a reservation for, heard from a new address (its NAT moved the mapping): deliveries go
  // there from now on. The datagram authenticated as that node's, so no one else can move it (as WireGuard
  // roams a peer).
  if (auto it = served_.find(c.id); it != served_.end() && it->second.holder.key == c.key && c.endpoint.valid()) {
    it->second.holder.endpoint = c.endpoint;
    it->second.heard = engine_.now();
  }
}

std::optional<Contact> Relay::reserved(const NodeId& id, Duration within) const {
  auto it = served_.find(id);
  TimePoint now = engine_.now();
  if (it == served_.end() || it->second.until <= now || now - it->second.heard >= within) return std::nullopt;
  return it->second.holder;
}

void Relay::fall_back(Fallback& f) {
  if (f.done || !f.due || !f.relays) return;
  f.done = true;
  if (use_next_relay(f)) ++fallbacks_found_;
}

bool Relay::use_next_relay(Fallback& f) {
  // One of the listed relays not tried yet for this fallback, at random: the initiators of a busy target
  // spread over its relays instead of all taking the first one listed.
  std::vector<const Contact*> left;
  auto collect = [&] {
    for (const Contact& r : *f.relays) {
      if (r.key == f.target.key || r.key == engine_.identity().public_key()) continue;
      if (!(family_bit(r.endpoint.family) & engine_.env().families())) continue;  // a family we do not send on
      if (std::find(f.tried.begin(), f.tried.end(), r.key) == f.tried.end()) left.push_back(&r);
    }
  };
  collect();
  if (left.empty() && f.tried.size() > 1) {  // every one tried: round again (a slow relay gets another turn)
    f.tried = {f.tried.back()};
    collect();
  }
  if (left.empty()) return false;
  const Contact& r = *left[engine_.env().random_below(left.size())];
  f.tried.push_back(r.key);
  if (used_.size() >= kMaxUsed) used_.erase(used_.begin());
  used_[r.key] = engine_.now();
  engine_.set_via(f.target.key, r);
  engine_.redirect(f.target.key, r.endpoint);  // what waits for the target goes through the relay now
  engine_.schedule(scope_, kPathCheck, [this, id = f.target.id] { check_path(id); });
  return true;
}

void Relay::check_path(const NodeId& id) {
  auto it = fallbacks_.find(id);
  if (it == fallbacks_.end() || it->second.tried.empty()) return;
  Fallback& f = it->second;
  // Ended (heard directly), replaced, or working: nothing to do. Otherwise the relay does not reach the target
  // (its reservation lapsed, or names an address the target's NAT no longer maps): the next listed relay.
  auto via = engine_.via(f.target.key);
  if (!via || via->key != f.tried.back()) return;
  if (engine_.heard_via(f.target.key)) {
    if (on_path_) on_path_(Contact{f.target.id, f.target.key, via->endpoint});
    return;
  }
  if (engine_.now() - f.started >= kRetryAfter) return;  // the fallback's life
  if (use_next_relay(f)) ++paths_switched_;
}

}  // namespace storjnet::dht
