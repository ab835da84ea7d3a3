// sim::Nat: one simulated home router's address translation, in RFC 4787 terms.
//
// Mapping: a full-cone, restricted-cone or port-restricted router keeps one public port per inside endpoint
// (endpoint-independent mapping), trying the inside port first as Linux does; a symmetric router takes a
// random port per (inside endpoint, destination) (address-and-port-dependent mapping, nftables'
// `masquerade random`). Filtering: full cone lets anyone in through a live mapping; restricted cone only
// addresses the inside endpoint sent to; port-restricted and symmetric only (address, port) pairs it sent to.
// A mapping and its filter entries live until unused for `mapping_timeout` in either direction (Linux
// conntrack refreshes on both). Pure logic on virtual time: the simulator decides what to route through it.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <tuple>

#include "sim/rng.h"
#include "storjnet/endpoint.h"
#include "storjnet/environment.h"
#include "storjnet/simulator.h"

namespace storjnet::sim {

class Nat {
 public:
  Nat(NatModel model, uint32_t public_ip) : model_(model), ip_(public_ip) {}

  // The public source of a datagram from `inside` to `to`: creates or refreshes its mapping and lets `to`
  // answer through it. nullopt when every public port is in use by live mappings.
  std::optional<Endpoint> outbound(const Endpoint& inside, const Endpoint& to, TimePoint now, Rng& rng);
  // The inside endpoint a datagram from `from` to public `port` reaches, or nullopt: no live mapping there, or
  // the filter refuses `from`. Refreshes the mapping when it lets the datagram in.
  std::optional<Endpoint> inbound(const Endpoint& from, uint16_t port, TimePoint now);
  // What inbound() would answer, changing nothing.
  std::optional<Endpoint> peek(const Endpoint& from, uint16_t port, TimePoint now) const;

  const NatModel& model() const { return model_; }
  uint32_t public_ip() const { return ip_; }
  size_t mappings() const { return by_port_.size(); }
  size_t filter_entries() const { return flows_; }

 private:
  struct Mapping {
    Endpoint inside, dest;  // dest: the destination of a symmetric mapping (none otherwise)
    TimePoint last{};
    // Remote endpoints sent to (port 0 for restricted cone: address only) and when; none for full cone.
    // Each entry expires on its own, as a conntrack flow does.
    std::map<Endpoint, TimePoint> allowed;
  };
  using Key = std::pair<Endpoint, Endpoint>;  // (inside, destination or none)
  bool live(const Mapping& m, TimePoint now) const { return now - m.last < model_.mapping_timeout; }
  std::optional<uint16_t> free_port(const Endpoint& inside, TimePoint now, Rng& rng);
  void forget(uint16_t port);
  void sweep(TimePoint now);

  NatModel model_;
  uint32_t ip_;
  std::map<Key, uint16_t> by_key_;
  std::map<uint16_t, Mapping> by_port_;
  size_t flows_ = 0;      // filter entries over all mappings
  size_t sweep_at_ = 64;  // mappings + filter entries that trigger the next sweep of expired ones
};

}  // namespace storjnet::sim
