#include "dht/dial_back.h"

#include <algorithm>

namespace storjnet::dht {

namespace {
size_t family_index(Endpoint::Family f) { return f == Endpoint::Family::kV6 ? 1 : 0; }
bool same_ip(const Endpoint& a, const Endpoint& b) { return a.family == b.family && a.addr == b.addr; }
// `c` reached at its address of family f only (nullopt: it has none, or a loopback one).
std::optional<Contact> at_family(const Contact& c, Endpoint::Family f) {
  auto at = c.address(f);
  if (!at || at->is_loopback()) return std::nullopt;
  Contact out = c;
  out.endpoint = *at;
  out.alt = {};
  return out;
}
}  // namespace

struct DialBack::Round {
  Endpoint::Family family;
  std::vector<Contact> helpers;
  size_t next = 0;
};

DialBack::DialBack(Engine& engine, RoutingTable& table, const DhtConfig& cfg)
    : engine_(engine), table_(table), enabled_(cfg.dial_back), rpc_timeout_(cfg.rpc_timeout),
      rpc_attempts_(cfg.rpc_attempts), total_rate_(cfg.dial_back_total_rate), per_asker_(cfg.dial_back_rate, 1024),
      verdicts_per_asker_(cfg.dial_back_rate, 1024), scope_(engine.scope()) {
  engine_.set_handler(Method::kDialBack, [this](const IncomingRequest& q, const Reply& r) { on_request(q, r); });
  engine_.set_rate_limited(Method::kDialBack);
  if (!enabled_) return;
  for (auto f : {Endpoint::Family::kV4, Endpoint::Family::kV6}) schedule_self_check(f, kFirstSelfCheck);
}

DialBack::~DialBack() {
  scope_.end();
  engine_.set_handler(Method::kDialBack, nullptr);
}

void DialBack::refuse() {
  ++asks_refused_;
  engine_.drops().add(DropReason::kDhtDialBackRefused);
}

bool DialBack::reachable(Endpoint::Family f) const {
  const auto& at = reached_at_[family_index(f)];
  if (at && engine_.now() - *at < kReachableFor) return true;
  return loopback_only();
}

// Judged on IPv4 when the node has it; the other family's proof counts too unless the judged family's traffic
// leaves from a private address (a NAT in front of it, which strangers' probes of the other family never
// crossed): a public dual-stack node in a small network, where every IPv4 helper is a peer it talked to lately,
// is still found reachable by its open IPv6 address.
bool DialBack::reachable() const {
  uint8_t families = engine_.env().families();
  Endpoint::Family judged = judged_family(families);
  if (reachable(judged)) return true;
  Endpoint::Family other = judged == Endpoint::Family::kV4 ? Endpoint::Family::kV6 : Endpoint::Family::kV4;
  return (families & family_bit(other)) && reachable(other) && open();
}

bool DialBack::open() const { return !engine_.env().lan_endpoint(judged_family(engine_.env().families())); }

bool DialBack::translated(Endpoint::Family f) const {
  auto lan = engine_.env().lan_endpoint(f);
  if (!lan || !public_address_) return false;
  auto seen = public_address_(f);
  return seen && !same_ip(*seen, *lan);
}

bool DialBack::behind_closed_nat(Endpoint::Family f) const { return translated(f) && !reachable(f); }

bool DialBack::declined(Endpoint::Family f, const Reply& r) {
  if (!behind_closed_nat(f)) return false;
  ++asks_declined_;
  r.ok(encode_bool(false));
  return true;
}

// Every peer on this host (make run, storjnetd --nodes, the benches): nothing NATs between us, and no helper at
// another address exists to probe us, so we count as reachable (no relay reservations, no keepalives).
bool DialBack::loopback_only() const {
  if (table_.size() == 0) return false;
  for (int b = 0; b <= table_.deepest_bucket(); ++b)
    for (const auto& e : table_.bucket(static_cast<size_t>(b)))
      if (!e.contact.endpoint.is_loopback()) return false;
  return true;
}

DialBackVerdict DialBack::verdict(Endpoint::Family f) const {
  if (reachable(f)) return DialBackVerdict::kReachable;
  return self_[family_index(f)].concluded ? DialBackVerdict::kUnreachable : DialBackVerdict::kUnknown;
}

void DialBack::fill(DhtStats& s) const {
  s.reachable = reachable();
  uint8_t families = engine_.env().families();
  s.reachable_v4 = (families & kFamilyV4) && reachable(Endpoint::Family::kV4);
  s.reachable_v6 = (families & kFamilyV6) && reachable(Endpoint::Family::kV6);
  s.dial_back_self_checks = self_checks_;
  s.dial_back_self_checks_ok = self_checks_ok_;
  s.dial_back_asks_sent = asks_sent_;
  s.dial_back_asks_served = asks_served_;
  s.dial_back_asks_refused = asks_refused_;
  s.dial_back_asks_declined = asks_declined_;
  s.dial_back_probes_answered = probes_answered_;
  s.dial_back_confirmed = confirmed_;
  s.dial_back_verdicts_asked = verdicts_asked_;
  s.dial_back_verdicts_answered = verdicts_answered_;
  s.dial_back_verdicts_heard = verdicts_heard_;
}

// ------------------------------------------------------------ self-check (S)

// Up to kHelpers contacts with a (non-loopback) address of family f, at distinct IP addresses, confirmed ones
// first, at random; none while the table holds fewer than kMinContacts entries (the node has not joined yet).
std::vector<Contact> DialBack::pick_helpers(Endpoint::Family f) {
  std::vector<Contact> confirmed, others;
  for (int b = 0; b <= table_.deepest_bucket(); ++b)
    for (const auto& e : table_.bucket(static_cast<size_t>(b)))
      if (auto c = at_family(e.contact, f)) (e.confirmed ? confirmed : others).push_back(*c);
  if (table_.size() < kMinContacts) return {};
  std::vector<Contact> out;
  for (auto* pool : {&confirmed, &others})
    while (out.size() < kHelpers && !pool->empty()) {
      size_t i = engine_.env().random_below(pool->size());
      Contact c = (*pool)[i];
      (*pool)[i] = pool->back();
      pool->pop_back();
      if (std::none_of(out.begin(), out.end(), [&](const Contact& o) { return same_ip(o.endpoint, c.endpoint); }))
        out.push_back(c);
    }
  return out;
}

void DialBack::schedule_self_check(Endpoint::Family f, Duration after) {
  uint64_t epoch = ++self_[family_index(f)].epoch;
  engine_.schedule(scope_, after, [this, f, epoch] {
    if (self_[family_index(f)].epoch == epoch) self_check(f);
  });
}

void DialBack::self_check(Endpoint::Family f, bool early) {
  SelfCheck& sc = self_[family_index(f)];
  if (sc.asking) return;
  if (!(engine_.env().families() & family_bit(f))) {  // no socket of f (yet: a driver may add one later)
    if (!early) schedule_self_check(f, kRetryMin);
    return;
  }
  // A network on one host needs no proof (reachable() says so); check again should a contact elsewhere come.
  auto helpers = loopback_only() ? std::vector<Contact>{} : pick_helpers(f);
  if (helpers.empty()) {
    if (!early) schedule_self_check(f, kWaitForContacts);
    return;
  }
  ++sc.epoch;  // a poll still scheduled is void: end_round schedules the next round
  ++sc.rounds;
  ++self_checks_;
  sc.reached = false;
  sc.solicited = false;
  ask_helper(std::make_shared<Round>(Round{f, std::move(helpers)}));
}

void DialBack::ask_helper(std::shared_ptr<Round> round) {
  SelfCheck& sc = self_[family_index(round->family)];
  if (sc.reached || round->next >= round->helpers.size()) return end_round(round->family, sc.reached);
  const Contact helper = round->helpers[round->next++];
  DialBackRequest ask;
  ask.kind = DialBackKind::kSelfCheck;
  engine_.env().random(ask.nonce);
  ask.via = helper.endpoint;
  sc.asking = true;
  sc.nonce = ask.nonce;
  ++asks_sent_;
  // H1 waits for H2 (up to 3 rpc_timeout), which waits for the probe (rpc_timeout); the retransmissions (every
  // 1.5 rpc_timeout: an unproven address is challenged, and the retransmission served) find the ask served
  // once (H1 and H2 serve a nonce once). Whatever the answer, only a probe that came in tells.
  engine_.request(scope_, helper, Method::kDialBack, encode_dial_back_request(ask),
                  [this, round](RpcResult&&) { ask_helper(round); }, RpcOptions{rpc_timeout_ * 6, 4, false});
}

void DialBack::end_round(Endpoint::Family f, bool proven) {
  SelfCheck& sc = self_[family_index(f)];
  sc.asking = false;
  sc.concluded = true;
  Duration next = kReprove;
  if (proven) {
    ++self_checks_ok_;
    sc.retry = kRetryMin;
    sc.quick = 0;
  } else if (sc.solicited && sc.quick < kMaxQuick && !translated(f)) {
    ++sc.quick;
    next = kQuickRetry;
  } else {
    sc.quick = 0;
    next = sc.retry;
    sc.retry = std::min<Duration>(2 * sc.retry, kRetryMax);
  }
  schedule_self_check(f, next);
}

void DialBack::answer_probe(const IncomingRequest& q, const DialBackRequest& probe, const Reply& r) {
  SelfCheck* sc = nullptr;
  for (auto& s : self_)
    if (s.asking && s.nonce == probe.nonce) sc = &s;
  if (!sc) {
    refuse();
    return r.error("dial_back: unexpected probe");
  }
  ++probes_answered_;
  // Sends made while handling this probe (a handshake's answer) do not count: only what came before it.
  if (!engine_.sent_before_arrival(q.from.endpoint)) {
    reached_at_[family_index(q.from.endpoint.family)] = engine_.now();
    sc->reached = true;
  } else {
    sc->solicited = true;
  }
  r.ok(encode_bool(true));
}

// ------------------------------------------------------------ helpers (H1, H2)

void DialBack::on_request(const IncomingRequest& q, const Reply& r) {
  auto req = decode_dial_back_request(q.payload);
  if (!req) return r.error("malformed dial_back");
  switch (req->kind) {
    case DialBackKind::kSelfCheck: return serve_self_check(q, *req, r);
    case DialBackKind::kProbeFor: return serve_probe_for(q, *req, r);
    case DialBackKind::kProbe: return answer_probe(q, *req, r);
    case DialBackKind::kVerdict: return answer_verdict(q, r);
  }
}

// A proven asker within the rates and the probe bound; otherwise refused (counted), answered with an error
// or, for an unproven address, not at all (it is challenged; its retransmission finds it proven).
bool DialBack::helper_admits(const IncomingRequest& q, const DialBackRequest& req, const Reply& r) {
  if (serving_.contains(req.nonce)) return false;  // a retransmission of a request being served: that answers
  if (!engine_.address_proven(q.from.endpoint, q.from.key)) {
    engine_.challenge(q.from);
    refuse();
    return false;
  }
  TimePoint now = engine_.now();
  if (!per_asker_.allow(q.from.id, now) || !total_.take(total_rate_, total_rate_, now) || probes_ >= kMaxProbes) {
    refuse();
    r.error("dial_back refused: over the rate");
    return false;
  }
  return true;
}

// H2 for the asker S: a contact with an address of S's family, at neither S's IP address nor the one S reached
// us at (a probe from there is one S's NAT lets in as an answer), at random among the farther half from S's
// id: S's own lookups, keepalives and relay reservations go to the nodes near its id, so a far one is likelier
// to be a stranger to S (in a small network S talks to most nodes within 5 minutes). Confirmed or not: the
// confirmed ones are the older nodes, the ones an old S has talked to most.
std::vector<Contact> DialBack::pick_strangers(const Contact& s, const Endpoint& via) {
  std::vector<Contact> pool;
  for (int b = 0; b <= table_.deepest_bucket(); ++b)
    for (const auto& e : table_.bucket(static_cast<size_t>(b))) {
      if (e.contact.id == s.id) continue;
      auto c = at_family(e.contact, s.endpoint.family);
      if (!c || same_ip(c->endpoint, s.endpoint) || same_ip(c->endpoint, via)) continue;
      pool.push_back(*c);
    }
  size_t half = (pool.size() + 1) / 2;
  if (half == 0) return {};
  std::nth_element(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(half - 1), pool.end(),
                   [&](const Contact& a, const Contact& b) { return (b.id ^ s.id) < (a.id ^ s.id); });
  pool.resize(half);
  std::vector<Contact> out;
  while (out.size() < kStrangers && !pool.empty()) {
    size_t k = engine_.env().random_below(pool.size());
    out.push_back(pool[k]);
    pool[k] = pool.back();
    pool.pop_back();
  }
  return out;
}

void DialBack::serve_self_check(const IncomingRequest& q, const DialBackRequest& ask, const Reply& r) {
  if (!helper_admits(q, ask, r) || declined(q.from.endpoint.family, r)) return;
  Contact s = q.from;  // the asker, at the address its ask came from: nobody else is probed for it
  s.alt = {};
  auto strangers = pick_strangers(s, ask.via);
  if (strangers.empty()) return r.ok(encode_bool(false));
  ++probes_;
  ++asks_served_;
  serving_.insert(ask.nonce);
  DialBackRequest req;
  req.kind = DialBackKind::kProbeFor;
  req.nonce = ask.nonce;
  req.target = s;
  // Several strangers at once: S may have talked lately to any one of them (its join), and then only S can
  // tell (the probe comes in solicited). True when any of them probed it.
  struct Tally {
    size_t left;
    bool probed = false;
  };
  auto tally = std::make_shared<Tally>(Tally{strangers.size()});
  for (const auto& h2 : strangers)
    engine_.request(scope_, h2, Method::kDialBack, encode_dial_back_request(req),
                    [this, r, tally, nonce = ask.nonce](RpcResult&& res) {
      auto probed = res.ok() ? decode_bool(res.payload) : std::nullopt;
      tally->probed = tally->probed || probed.value_or(false);
      if (--tally->left > 0) return;
      --probes_;
      serving_.erase(nonce);
      r.ok(encode_bool(tally->probed));
    }, RpcOptions{rpc_timeout_ * 3, 2, false});
}

void DialBack::serve_probe_for(const IncomingRequest& q, const DialBackRequest& req, const Reply& r) {
  if (!helper_admits(q, req, r)) return;
  if (req.target.key == engine_.identity().public_key() || req.target.key == q.from.key) {
    refuse();
    return r.error("dial_back: cannot probe myself");
  }
  if (declined(req.target.endpoint.family, r)) return;
  ++probes_;
  ++asks_served_;
  serving_.insert(req.nonce);
  DialBackRequest probe;
  probe.kind = DialBackKind::kProbe;
  probe.nonce = req.nonce;
  engine_.request(scope_, req.target, Method::kDialBack, encode_dial_back_request(probe),
                  [this, r, nonce = req.nonce](RpcResult&& res) {
    --probes_;
    serving_.erase(nonce);
    r.ok(encode_bool(res.ok()));
  }, RpcOptions{rpc_timeout_, rpc_attempts_});
}

// ------------------------------------------------------------ verdicts (V asks S)

// Answered to unproven addresses too: the answer is no larger than the request, so the engine's AddressGuard
// (3x what came in, docs/protocol.md 10.1) already bounds what a forged source gets sent, and no third party
// is involved. Proof would cost every new verifier a challenge round trip and a retransmission.
void DialBack::answer_verdict(const IncomingRequest& q, const Reply& r) {
  TimePoint now = engine_.now();
  if (!verdicts_per_asker_.allow(q.from.id, now) || !verdicts_.take(kVerdictRate, kVerdictRate, now)) {
    refuse();
    return r.error("dial_back refused: over the rate");
  }
  ++verdicts_answered_;
  r.ok(encode_dial_back_verdict(verdict(q.from.endpoint.family)));
}

void DialBack::check(const Contact& s) {
  if (!enabled_) return;
  // Called as entries enter: a family's first self-check starts as soon as there are helpers for it.
  uint8_t families = engine_.env().families();
  for (auto f : {Endpoint::Family::kV4, Endpoint::Family::kV6})
    if ((families & family_bit(f)) && self_[family_index(f)].rounds == 0 && s.address(f)) self_check(f, true);
  if (checking_.size() >= kMaxChecks || checking_.contains(s.id)) return;
  // A contact on a loopback address is on this host: no NAT between us. Confirmed as it is.
  if (s.endpoint.is_loopback()) {
    if (table_.set_confirmed(s.id)) ++confirmed_;
    return;
  }
  checking_.insert(s.id);
  Contact at = s;  // asked over the family of the address the entry holds: the verdict is about that one
  at.alt = {};
  engine_.schedule(scope_, kFirstVerdict, [this, at] { ask_verdict(at, 0); });
}

void DialBack::done_checking(const NodeId& id) {
  checking_.erase(id);
  // A join checks ~180 contacts at once, then few: the table's buckets go with the last check.
  if (checking_.empty()) std::unordered_set<NodeId>().swap(checking_);
}

bool DialBack::confirm_as_asked(const Contact& s) {
  auto held = table_.find(s.id);  // confirmed for the address asked about, not one it moved to since
  if (!held || held->endpoint != s.endpoint || !table_.set_confirmed(s.id)) return false;
  ++confirmed_;
  return true;
}

void DialBack::heard_verdict(const Contact& s, DialBackVerdict v) {
  if (enabled_ && v == DialBackVerdict::kReachable && confirm_as_asked(s)) ++verdicts_heard_;
}

void DialBack::ask_verdict(const Contact& s, size_t attempt) {
  if (!table_.find(s.id) || table_.confirmed(s.id)) {  // gone while waiting, or its answer said reachable
    done_checking(s.id);
    return;
  }
  ++verdicts_asked_;
  // The retransmission also covers an address challenge.
  engine_.request(scope_, s, Method::kDialBack, encode_dial_back_request(DialBackRequest{}),
                  [this, s, attempt](RpcResult&& r) {
    auto v = r.ok() ? decode_dial_back_verdict(r.payload) : std::nullopt;
    if (v == DialBackVerdict::kUnknown && attempt < kUnknownRetries) {
      engine_.schedule(scope_, kUnknownRetry * (1 << attempt), [this, s, attempt] { ask_verdict(s, attempt + 1); });
      return;
    }
    done_checking(s.id);
    if (v == DialBackVerdict::kReachable) confirm_as_asked(s);
  }, RpcOptions{rpc_timeout_, rpc_attempts_});
}

}  // namespace storjnet::dht
