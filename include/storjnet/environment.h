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
#include <functional>
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
  // Birthday punching (docs/protocol.md 5.2, "Upgrade"). Opens up to `count` fresh local ports (same address
  // as the node's socket of to's family) for datagrams to `to`. Until `life` has passed, every send to `to`
  // leaves from each of them instead of from the node's port. A datagram from `to` (and only from `to`: the
  // rest is dropped) arriving on one of them is delivered as if on the node's port, and makes that port the
  // node's way to `to`: sends to `to` leave from it alone, the others close, and it stays until unused in
  // either direction for kFreshPortIdle. Unhit ports close after `life`. A second call for a `to` with ports
  // open changes nothing. Returns how many ports were opened; drivers that do not say: 0 (not supported).
  static constexpr Duration kFreshPortIdle = std::chrono::seconds(120);
  virtual size_t open_fresh_ports(const Endpoint& /*to*/, size_t /*count*/, Duration /*life*/) { return 0; }
  // Sends one datagram from the node's port (or, as send() does, from the fresh ports open towards `to`) with
  // an IP TTL (IPv6: hop limit) of `ttl`, so that it crosses the first ttl-1 routers and no more. False when it was not sent (not supported, or the socket is busy):
  // never sent with a longer TTL instead. Drivers that do not say: false.
  virtual bool send_with_ttl(const Endpoint& /*to*/, ByteView /*datagram*/, uint8_t /*ttl*/) { return false; }
  // Fills `out` with random bytes (cryptographic in the real driver, seeded in the simulator).
  virtual void random(std::span<uint8_t> out) = 0;
  // Key work on another core: runs `work` (a pure computation that touches nothing but what it captured) off
  // the node's thread, then `done` on the node's thread as an event of its own (never inside this call). False
  // when the driver does not offload: the caller then computes in place. Drivers that do not say: false (the
  // simulator, so its runs stay deterministic).
  virtual bool offload(std::function<void()> /*work*/, std::function<void()> /*done*/) { return false; }

  uint64_t random_u64() {
    uint64_t v;
    random({reinterpret_cast<uint8_t*>(&v), sizeof v});
    return v;
  }
  // Uniform in [0, n) for n > 0.
  uint64_t random_below(uint64_t n) { return n ? random_u64() % n : 0; }
};

}  // namespace storjnet
