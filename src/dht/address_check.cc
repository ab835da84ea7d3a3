#include "dht/address_check.h"

namespace storjnet::dht {

AddressCheck::AddressCheck(Engine& engine, RoutingTable& table, Duration rpc_timeout)
    : engine_(engine), table_(table), timeout_(rpc_timeout), scope_(engine.scope()) {
  rate_.tokens = kBurst;
  rate_.at = engine.now();
}

AddressCheck::~AddressCheck() { scope_.end(); }

void AddressCheck::learned(std::vector<Contact>& contacts) {
  uint8_t families = engine_.env().families();
  for (Contact& c : contacts) {
    c = c.for_families(families);
    for (const Endpoint* e : {&c.endpoint, &c.alt})
      if (e->valid() && !(family_bit(e->family) & families)) {
        mixed_ = true;
        if (c.endpoint.valid() && (family_bit(c.endpoint.family) & families)) {  // a usable contact's other address
          if (hearsay_.size() >= kRemembered && !hearsay_.count(c.id)) hearsay_.clear();
          hearsay_[c.id] = *e;
        }
      }
    if (!c.dual()) continue;
    auto held = table_.find(c.id);
    if (!held || held->key != c.key) continue;
    for (auto f : {Endpoint::Family::kV4, Endpoint::Family::kV6}) {
      auto claim = c.address(f);
      if (claim && (family_bit(f) & families) && !held->address(f)) check(c.id, c.key, *claim);
    }
  }
}

void AddressCheck::early(const Contact& c) {
  uint8_t families = engine_.env().families();
  if ((families & (families - 1)) == 0) return;  // one family: nothing can come from another
  auto it = early_.find(c.id);
  if (it == early_.end()) {
    if (early_.size() >= kMaxEarly) early_.clear();
    early_.emplace(c.id, c);
  } else if (it->second.key == c.key) {
    it->second.set_address(c.endpoint);
  }
}

void AddressCheck::added(const Contact& c) {
  auto it = early_.find(c.id);
  if (it == early_.end()) return;
  Contact e = it->second;
  early_.erase(it);
  if (e.key != c.key) return;
  for (const Endpoint* a : {&e.endpoint, &e.alt})
    if (a->valid() && a->family != c.endpoint.family) check(c.id, c.key, *a);
}

std::optional<Endpoint> AddressCheck::hearsay(const NodeId& id) const {
  auto it = hearsay_.find(id);
  if (it == hearsay_.end()) return std::nullopt;
  return it->second;
}

void AddressCheck::check(const NodeId& id, const PublicKey& key, const Endpoint& at) {
  if (!(family_bit(at.family) & engine_.env().families())) return;
  auto held = table_.find(id);
  if (!held || held->key != key || held->address(at.family) == at) return;
  TimePoint now = engine_.now();
  if (auto it = recent_.find(at); it != recent_.end() && now - it->second < kRecheck) return;
  if (in_flight_.count(id)) return;
  if (in_flight_.size() >= kMaxInFlight || !rate_.take(kRate, kBurst, now)) {
    ++refused_;
    return;
  }
  if (recent_.size() >= kRemembered) recent_.clear();
  recent_[at] = now;
  in_flight_.insert(id);
  ++checks_;
  engine_.ping(scope_, Contact{id, key, at}, [this, id](std::optional<NodeId>) { in_flight_.erase(id); },
               RpcOptions{timeout_, 1});
}

}  // namespace storjnet::dht
