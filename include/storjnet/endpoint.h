// Endpoint: an IPv4 or IPv6 address and a UDP port. A plain value; no sockets involved.
#pragma once
#include <array>
#include <compare>
#include <cstring>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "storjnet/keyed_hash.h"

namespace storjnet {

struct Endpoint {
  enum class Family : uint8_t { kNone = 0, kV4 = 4, kV6 = 6 };
  Family family = Family::kNone;
  std::array<uint8_t, 16> addr{};  // v4 uses the first 4 bytes
  uint16_t port = 0;

  static Endpoint v4(uint32_t host_order_ip, uint16_t port);
  // "1.2.3.4" or "::1" plus a port; nullopt when the address does not parse.
  static std::optional<Endpoint> from_ip(std::string_view ip, uint16_t port);
  // "1.2.3.4:5", "[::1]:5"; nullopt otherwise.
  static std::optional<Endpoint> parse(std::string_view host_port);

  bool valid() const { return family != Family::kNone && port != 0; }
  std::string ip_string() const;
  std::string to_string() const;  // "1.2.3.4:5" or "[::1]:5"
  // Loopback, RFC 1918, link-local, CGNAT, ULA: addresses that must not be advertised to public peers.
  bool is_private_or_loopback() const;
  bool is_loopback() const;
  bool is_unspecified() const;
  // The network an address belongs to for fairness budgets: IPv4 /24, IPv6 /48 (one home or one machine's
  // block; see docs/protocol.md, "Threat model"). Port and host bits are zero.
  struct Prefix {
    Family family = Family::kNone;
    std::array<uint8_t, 6> bits{};  // v4: first 3 bytes; v6: first 6 bytes
    auto operator<=>(const Prefix&) const = default;
    bool operator==(const Prefix&) const = default;
    std::span<const uint8_t> view() const { return {reinterpret_cast<const uint8_t*>(this), sizeof *this}; }
  };
  Prefix prefix() const {
    Prefix p;
    p.family = family;
    size_t n = family == Family::kV4 ? 3 : family == Family::kV6 ? 6 : 0;
    for (size_t i = 0; i < n; ++i) p.bits[i] = addr[i];
    return p;
  }

  auto operator<=>(const Endpoint&) const = default;
  bool operator==(const Endpoint&) const = default;
};

// Address families as a bit set: what a node can send on (Environment::families).
inline constexpr uint8_t kFamilyV4 = 1, kFamilyV6 = 2, kBothFamilies = kFamilyV4 | kFamilyV6;
inline constexpr uint8_t family_bit(Endpoint::Family f) {
  return f == Endpoint::Family::kV4 ? kFamilyV4 : f == Endpoint::Family::kV6 ? kFamilyV6 : 0;
}
// The family a node's reachability is judged on (docs/protocol.md 5.1, "Families"): IPv4 when it has it, the
// family nearly every peer has (a dual-stack node behind an IPv4 NAT needs relays for its IPv4 peers even when
// its IPv6 address is open), else IPv6.
inline constexpr Endpoint::Family judged_family(uint8_t families) {
  return (families & kFamilyV4) || !(families & kFamilyV6) ? Endpoint::Family::kV4 : Endpoint::Family::kV6;
}

static_assert(sizeof(Endpoint::Prefix) == 7, "Prefix is hashed as its bytes");

}  // namespace storjnet

template <>
struct std::hash<storjnet::Endpoint::Prefix> {
  size_t operator()(const storjnet::Endpoint::Prefix& p) const noexcept { return storjnet::keyed_hash(&p, sizeof p); }
};

// Endpoints come from the network (source addresses, contacts): keyed (see keyed_hash.h).
template <>
struct std::hash<storjnet::Endpoint> {
  size_t operator()(const storjnet::Endpoint& e) const noexcept {
    uint8_t b[19];
    std::memcpy(b, e.addr.data(), 16);
    b[16] = static_cast<uint8_t>(e.port >> 8);
    b[17] = static_cast<uint8_t>(e.port);
    b[18] = static_cast<uint8_t>(e.family);
    return storjnet::keyed_hash(b, sizeof b);
  }
};
