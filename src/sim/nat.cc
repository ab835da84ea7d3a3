#include "sim/nat.h"

#include <vector>

namespace storjnet::sim {

namespace {
constexpr uint16_t kFirstPort = 1024;
constexpr uint32_t kPorts = 65536 - kFirstPort;

Endpoint address_only(Endpoint e) {
  e.port = 0;
  return e;
}
}  // namespace

std::optional<uint16_t> Nat::free_port(const Endpoint& inside, TimePoint now, Rng& rng) {
  auto usable = [&](uint16_t p) {
    auto it = by_port_.find(p);
    if (it == by_port_.end()) return true;
    if (live(it->second, now)) return false;
    forget(p);
    return true;
  };
  bool symmetric = model_.type == NatModel::Type::kSymmetric;
  if (!symmetric && inside.port >= kFirstPort && usable(inside.port)) return inside.port;  // port preserved
  // Cone: the next free port above the inside one; symmetric: anywhere.
  uint32_t start = symmetric ? static_cast<uint32_t>(rng.below(kPorts))
                             : (inside.port >= kFirstPort ? inside.port - kFirstPort : 0u);
  for (uint32_t i = 0; i < kPorts; ++i) {
    auto p = static_cast<uint16_t>(kFirstPort + (start + i) % kPorts);
    if (usable(p)) return p;
  }
  return std::nullopt;
}

void Nat::forget(uint16_t port) {
  auto it = by_port_.find(port);
  if (it == by_port_.end()) return;
  by_key_.erase({it->second.inside, it->second.dest});
  flows_ -= it->second.allowed.size();
  by_port_.erase(it);
}

void Nat::sweep(TimePoint now) {
  std::vector<uint16_t> dead;
  for (auto& [port, m] : by_port_) {
    if (!live(m, now)) {
      dead.push_back(port);
      continue;
    }
    flows_ -= std::erase_if(m.allowed, [&](const auto& a) { return now - a.second >= model_.mapping_timeout; });
  }
  for (uint16_t p : dead) forget(p);
  sweep_at_ = std::max<size_t>(64, 2 * (by_port_.size() + flows_));
}

std::optional<Endpoint> Nat::outbound(const Endpoint& inside, const Endpoint& to, TimePoint now, Rng& rng) {
  if (by_port_.size() + flows_ >= sweep_at_) sweep(now);
  Key key{inside, model_.type == NatModel::Type::kSymmetric ? to : Endpoint{}};
  uint16_t port;
  if (auto it = by_key_.find(key); it != by_key_.end() && live(by_port_.at(it->second), now)) {
    port = it->second;
  } else {
    if (it != by_key_.end()) forget(it->second);
    auto p = free_port(inside, now, rng);
    if (!p) return std::nullopt;
    port = *p;
    by_key_[key] = port;
    by_port_[port] = Mapping{inside, key.second, now, {}};
  }
  Mapping& m = by_port_.at(port);
  m.last = now;
  if (model_.type != NatModel::Type::kFullCone) {
    auto [a, added] = m.allowed.try_emplace(model_.type == NatModel::Type::kRestrictedCone ? address_only(to) : to, now);
    a->second = now;
    flows_ += added;
  }
  return Endpoint::v4(ip_, port);
}

std::optional<Endpoint> Nat::inbound(const Endpoint& from, uint16_t port, TimePoint now) {
  auto inside = peek(from, port, now);
  if (!inside) return std::nullopt;
  Mapping& m = by_port_.at(port);
  m.last = now;
  if (model_.type != NatModel::Type::kFullCone)
    m.allowed.at(model_.type == NatModel::Type::kRestrictedCone ? address_only(from) : from) = now;
  return inside;
}

std::optional<Endpoint> Nat::peek(const Endpoint& from, uint16_t port, TimePoint now) const {
  auto it = by_port_.find(port);
  if (it == by_port_.end() || !live(it->second, now)) return std::nullopt;
  const Mapping& m = it->second;
  if (model_.type != NatModel::Type::kFullCone) {
    auto a = m.allowed.find(model_.type == NatModel::Type::kRestrictedCone ? address_only(from) : from);
    if (a == m.allowed.end() || now - a->second >= model_.mapping_timeout) return std::nullopt;
  }
  return m.inside;
}

}  // namespace storjnet::sim
