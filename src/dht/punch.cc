// Punch: hole punching through a common neighbour and NAT keepalives (src/dht/punch.h).
#include "dht/punch.h"

#include <algorithm>

namespace storjnet::dht {

namespace {
constexpr double kOwnRate = 20;  // punches this node starts per second (burst the same)
bool is_service_method(uint8_t m) { return m >= static_cast<uint8_t>(Method::kMessageNotify); }
}  // namespace

Punch::Punch(Engine& engine, RoutingTable& table, const DhtConfig& cfg, std::function<bool()> reachable,
             FindClosest find_closest)
    : engine_(engine),
      table_(table),
      cfg_(cfg),
      reachable_(std::move(reachable)),
      find_closest_(std::move(find_closest)),
      per_peer_(cfg.punch_rate, 1024),
      scope_(engine.scope()) {
  TimePoint now = engine_.now();
  total_ = {cfg_.punch_total_rate, now};
  own_ = {kOwnRate, now};
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
  if (it == attempts_.end() || it->second.introduced || it->second.done || n == neighbourhoods_.end()) return;
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
    engine_.request(scope_, r, Method::kPunch, body, [this, to](RpcResult&& res) {
      if (!res.ok()) return;
      auto it = attempts_.find(to.id);
      if (it == attempts_.end() || it->second.introduced || it->second.done) return;
      auto seen_by_r = decode_punch_endpoint(res.payload);
      if (!seen_by_r) return;
      it->second.introduced = true;
      // B now sends towards us; our HOLEs open our NAT towards B (and B's, if its filter lets them in).
      send_holes(to, kHoles, false);
      if (*seen_by_r != to.endpoint) send_holes(Contact{to.id, to.key, *seen_by_r}, kHoles, false);
    }, RpcOptions{cfg_.rpc_timeout, cfg_.rpc_attempts});
  }
}

void Punch::heard(const Contact& c) {
  auto it = attempts_.find(c.id);
  if (it == attempts_.end() || it->second.done) return;
  if (engine_.now() - it->second.started >= kWindow) return;
  it->second.ok = it->second.done = true;
  ++ok_;
  // B answered from where it is reachable for us (a symmetric NAT's port for us may be new): the requests
  // waiting for B go there now instead of at their next retransmission.
  engine_.redirect(c.key, c.endpoint);
  if (punched_.size() >= kMaxPunched) punched_.erase(punched_.begin());
  punched_[c.id] = engine_.now();
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

void Punch::send_holes(const Contact& to, int left, bool served) {
  if (left <= 0) {
    if (served) served_done(to.key);
    return;
  }
  PunchMessage hole;
  hole.kind = PunchKind::kHole;
  // A HOLE has to cross the routers itself. With a relayed path to `to` (its relay delivered to us first, or our
  // relay fallback set one), the engine would wrap it for the relay, and the hole would never open: the pair
  // would stay relayed though a punch works. So it goes directly, and the relayed path is kept.
  auto via = engine_.via(to.key);
  if (via) engine_.clear_via(to.key);
  engine_.notify(to, Method::kPunch, encode_punch(hole));
  if (via) engine_.set_via(to.key, *via);
  ++holes_sent_;
  engine_.schedule(scope_, kHoleGap, [this, to, left, served] { send_holes(to, left - 1, served); });
}

// ------------------------------------------------------------ rendezvous and target

void Punch::on_request(const IncomingRequest& q, const Reply& r) {
  auto m = decode_punch(q.payload);
  if (!m) return refuse();
  switch (m->kind) {
    case PunchKind::kAsk:
      if (q.oneway) return refuse();
      return serve_ask(q, m->target, r);
    case PunchKind::kIntro:
      if (!q.oneway) return refuse();
      return serve_intro(q, *m);
    case PunchKind::kHole:
      return;  // its work was done by arriving (heard() ran before this handler)
    case PunchKind::kKeepalive:
      ++keepalives_received_;
      return;
  }
}

void Punch::serve_ask(const IncomingRequest& q, const NodeId& target, const Reply& r) {
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
  if (!b || !seen || now - *seen >= cfg_.punch_live || b->key == q.from.key) return r.error("unknown target");
  PunchMessage intro;
  intro.kind = PunchKind::kIntro;
  intro.initiator = q.from.key;
  intro.endpoint = q.from.endpoint;
  engine_.notify(*b, Method::kPunch, encode_punch(intro));
  ++asks_served_;
  r.ok(encode_punch_endpoint(b->endpoint));
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

// ------------------------------------------------------------ keepalive

void Punch::keepalive() {
  keepalive_timer_ = engine_.schedule(scope_, cfg_.keepalive_interval, [this] { keepalive(); });
  if (reachable_ && reachable_()) return;
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
