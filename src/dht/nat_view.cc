#include "dht/nat_view.h"

#include <algorithm>
#include <map>
#include <memory>

namespace storjnet {

const char* nat_mapping_name(NatMapping m) {
  switch (m) {
    case NatMapping::kIndependent: return "independent";
    case NatMapping::kDependent: return "dependent";
    case NatMapping::kUnknown: break;
  }
  return "unknown";
}

namespace dht {

namespace {
size_t index_of(Endpoint::Family f) { return f == Endpoint::Family::kV6 ? 1 : 0; }
Endpoint address_only(Endpoint e) {
  e.port = 0;
  return e;
}
}  // namespace

NatView::View NatView::verdict(const std::vector<Endpoint>& answers) {
  // The address most answers name (a tie: the first such); then within it the endpoint named most often.
  std::map<Endpoint, size_t> per_address, per_endpoint;
  for (const auto& a : answers) {
    ++per_address[address_only(a)];
    ++per_endpoint[a];
  }
  const std::pair<const Endpoint, size_t>* top = nullptr;
  for (const auto& kv : per_address)
    if (!top || kv.second > top->second) top = &kv;
  if (!top || top->second < 2) return {};
  const std::pair<const Endpoint, size_t>* same = nullptr;
  for (const auto& kv : per_endpoint)
    if (address_only(kv.first) == top->first && (!same || kv.second > same->second)) same = &kv;
  if (same->second >= 2) return {NatMapping::kIndependent, same->first};
  return {NatMapping::kDependent, top->first};
}

NatView::NatView(Engine& engine, RoutingTable& table, Duration rpc_timeout)
    : engine_(engine), table_(table), rpc_timeout_(rpc_timeout), scope_(engine.scope()) {
  engine_.schedule(scope_, kFirstCheck, [this] { check(); });
}

NatView::~NatView() { scope_.end(); }

void NatView::fill(DhtStats& s) const {
  s.nat_mapping_v4 = views_[0].mapping;
  s.nat_mapping_v6 = views_[1].mapping;
  s.nat_address_v4 = views_[0].address;
  s.nat_address_v6 = views_[1].address;
  s.nat_stun_asks = asks_;
}

std::vector<Contact> NatView::pick(Endpoint::Family f) {
  // Distinct addresses (two answers from one host prove nothing), confirmed contacts first, at random.
  std::vector<Contact> confirmed, others;
  for (int b = 0; b <= table_.deepest_bucket(); ++b)
    for (const auto& e : table_.bucket(static_cast<size_t>(b))) {
      auto at = e.contact.address(f);
      if (!at || at->is_loopback()) continue;
      Contact c = e.contact;
      c.endpoint = *at;
      c.alt = {};
      (e.confirmed ? confirmed : others).push_back(c);
    }
  std::vector<Contact> out;
  for (auto* pool : {&confirmed, &others})
    while (out.size() < kPeers && !pool->empty()) {
      size_t i = engine_.env().random_below(pool->size());
      Contact c = (*pool)[i];
      (*pool)[i] = pool->back();
      pool->pop_back();
      bool seen = std::any_of(out.begin(), out.end(), [&](const Contact& o) {
        return address_only(o.endpoint) == address_only(c.endpoint);
      });
      if (!seen) out.push_back(c);
    }
  return out;
}

void NatView::check() {
  bool settled = true;
  uint8_t families = engine_.env().families();
  for (auto f : {Endpoint::Family::kV4, Endpoint::Family::kV6}) {
    if (!(families & family_bit(f))) continue;
    check_family(f);
    settled = settled && views_[index_of(f)].mapping != NatMapping::kUnknown;
  }
  // A verdict stands for kInterval; without one (too few contacts yet, answers lost or disagreeing) the next
  // check comes sooner, backing off to kInterval.
  Duration next = settled ? kInterval : next_retry_;
  next_retry_ = settled ? kRetry : std::min<Duration>(2 * next_retry_, kInterval);
  engine_.schedule(scope_, next, [this] { check(); });
}

void NatView::check_family(Endpoint::Family f) {
  size_t i = index_of(f);
  if (asking_[i]) return;
  auto peers = pick(f);
  if (peers.size() < 2) return;
  struct Round {
    std::vector<Endpoint> answers;
    size_t left = 0;
  };
  auto round = std::make_shared<Round>();
  round->left = peers.size();
  asking_[i] = true;
  for (const auto& p : peers) {
    ++asks_;
    engine_.stun(scope_, p, [this, i, round](std::optional<Endpoint> seen) {
      if (seen && seen->family == (i ? Endpoint::Family::kV6 : Endpoint::Family::kV4)) round->answers.push_back(*seen);
      if (--round->left > 0) return;
      asking_[i] = false;
      View v = verdict(round->answers);
      // Too few answers (loss) keeps what an earlier round found.
      if (v.mapping != NatMapping::kUnknown || round->answers.size() >= 2) views_[i] = v;
    }, RpcOptions{rpc_timeout_, 2});
  }
}

}  // namespace dht
}  // namespace storjnet
