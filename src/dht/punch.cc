// Punch: hole punching through a common neighbour and NAT keepalives (src/dht/punch.h).
#include "dht/punch.h"

#include <algorithm>

#include "dht/send_past_relay.h"

namespace storjnet::dht {

namespace {
constexpr double kOwnRate = 20;  // punches this node starts per second (burst the same)
bool is_service_method(uint8_t m) { return m >= static_cast<uint8_t>(Method::kMessageNotify); }
bool same_ip(const Endpoint& a, const Endpoint& b) { return a.family == b.family && a.addr == b.addr; }
// Whether two LAN addresses are in one home network: the same IPv4 /16 or IPv6 /64.
bool same_network(const Endpoint& a, const Endpoint& b) {
  if (a.family != b.family) return false;
  size_t n = a.family == Endpoint::Family::kV4 ? 2 : 8;
  return std::equal(a.addr.begin(), a.addr.begin() + static_cast<ptrdiff_t>(n), b.addr.begin());
}
}  // namespace

Punch::Punch(Engine& engine, RoutingTable& table, const DhtConfig& cfg, std::function<bool()> no_keepalives,
             FindClosest find_closest)
    : engine_(engine),
      table_(table),
      cfg_(cfg),
      no_keepalives_(std::move(no_keepalives)),
      find_closest_(std::move(find_closest)),
      per_peer_(cfg.punch_rate, 1024),
      scope_(engine.scope()) {
  TimePoint now = engine_.now();
  total_ = {cfg_.punch_total_rate, now};
  own_ = {kOwnRate, now};
  lan_ = {kLanBurst, now};
  engine_.set_handler(Method::kPunch, [this](const IncomingRequest& q, const Reply& r) { on_request(q, r); });
  engine_.set_on_unanswered([this](const Contact& to, uint8_t method) { unanswered(to, method); });
  if (cfg_.keepalive_interval > Duration::zero())
    keepalive_timer_ = engine_.schedule(scope_, cfg_.keepalive_interval, [this] { keepalive(); });
}

Punch::~Punch() {
  scope_.end();
  engine_.set_handler(Method::kPunch, nullptr);
  engine_.set_on_unanswered(nullptr);
}

void Punch::refuse() {
  ++refused_;
  engine_.drops().add(DropReason::kPunchRefused);
}

void Punch::fill(DhtStats& s) const {
  s.keepalives_sent = keepalives_sent_;
  s.keepalives_received = keepalives_received_;
  s.punch_attempts = attempts_started_;
  s.punch_ok = ok_;
  s.punch_failed = failed_;
  s.punch_no_rendezvous = no_rendezvous_;
  s.punch_asks_sent = asks_sent_;
  s.punch_lookups = looked_up_;
  s.punch_asks_served = asks_served_;
  s.punch_intros_served = intros_served_;
  s.punch_holes_sent = holes_sent_;
  s.punch_refused = refused_;
  s.punched_peers = punched_.size();
  s.punch_lan_asks_sent = lan_asks_sent_;
  s.punch_lan_intros_sent = lan_intros_sent_;
  s.punch_lan_holes_sent = lan_holes_sent_;
  s.punch_lan_refused = lan_refused_;
}

std::optional<TimePoint> Punch::last_seen(const NodeId& id) const {
  for (const auto& e : table_.bucket(static_cast<size_t>(std::max(0, table_.bucket_of(id)))))
    if (e.contact.id == id) return e.last_seen;
  return std::nullopt;
}

// ------------------------------------------------------------ initiator

Punch::Neighbourhood& Punch::neighbourhood(const NodeId& id, TimePoint now) {
  if (neighbourhoods_.size() >= kMaxNeighbourhoods && !neighbourhoods_.count(id)) {
    std::erase_if(neighbourhoods_, [&](const auto& kv) {
      return now - kv.second.at >= kNeighbourhoodLife && now >= kv.second.expected_until;
    });
    if (neighbourhoods_.size() >= kMaxNeighbourhoods) neighbourhoods_.erase(neighbourhoods_.begin());
  }
  return neighbourhoods_[id];
}

void Punch::note_neighbourhood(const NodeId& id, const std::vector<Contact>& closest) {
  TimePoint now = engine_.now();
  Neighbourhood& n = neighbourhood(id, now);
  n.at = now;
  n.expected_until = {};
  n.closest.clear();
  for (const Contact& c : closest) {
    if (n.closest.size() >= kAsks) break;
    if (c.id != id && c.key != engine_.identity().public_key()) n.closest.push_back(c);
  }
  ask_neighbourhood(id);
}

void Punch::note_relays(const NodeId& id, const std::vector<Contact>& relays) {
  auto it = attempts_.find(id);
  // Asked even when a rendezvous said it introduced us: that is only its word, and B gets the INTRO only if
  // its mapping towards that rendezvous is still open (heard within punch_live need not mean that).
  if (it == attempts_.end() || it->second.done) return;
  std::vector<Contact> more;
  for (const Contact& r : relays) {
    if (more.size() >= kAsks) break;
    if (r.id == id || r.key == engine_.identity().public_key()) continue;
    if (!(family_bit(r.endpoint.family) & engine_.env().families())) continue;  // a family we do not send on
    bool asked = std::find(it->second.asked.begin(), it->second.asked.end(), r.id) != it->second.asked.end();
    if (!asked && std::none_of(more.begin(), more.end(), [&](const Contact& m) { return m.id == r.id; }))
      more.push_back(r);  // a relay listed once per family appears twice
  }
  ask(it->second.target, more);
}

void Punch::expect_neighbourhood(const NodeId& id) {
  TimePoint now = engine_.now();
  neighbourhood(id, now).expected_until = now + cfg_.find_timeout;
}

bool Punch::pending(const NodeId& id) const {
  auto a = attempts_.find(id);
  if (a == attempts_.end() || a->second.done) return false;
  TimePoint now = engine_.now();
  if (now - a->second.last_ask < kAskGrace) return true;
  auto n = neighbourhoods_.find(id);
  return !a->second.introduced && n != neighbourhoods_.end() && now < n->second.expected_until;
}

void Punch::ask_neighbourhood(const NodeId& target) {
  auto it = attempts_.find(target);
  auto n = neighbourhoods_.find(target);
  if (it == attempts_.end() || it->second.done || n == neighbourhoods_.end()) return;  // introduced: see note_relays
  std::vector<Contact> more;
  for (const Contact& c : n->second.closest)
    if (std::find(it->second.asked.begin(), it->second.asked.end(), c.id) == it->second.asked.end())
      more.push_back(c);
  ask(it->second.target, more);
}

std::vector<Contact> Punch::rendezvous_for(const Contact& target) const {
  TimePoint now = engine_.now();
  if (auto it = neighbourhoods_.find(target.id);
      it != neighbourhoods_.end() && now - it->second.at < kNeighbourhoodLife && !it->second.closest.empty())
    return it->second.closest;
  auto candidates = table_.closest_answer(target.id, 3 * kAsks + 1);
  std::erase_if(candidates, [&](const Contact& c) { return c.id == target.id; });
  // Recently heard first (a live session, likely to answer), each group in XOR order.
  std::stable_partition(candidates.begin(), candidates.end(), [&](const Contact& c) {
    auto seen = last_seen(c.id);
    return seen && now - *seen < cfg_.punch_live;
  });
  if (candidates.size() > kAsks) candidates.resize(kAsks);
  return candidates;
}

void Punch::unanswered(const Contact& to, uint8_t method) {
  if (!is_service_method(method) || to.key == engine_.identity().public_key()) return;
  TimePoint now = engine_.now();
  if (auto it = attempts_.find(to.id); it != attempts_.end()) {
    if (now - it->second.started < kRetryAfter) return;
    attempts_.erase(it);
  }
  if (attempts_.size() >= kMaxPunches)
    std::erase_if(attempts_, [&](const auto& kv) { return now - kv.second.started >= kRetryAfter; });
  if (attempts_.size() >= kMaxPunches || !own_.take(kOwnRate, kOwnRate, now)) return;
  bool noted = false, expected = false;
  if (auto it = neighbourhoods_.find(to.id); it != neighbourhoods_.end()) {
    noted = now - it->second.at < kNeighbourhoodLife && !it->second.closest.empty();
    expected = now < it->second.expected_until;
  }
  auto rendezvous = rendezvous_for(to);
  ++attempts_started_;
  attempts_[to.id] = Attempt{};
  attempts_[to.id].target = to;
  attempts_[to.id].started = now;
  engine_.schedule(scope_, kWindow, [this, id = to.id] { on_window_end(id); });
  ask(to, rendezvous);
  if (on_started_) on_started_(to);
  if (noted || expected || !find_closest_) return;
  // The table's view of B's neighbourhood may miss the nodes B keeps alive: a lookup finds them.
  ++looked_up_;
  find_closest_(to.id, scope_.bind<std::vector<Contact>>([this, id = to.id](std::vector<Contact> closest) {
    note_neighbourhood(id, closest);  // asks those not asked yet
  }));
}

void Punch::ask(const Contact& to, const std::vector<Contact>& rendezvous) {
  auto it = attempts_.find(to.id);
  if (it == attempts_.end() || rendezvous.empty()) return;
  for (const auto& r : rendezvous) it->second.asked.push_back(r.id);
  it->second.last_ask = engine_.now();
  PunchMessage ask;
  ask.kind = PunchKind::kAsk;
  ask.target = to.id;
  Bytes body = encode_punch(ask);
  for (const auto& r : rendezvous) {
    ++asks_sent_;
    engine_.request(scope_, r, Method::kPunch, body, [this, to, r](RpcResult&& res) {
      if (!res.ok()) return;
      auto answer = decode_punch_answer(res.payload);
      if (!answer) return;
      if (answer->same_address) ask_lan(to, r);
      auto it = attempts_.find(to.id);
      if (it == attempts_.end() || it->second.introduced || it->second.done) return;
      const Endpoint& seen_by_r = answer->target;
      it->second.introduced = true;
      // B now sends towards us; our HOLEs open our NAT towards B (and B's, if its filter lets them in).
      send_holes(to, kHoles, false);
      if (seen_by_r != to.endpoint) send_holes(Contact{to.id, to.key, seen_by_r}, kHoles, false);
    }, RpcOptions{cfg_.rpc_timeout, cfg_.rpc_attempts});
  }
}

void Punch::ask_lan(const Contact& target, const Contact& rendezvous) {
  // The rendezvous sees us at the target's public IP address: we are behind one router, which need not
  // hairpin. Once per attempt, our LAN address goes to that rendezvous, for the target.
  auto it = attempts_.find(target.id);
  if (it == attempts_.end() || it->second.done || it->second.lan_asked) return;
  auto lan = engine_.env().lan_endpoint(target.endpoint.family);
  if (!lan || !lan_address(*lan)) return;
  it->second.lan_asked = true;
  PunchMessage ask;
  ask.kind = PunchKind::kAsk;
  ask.target = target.id;
  ask.lan = *lan;
  ++lan_asks_sent_;
  engine_.request(scope_, rendezvous, Method::kPunch, encode_punch(ask), [](RpcResult&&) {},
                  RpcOptions{cfg_.rpc_timeout, cfg_.rpc_attempts});
}

void Punch::heard(const Contact& c) {
  auto it = attempts_.find(c.id);
  if (it == attempts_.end() || it->second.done) return;
  if (engine_.now() - it->second.started >= kWindow) return;
  it->second.ok = it->second.done = true;
  // Heard at a LAN address of our network: the target answered our LAN holes' way (after we gave ours), or
  // reached us over the LAN on its own (its own punch's LAN path) while ours ran. Either way that is the path.
  auto own = engine_.env().lan_endpoint(c.endpoint.family);
  bool lan = own && lan_address(c.endpoint) && !same_ip(c.endpoint, it->second.target.endpoint) &&
             same_network(c.endpoint, *own);
  ++ok_;
  // B answered from where it is reachable for us (a symmetric NAT's port for us may be new): the requests
  // waiting for B go there now instead of at their next retransmission.
  engine_.redirect(c.key, c.endpoint);
  // What came first through the hole may be no answer of B's (B's newcomer ping, say): then B's address is
  // unproven and our sends to it may total 3x what B sent (docs/protocol.md 10.1). Our answer and HOLEs would
  // spend that, the request's retransmission and the challenge that releases it would be held, and with a
  // symmetric router on our side B's HOLEs (sent where the rendezvous saw us) never add to it. So B's
  // address is challenged while the challenge fits, once this datagram is handled (an answer proves it;
  // docs/protocol.md 5.2, "Address proof").
  engine_.schedule(scope_, Duration::zero(), [this, c] { engine_.challenge(c); });
  if (punched_.size() >= kMaxPunched) punched_.erase(punched_.begin());
  punched_[c.id] = Punched{engine_.now(), lan};
}

void Punch::on_window_end(const NodeId& target) {
  auto it = attempts_.find(target);
  if (it == attempts_.end() || it->second.done) return;
  it->second.done = true;
  ++failed_;
  if (!it->second.introduced) ++no_rendezvous_;
}

void Punch::served_done(const PublicKey& initiator) {
  if (holes_in_progress_ > 0) --holes_in_progress_;
  if (auto it = serving_.find(initiator); it != serving_.end() && --it->second <= 0) serving_.erase(it);
}

void Punch::send_holes(const Contact& to, int left, bool served, bool lan) {
  if (left <= 0) {
    if (served) served_done(to.key);
    return;
  }
  PunchMessage hole;
  hole.kind = PunchKind::kHole;
  // A HOLE has to cross the routers itself. With a relayed path to `to` (its relay delivered to us first, or our
  // relay fallback set one), the engine would wrap it for the relay, and the hole would never open: the pair
  // would stay relayed though a punch works. So it goes directly, and the relayed path is kept.
  send_past_relay(engine_, to, Method::kPunch, encode_punch(hole));
  ++holes_sent_;
  lan_holes_sent_ += lan;
  engine_.schedule(scope_, kHoleGap, [this, to, left, served, lan] { send_holes(to, left - 1, served, lan); });
}

// ------------------------------------------------------------ rendezvous and target

void Punch::on_request(const IncomingRequest& q, const Reply& r) {
  auto m = decode_punch(q.payload);
  if (!m) return refuse();
  switch (m->kind) {
    case PunchKind::kAsk:
      if (q.oneway) return refuse();
      return serve_ask(q, *m, r);
    case PunchKind::kIntro:
      if (!q.oneway) return refuse();
      return serve_intro(q, *m);
    case PunchKind::kHole:
      return;  // its work was done by arriving (heard() ran before this handler)
    case PunchKind::kKeepalive:
      ++keepalives_received_;
      return;
    case PunchKind::kSync:
      if (!on_sync_) {
        refuse();
        return r.error("sync refused");
      }
      return on_sync_(q, *m, r);
  }
}

void Punch::serve_ask(const IncomingRequest& q, const PunchMessage& m, const Reply& r) {
  const NodeId& target = m.target;
  // B will send to the address we saw A at: it must be A's (a forged source would aim B at a victim).
  if (!engine_.address_proven(q.from.endpoint, q.from.key)) {
    engine_.challenge(q.from);
    return refuse();
  }
  TimePoint now = engine_.now();
  if (!per_peer_.allow(q.from.id, now) || !total_.take(cfg_.punch_total_rate, cfg_.punch_total_rate, now))
    return refuse();
  auto b = table_.find(target);
  auto seen = last_seen(target);
  // A target at the asker's public IP address (behind the same router) is served however long ago we heard
  // from it: a mapped port (UPnP) makes it reachable, so it sends no keepalives, and only the LAN can connect
  // the two. A LAN address goes on only to such a target.
  bool same = b && same_ip(q.from.endpoint, b->endpoint);
  if (!same && (!b || !seen || now - *seen >= cfg_.punch_live) && reserved_) {
    // A node holding a reservation with us (we relay for it) renews it every keepalive_interval: we are one
    // of the few it keeps its NAT open towards, wherever its id is from ours (docs/protocol.md 5.2).
    if (auto holder = reserved_(target, cfg_.punch_live)) {
      b = holder;
      seen = now;
      same = same_ip(q.from.endpoint, b->endpoint);
    }
  }
  if (!b || (!same && (!seen || now - *seen >= cfg_.punch_live)) || b->key == q.from.key)
    return r.error("unknown target");
  if (m.lan.valid() && !same) {
    ++lan_refused_;
    refuse();
    return r.error("not behind the same address");
  }
  PunchMessage intro;
  intro.kind = PunchKind::kIntro;
  intro.initiator = q.from.key;
  intro.endpoint = q.from.endpoint;
  intro.lan = m.lan;
  engine_.notify(*b, Method::kPunch, encode_punch(intro));
  ++asks_served_;
  lan_intros_sent_ += m.lan.valid();
  r.ok(encode_punch_answer({b->endpoint, same}));
}

bool Punch::allow_target(const Endpoint& ep, TimePoint now) {
  Endpoint ip = ep;
  ip.port = 0;
  auto it = targets_.find(ip);
  if (it == targets_.end()) {
    if (targets_.size() >= kMaxTargets) targets_.clear();  // a cleared address gets one fresh burst back
    it = targets_.emplace(ip, TokenBucket{kTargetBurst, now}).first;
  }
  return it->second.take(kTargetRate, kTargetBurst, now);
}

void Punch::serve_intro(const IncomingRequest& q, const PunchMessage& m) {
  if (m.lan.valid()) return serve_lan_intro(q, m);
  TimePoint now = engine_.now();
  if (m.initiator == engine_.identity().public_key() || holes_in_progress_ >= kMaxHoles ||
      serving_.count(m.initiator))
    return refuse();
  if (!per_peer_.allow(q.from.id, now) || !total_.take(cfg_.punch_total_rate, cfg_.punch_total_rate, now))
    return refuse();
  if (!allow_target(m.endpoint, now)) return refuse();
  ++intros_served_;
  ++holes_in_progress_;
  ++serving_[m.initiator];
  send_holes(Contact::from_key(m.initiator, m.endpoint), kHoles, true);
}

void Punch::serve_lan_intro(const IncomingRequest& q, const PunchMessage& m) {
  // Anyone may write any LAN address: holes go there only from a node that has a LAN address in the same
  // network, within the LAN budget (kLanBurst, then kLanRate a second, in all).
  TimePoint now = engine_.now();
  auto own = engine_.env().lan_endpoint(m.lan.family);
  auto refuse_lan = [this] {
    ++lan_refused_;
    refuse();
  };
  if (!own || !same_network(*own, m.lan) || *own == m.lan || m.initiator == engine_.identity().public_key() ||
      holes_in_progress_ >= kMaxHoles)
    return refuse_lan();
  if (!per_peer_.allow(q.from.id, now) || !total_.take(cfg_.punch_total_rate, cfg_.punch_total_rate, now) ||
      !lan_.take(kLanRate, kLanBurst, now))
    return refuse_lan();
  ++intros_served_;
  ++holes_in_progress_;
  ++serving_[m.initiator];
  send_holes(Contact::from_key(m.initiator, m.lan), kHoles, true, true);
}

// ------------------------------------------------------------ keepalive

void Punch::keepalive() {
  keepalive_timer_ = engine_.schedule(scope_, cfg_.keepalive_interval, [this] { keepalive(); });
  if (no_keepalives_ && no_keepalives_()) return;
  PunchMessage ka;
  ka.kind = PunchKind::kKeepalive;
  Bytes body = encode_punch(ka);
  for (const auto& c : keepalive_targets()) {
    engine_.notify(c, Method::kPunch, body);
    ++keepalives_sent_;
  }
}

std::vector<Contact> Punch::keepalive_targets() const {
  // A lookup of our id ends at the closest nodes that answer the one looking: the plain closest when they are
  // open, the confirmed ones when the closest are NATed. Dial-back confirms only some open nodes, so neither
  // list alone is the set an initiator's lookup finds: keep both open (they mostly overlap).
  auto out = table_.closest(engine_.id(), cfg_.keepalive_peers);
  for (const auto& c : table_.closest_answer(engine_.id(), cfg_.keepalive_peers))
    if (std::none_of(out.begin(), out.end(), [&](const Contact& o) { return o.id == c.id; })) out.push_back(c);
  return out;
}

}  // namespace storjnet::dht
