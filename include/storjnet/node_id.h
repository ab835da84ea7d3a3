// NodeId: a 160-bit identifier in the Kademlia keyspace.
//
// A node's id is BLAKE2b-160 of its Ed25519 public key (see identity.h); a DHT key is BLAKE2b-160 of the
// user's key string (dht_key in dht.h). Text form: exactly 40 lowercase hex characters.
#pragma once
#include <array>
#include <cstring>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "storjnet/bytes.h"
#include "storjnet/keyed_hash.h"

namespace storjnet {

class NodeId {
 public:
  static constexpr size_t kSize = 20;
  static constexpr size_t kBits = kSize * 8;

  NodeId() : bytes_{} {}
  explicit NodeId(const std::array<uint8_t, kSize>& b) : bytes_(b) {}

  // Parses 40 lowercase hex characters; throws std::invalid_argument with a clear message otherwise.
  static NodeId from_hex(std::string_view hex);
  // Same, without throwing: false and `error` set on bad input.
  static bool parse(std::string_view hex, NodeId& out, std::string* error = nullptr);
  // Exactly kSize bytes, else invalid_argument.
  static NodeId from_bytes(ByteView b);
  // BLAKE2b-160 of arbitrary data: node ids from public keys, DHT keys from user keys.
  static NodeId hash_of(ByteView data);

  std::string hex() const;
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }
  ByteView view() const { return {bytes_.data(), bytes_.size()}; }

  // XOR distance.
  NodeId operator^(const NodeId& o) const {
    NodeId r;
    for (size_t i = 0; i < kSize; ++i) r.bytes_[i] = bytes_[i] ^ o.bytes_[i];
    return r;
  }
  // The first 64 bits, big-endian: orders ids as operator<=> does, except among ids that share them.
  uint64_t prefix64() const {
    uint64_t v;
    std::memcpy(&v, bytes_.data(), 8);
    return __builtin_bswap64(v);
  }
  // Index of the highest set bit of (this ^ o), 159 = differ in the first bit; -1 when equal.
  int log_distance(const NodeId& o) const;
  // Number of leading bits shared with `o` (160 when equal).
  int common_prefix_bits(const NodeId& o) const;
  bool bit(size_t i) const { return (bytes_[i / 8] >> (7 - i % 8)) & 1; }

  // Big-endian numeric order (the XOR metric compares distances this way). Word-wise: no memcmp call.
  std::strong_ordering operator<=>(const NodeId& o) const {
    for (size_t i = 0; i < kSize; i += 4) {
      uint32_t a = load_be32(i), b = o.load_be32(i);
      if (a != b) return a < b ? std::strong_ordering::less : std::strong_ordering::greater;
    }
    return std::strong_ordering::equal;
  }
  bool operator==(const NodeId& o) const { return std::memcmp(bytes_.data(), o.bytes_.data(), kSize) == 0; }

 private:
  uint32_t load_be32(size_t i) const {
    uint32_t v;
    std::memcpy(&v, bytes_.data() + i, 4);
    return __builtin_bswap32(v);
  }
  std::array<uint8_t, kSize> bytes_;
};

// True when `a` is closer to `target` than `b` under XOR.
inline bool closer(const NodeId& target, const NodeId& a, const NodeId& b) { return (a ^ target) < (b ^ target); }

}  // namespace storjnet

// Node ids and DHT keys come from the network: keyed (see keyed_hash.h), so chosen ids cannot collide.
template <>
struct std::hash<storjnet::NodeId> {
  size_t operator()(const storjnet::NodeId& id) const noexcept {
    return storjnet::keyed_hash(id.bytes().data(), storjnet::NodeId::kSize);
  }
};
