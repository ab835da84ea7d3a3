// Birthday: a relayed path made direct (src/dht/birthday.h, docs/protocol.md 5.2, "Upgrade").
#include "dht/birthday.h"

#include "dht/send_past_relay.h"
#include "engine/methods.h"
#include "wire/drop_reason.h"

namespace storjnet::dht {

namespace {
constexpr uint8_t kIndependent = static_cast<uint8_t>(NatMapping::kIndependent);
constexpr uint8_t kDependent = static_cast<uint8_t>(NatMapping::kDependent);
constexpr uint16_t kFirstPort = 1024;  // the ports a NAT maps to: 1024-65535 (Linux's range for them)
bool same_ip(const Endpoint& a, const Endpoint& b) { return a.family == b.family && a.addr == b.addr; }
}  // namespace

Birthday::Birthday(Engine& engine, const DhtConfig& cfg, std::function<NatView::View(Endpoint::Family)> view)
    : engine_(engine), cfg_(cfg), view_(std::move(view)), scope_(engine.scope()) {
  budget_ = {kBurst, engine_.now()};
}

Birthday::~Birthday() { scope_.end(); }

bool Birthday::allow() {
  if (budget_.take(kRate, kBurst, engine_.now())) return true;
  refuse();
  return false;
}

void Birthday::refuse() {
  ++refused_;
  engine_.drops().add(DropReason::kPunchRefused);
}

Birthday::Attempt* Birthday::attempt(const Contact& peer) {
  auto it = attempts_.find(peer.id);
  if (it != attempts_.end()) return &it->second;
  if (attempts_.size() >= kMaxAttempts) {  // forget the oldest that is not live
    auto oldest = attempts_.end();
    for (auto i = attempts_.begin(); i != attempts_.end(); ++i)
      if (!i->second.live && (oldest == attempts_.end() || i->second.started < oldest->second.started)) oldest = i;
    if (oldest == attempts_.end()) return nullptr;
    attempts_.erase(oldest);
  }
  return &attempts_.emplace(peer.id, Attempt{peer}).first->second;
}

PunchMessage Birthday::own_sync(Endpoint::Family f) const {
  PunchMessage m;
  m.kind = PunchKind::kSync;
  NatView::View v = view_ ? view_(f) : NatView::View{};
  if (v.address && v.mapping != NatMapping::kUnknown) {
    m.mapping = static_cast<uint8_t>(v.mapping);
    m.endpoint = *v.address;
    if (v.mapping == NatMapping::kDependent) m.endpoint.port = 0;
  }
  return m;
}

void Birthday::path_works(const Contact& peer) {
  auto via = engine_.via(peer.key);
  if (!via) return;
  Attempt* a = attempt(peer);
  if (!a || a->live || a->tries >= kMaxTries || engine_.now() < a->quiet_until) return;
  a->peer = peer;
  send_sync(peer.id);
}

void Birthday::send_sync(const NodeId& id) {
  auto it = attempts_.find(id);
  if (it == attempts_.end()) return;
  Attempt& a = it->second;
  auto via = engine_.via(a.peer.key);
  if (!via || a.live || a.tries >= kMaxTries || engine_.now() < a.quiet_until) return;  // direct, or given up
  if (!allow()) return;
  ++a.tries;
  a.live = true;
  a.ok = false;
  a.futile = false;
  a.started = engine_.now();
  Endpoint::Family f = via->endpoint.family;
  ++syncs_sent_;
  engine_.schedule(scope_, kWindow, [this, id] { window_end(id); });
  Contact through{a.peer.id, a.peer.key, via->endpoint};  // the engine wraps it for the relay
  engine_.request(scope_, through, Method::kPunch, encode_punch(own_sync(f)), [this, id, f](RpcResult&& res) {
    auto it = attempts_.find(id);
    if (!res.ok() || it == attempts_.end() || !it->second.live || it->second.ok) return;
    auto m = decode_punch(res.payload);
    if (!m || m->kind != PunchKind::kSync) return refuse();
    it->second.futile = !act(it->second.peer, *m, f);
  }, RpcOptions{cfg_.rpc_timeout, cfg_.rpc_attempts});
}

void Birthday::on_sync(const IncomingRequest& q, const PunchMessage& sync, const Reply& r) {
  // Only over a relayed path: a peer heard directly needs no upgrade.
  auto via = engine_.via(q.from.key);
  const PunchMessage* m = &sync;
  if (!via || q.oneway) {
    refuse();
    return r.error("sync refused");
  }
  Attempt* a = attempt(q.from);
  if (!a || a->live) refuse();
  if (!a || a->live || !allow()) return r.error("sync refused");
  a->peer = q.from;
  Endpoint::Family f = m->mapping ? m->endpoint.family : via->endpoint.family;
  ++syncs_served_;
  a->live = true;
  a->ok = false;
  a->futile = false;
  a->started = engine_.now();
  NodeId id = q.from.id;
  engine_.schedule(scope_, kWindow, [this, id] { window_end(id); });
  r.ok(encode_punch(own_sync(f)));
  a->futile = !act(Contact{q.from.id, q.from.key, via->endpoint}, *m, f);
}

bool Birthday::act(const Contact& peer, const PunchMessage& theirs, Endpoint::Family f) {
  PunchMessage mine = own_sync(f);
  if (!mine.mapping || !theirs.mapping || theirs.endpoint.family != f) return true;  // a later try may know
  if (same_ip(mine.endpoint, theirs.endpoint)) return false;  // one router: the punch's LAN path, not this
  if (mine.mapping == kDependent && theirs.mapping == kDependent) return false;  // nothing can: stays relayed
  Contact to{peer.id, peer.key, theirs.endpoint};
  if (mine.mapping == kIndependent && theirs.mapping == kIndependent) {
    holes(to, kHoles, false);
    return true;
  }
  if (birthdays_live_ >= kMaxBirthdays) return true;
  if (mine.mapping == kDependent && theirs.mapping == kIndependent) {
    size_t opened = engine_.env().open_fresh_ports(theirs.endpoint, cfg_.birthday_ports, kPortLife);
    if (opened == 0) return true;
    birthday_started();
    ports_opened_ += opened;
    // First a datagram from each port with a low TTL: it makes the port's mapping at our router and dies
    // before the peer's router, which would otherwise keep a record of it that bars the peer's probe from
    // leaving on the port we need (Linux NAT picks another source port for a clashing flow). Then, once the
    // peer's probes opened its filter, HOLEs from every port.
    static const uint8_t kOpen[1] = {0};
    engine_.env().send_with_ttl(theirs.endpoint, ByteView(kOpen, 1), cfg_.birthday_ttl);
    engine_.schedule(scope_, kFirstFullRound, [this, to] { holes(to, kRounds, true); });
    return true;
  }
  if (mine.mapping == kIndependent && theirs.mapping == kDependent) {
    birthday_started();
    NodeId id = peer.id;
    Endpoint address = theirs.endpoint;
    engine_.schedule(scope_, kProbeDelay, [this, id, address] { probes(id, address, cfg_.birthday_probes); });
  }
  return true;
}

void Birthday::birthday_started() {
  ++birthdays_;
  ++birthdays_live_;
  engine_.schedule(scope_, kBusy, [this] { --birthdays_live_; });
}

void Birthday::holes(const Contact& to, int left, bool fanned) {
  auto it = attempts_.find(to.id);
  if (left <= 0 || it == attempts_.end() || !it->second.live || it->second.ok) return;
  PunchMessage hole;
  hole.kind = PunchKind::kHole;
  // Directly, past the relayed path (the engine would wrap it for the relay), which stays until B is heard.
  send_past_relay(engine_, to, Method::kPunch, encode_punch(hole));
  engine_.schedule(scope_, fanned ? kRoundGap : kHoleGap, [this, to, left, fanned] { holes(to, left - 1, fanned); });
}

void Birthday::probes(const NodeId& id, Endpoint address, size_t left) {
  static const uint8_t kProbe[1] = {0};  // its content never matters: it is not meant to arrive
  auto it = attempts_.find(id);
  if (it == attempts_.end() || !it->second.live || it->second.ok) return;  // through: no more needed
  size_t n = std::min(left, kProbeBatch);
  for (size_t i = 0; i < n; ++i) {
    address.port = static_cast<uint16_t>(kFirstPort + engine_.env().random_below(65536 - kFirstPort));
    if (engine_.env().send_with_ttl(address, ByteView(kProbe, 1), cfg_.birthday_ttl)) ++probes_sent_;
  }
  if (left > n) engine_.schedule(scope_, kProbeGap, [this, id, address, left, n] { probes(id, address, left - n); });
}

void Birthday::heard(const Contact& c) {
  auto it = attempts_.find(c.id);
  if (it == attempts_.end() || !it->second.live || it->second.ok || it->second.peer.key != c.key) return;
  if (engine_.now() - it->second.started >= kWindow) return;
  it->second.ok = true;
  it->second.tries = 0;  // a later relayed path to it gets its own tries (kMaxTries)
  ++ok_;
  engine_.redirect(c.key, c.endpoint);
  // Its address may be unproven (a HOLE came first): challenged once this datagram is handled, as after a punch.
  engine_.schedule(scope_, Duration::zero(), [this, c] { engine_.challenge(c); });
}

void Birthday::window_end(const NodeId& id) {
  auto it = attempts_.find(id);
  if (it == attempts_.end() || !it->second.live) return;
  Attempt& a = it->second;
  if (engine_.now() - a.started < kWindow) return;  // a later attempt's window
  a.live = false;
  if (a.ok) return;
  if (!engine_.via(a.peer.key)) {
    a.tries = 0;
    if (a.futile) return;  // direct by other means (a punch, the LAN): not our doing
    // Direct all the same: the engine ended the path on a direct datagram that was no message (a challenge or
    // its echo), so heard() was not told.
    a.ok = true;
    ++ok_;
    return;
  }
  if (a.futile) {  // nothing can connect the pair: no retry, and not a failure
    ++futile_;
    a.tries = 0;
    a.quiet_until = engine_.now() + kQuiet;
    return;
  }
  ++failed_;
  if (a.tries == 0) return;  // a SYNC we answered: its retries are the asker's
  if (a.tries < kMaxTries) {
    engine_.schedule(scope_, kRetryAfter, [this, id] { send_sync(id); });
    return;
  }
  a.tries = 0;  // the last try: quiet for a while, then a new relayed path gets its own tries
  a.quiet_until = engine_.now() + kQuiet;
}

// Also while an attempt runs whose relayed path a direct datagram already ended (a challenge or its echo, which
// heard() is not told of): it counts as ok when its window ends (window_end), and the path is direct now.
bool Birthday::upgraded(const Attempt& a) const {
  return (a.ok || (a.live && !a.futile)) && !engine_.via(a.peer.key);
}

bool Birthday::upgraded(const NodeId& id) const {
  auto it = attempts_.find(id);
  return it != attempts_.end() && upgraded(it->second);
}

std::vector<NodeId> Birthday::upgraded_ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, a] : attempts_)
    if (upgraded(a)) out.push_back(id);
  return out;
}

void Birthday::fill(DhtStats& s) const {
  s.upgrade_syncs_sent = syncs_sent_;
  s.upgrade_syncs_served = syncs_served_;
  s.upgrades_ok = ok_;
  s.upgrades_failed = failed_;
  s.upgrades_futile = futile_;
  s.birthdays = birthdays_;
  s.birthday_ports = ports_opened_;
  s.birthday_probes = probes_sent_;
  s.upgrade_refused = refused_;
}

}  // namespace storjnet::dht
