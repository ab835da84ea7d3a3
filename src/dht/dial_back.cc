#include "dht/dial_back.h"

#include <algorithm>

namespace storjnet::dht {

struct DialBack::Check {
  Contact target;
  std::vector<Contact> helpers;
  size_t next = 0;
};

DialBack::DialBack(Engine& engine, RoutingTable& table, const DhtConfig& cfg)
    : engine_(engine), table_(table), enabled_(cfg.dial_back), rpc_timeout_(cfg.rpc_timeout),
      rpc_attempts_(cfg.rpc_attempts), total_rate_(cfg.dial_back_total_rate), per_asker_(cfg.dial_back_rate, 1024),
      scope_(engine.scope()) {
  engine_.set_handler(Method::kDialBack, [this](const IncomingRequest& q, const Reply& r) { on_request(q, r); });
  engine_.set_rate_limited(Method::kDialBack);
}

DialBack::~DialBack() {
  scope_.end();
  engine_.set_handler(Method::kDialBack, nullptr);
}

void DialBack::refuse() {
  ++asks_refused_;
  engine_.drops().add(DropReason::kDhtDialBackRefused);
}

namespace {
size_t family_index(Endpoint::Family f) { return f == Endpoint::Family::kV6 ? 1 : 0; }
}  // namespace

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

// Every peer on this host (make run, storjnetd --nodes, the benches): nothing NATs between us, and no helper at
// another address exists to probe us, so we count as reachable (no relay reservations, no keepalives).
bool DialBack::loopback_only() const {
  if (table_.size() == 0) return false;
  for (int b = 0; b <= table_.deepest_bucket(); ++b)
    for (const auto& e : table_.bucket(static_cast<size_t>(b)))
      if (!e.contact.endpoint.is_loopback()) return false;
  return true;
}

void DialBack::fill(DhtStats& s) const {
  s.reachable = reachable();
  uint8_t families = engine_.env().families();
  s.reachable_v4 = (families & kFamilyV4) && reachable(Endpoint::Family::kV4);
  s.reachable_v6 = (families & kFamilyV6) && reachable(Endpoint::Family::kV6);
  s.dial_back_asks_sent = asks_sent_;
  s.dial_back_asks_served = asks_served_;
  s.dial_back_asks_refused = asks_refused_;
  s.dial_back_probes_answered = probes_answered_;
  s.dial_back_confirmed = confirmed_;
  s.dial_back_forged = forged_;
}

// ------------------------------------------------------------ verifier

std::vector<Contact> DialBack::pick_helpers(const Contact& s) {
  std::vector<Contact> confirmed, others;
  auto same_address = [](const Endpoint& a, const Endpoint& b) { return a.family == b.family && a.addr == b.addr; };
  uint8_t family = family_bit(s.endpoint.family);  // a helper must have an address of it to send the probe
  for (int b = 0; b <= table_.deepest_bucket(); ++b) {
    for (const auto& e : table_.bucket(static_cast<size_t>(b))) {
      const Contact& c = e.contact;
      if (c.id == s.id || same_address(c.endpoint, s.endpoint) || !c.reachable_by(family)) continue;
      (e.confirmed ? confirmed : others).push_back(c);
    }
  }
  std::vector<Contact> out;
  for (auto* pool : {&confirmed, &others})
    while (out.size() < kHelpers && !pool->empty()) {
      size_t i = engine_.env().random_below(pool->size());
      out.push_back((*pool)[i]);
      (*pool)[i] = pool->back();
      pool->pop_back();
    }
  return out;
}

void DialBack::check(const Contact& s) {
  if (!enabled_ || checking_.size() >= kMaxChecks || checking_.contains(s.id)) return;
  // A contact on a loopback address is on this host: no NAT between us, and no helper can probe it from
  // another address (helpers never share S's address). Confirmed as it is.
  if (s.endpoint.is_loopback()) {
    if (table_.set_confirmed(s.id)) ++confirmed_;
    return;
  }
  auto c = std::make_shared<Check>(Check{s, pick_helpers(s)});
  if (c->helpers.empty()) return;
  checking_.insert(s.id);
  ask_next(std::move(c));
}

void DialBack::ask_next(std::shared_ptr<Check> c) {
  if (c->next >= c->helpers.size()) {
    checking_.erase(c->target.id);
    return;
  }
  Contact helper = c->helpers[c->next++];
  DialBackRequest ask;
  engine_.env().random(ask.nonce);
  ask.target = c->target;
  ++asks_sent_;
  // The helper's probe takes up to rpc_timeout; the ask's retransmission also covers an address challenge.
  RpcOptions opts{rpc_timeout_ * 3, 2};
  engine_.request(scope_, helper, Method::kDialBack, encode_dial_back_request(ask),
                  [this, c, helper, nonce = ask.nonce](RpcResult&& r) {
    auto a = r.ok() ? decode_dial_back_answer(r.payload) : std::nullopt;
    if (a && a->reached) {
      // Signed over the family the probe came over: the one of the address asked about, or it confirms nothing.
      Bytes signed_bytes = testimony_signing_bytes(engine_.config().network_id, nonce, helper.key,
                                                   c->target.endpoint.family, a->unsolicited);
      if (!Identity::verify(c->target.key, signed_bytes, a->signature)) {
        ++forged_;
        engine_.drops().add(DropReason::kDhtDialBackRefused);
      } else if (a->unsolicited) {
        checking_.erase(c->target.id);
        if (table_.set_confirmed(c->target.id)) ++confirmed_;
        return;
      }
    }
    ask_next(c);
  }, opts);
}

// ------------------------------------------------------------ helper and probed node

void DialBack::on_request(const IncomingRequest& q, const Reply& r) {
  auto req = decode_dial_back_request(q.payload);
  if (!req) return r.error("malformed dial_back");
  if (req->probe) return answer_probe(q, *req, r);
  serve_ask(q, *req, r);
}

void DialBack::serve_ask(const IncomingRequest& q, const DialBackRequest& ask, const Reply& r) {
  TimePoint now = engine_.now();
  if (!engine_.address_proven(q.from.endpoint, q.from.key)) {
    // Unanswered: the asker echoes the challenge, and its retransmitted ask finds its address proven.
    engine_.challenge(q.from);
    return refuse();
  }
  if (ask.target.key == engine_.identity().public_key()) {
    refuse();
    return r.error("dial_back: cannot probe myself");
  }
  if (!per_asker_.allow(q.from.id, now) || !total_.take(total_rate_, total_rate_, now) || probes_ >= kMaxProbes) {
    refuse();
    return r.error("dial_back refused: over the rate");
  }
  ++probes_;
  ++asks_served_;
  DialBackRequest probe;
  probe.probe = true;
  probe.nonce = ask.nonce;
  engine_.request(scope_, ask.target, Method::kDialBack, encode_dial_back_request(probe), [this, r](RpcResult&& res) {
    --probes_;
    auto a = res.ok() ? decode_dial_back_answer(res.payload) : std::nullopt;
    r.ok(encode_dial_back_answer(a ? *a : DialBackAnswer{}));
  }, RpcOptions{rpc_timeout_, rpc_attempts_});
}

void DialBack::answer_probe(const IncomingRequest& q, const DialBackRequest& probe, const Reply& r) {
  TimePoint now = engine_.now();
  if (!testimonies_.take(kTestimonyRate, kTestimonyRate, now)) {
    refuse();
    return r.error("dial_back: testimony rate exceeded");
  }
  DialBackAnswer a;
  a.reached = true;
  a.unsolicited = !engine_.sent_before_arrival(q.from.endpoint);
  a.signature = engine_.identity().sign(testimony_signing_bytes(engine_.config().network_id, probe.nonce, q.from.key,
                                                                q.from.endpoint.family, a.unsolicited));
  if (a.unsolicited) reached_at_[family_index(q.from.endpoint.family)] = now;
  ++probes_answered_;
  r.ok(encode_dial_back_answer(a));
}

}  // namespace storjnet::dht
