// Environment: everything a protocol state machine may ask of the outside world.
//
// Protocol code (engine, DHT, pubsub, messages, streams) never touches sockets, clocks, threads or a random
// source directly; it calls an Environment. Two drivers implement it: the real one (Boost.Asio UDP, system
// clock, libsodium randomness) and the simulator (virtual clock, virtual network, seeded randomness), so the
// same protocol code runs for real and, reproducibly by seed, at scale.
//
// Contract: all calls happen on the thread that drives the node; an implementation need not be thread-safe.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

#include "storjnet/bytes.h"
#include "storjnet/endpoint.h"

namespace storjnet {

// Monotonic time in nanoseconds since an arbitrary origin chosen by the driver.
using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::nanoseconds;
using namespace std::chrono_literals;

class Environment {
 public:
  virtual ~Environment() = default;
  // Monotonic "now".
  virtual TimePoint now() = 0;
  // Wall-clock microseconds since the Unix epoch: session epochs (ordered across restarts), DHT value
  // versions and expiry. It may step either way; nothing that must be monotonic reads it.
  virtual uint64_t unix_us() = 0;
  // Sends one datagram (at most 1280 bytes). Best effort; failures are silent, like UDP.
  virtual void send(const Endpoint& to, ByteView datagram) = 0;
  // Asks the driver to call the node's on_wake() at or after `at`. A later call replaces an earlier one.
  virtual void wake_at(TimePoint at) = 0;
  // The address families this node can send on (kFamilyV4 | kFamilyV6 bits, storjnet/endpoint.h): contacts
  // are reached at an address of one of them (docs/protocol.md 5, "Addresses"). Drivers that do not say: both.
  virtual uint8_t families() { return kBothFamilies; }
  // This node's address of family f on its local network when it is private and not loopback (RFC 1918, ULA,
  // link-local, CGNAT; Endpoint::is_private_or_loopback), with the port it receives on: what a node behind
  // the same home router reaches it at (docs/protocol.md 5.2, "Same router"). nullopt when it has none.
  // Drivers that do not say: none.
  virtual std::optional<Endpoint> lan_endpoint(Endpoint::Family) { return std::nullopt; }
  // Fills `out` with random bytes (cryptographic in the real driver, seeded in the simulator).
  virtual void random(std::span<uint8_t> out) = 0;

  uint64_t random_u64() {
    uint64_t v;
    random({reinterpret_cast<uint8_t*>(&v), sizeof v});
    return v;
  }
  // Uniform in [0, n) for n > 0.
  uint64_t random_below(uint64_t n) { return n ? random_u64() % n : 0; }
};

}  // namespace storjnet
