// LanAddress: the real driver's answer to Environment::lan_endpoint: the private, non-loopback address this
// host uses on its local network for a socket bound to `bound` (docs/protocol.md 5.2, "Same router").
// A socket bound to a private address: that address. One bound to the wildcard: the source address the
// kernel picks for a public destination (a UDP connect, which sends nothing, then getsockname), looked up
// again at most every kRecheck (an interface may change). Public, loopback or no route: none.
#pragma once
#include <chrono>
#include <optional>

#include "storjnet/endpoint.h"

namespace storjnet::real {

// The address the kernel would send from towards a public address of `family` (no datagram is sent); nullopt
// without a route.
std::optional<Endpoint> route_source(Endpoint::Family family);

class LanAddress {
 public:
  static constexpr std::chrono::seconds kRecheck{30};
  // `bound`: the socket's local address and port; none when it is not of family f.
  std::optional<Endpoint> get(Endpoint::Family f, const Endpoint& bound, std::chrono::steady_clock::time_point now);

 private:
  std::optional<Endpoint> cached_;
  std::chrono::steady_clock::time_point at_{};
  bool looked_ = false;
};

}  // namespace storjnet::real
