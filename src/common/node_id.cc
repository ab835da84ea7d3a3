#include "storjnet/node_id.h"

#include <sodium.h>

#include <bit>
#include <stdexcept>

namespace storjnet {

bool NodeId::parse(std::string_view hex, NodeId& out, std::string* error) {
  auto fail = [&](const char* why) {
    if (error) *error = why;
    return false;
  };
  if (hex.size() != 2 * kSize) return fail("node id must be exactly 40 hex characters");
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return fail("node id must be lowercase hex (0-9, a-f)");
  auto b = storjnet::from_hex(hex);
  std::copy(b->begin(), b->end(), out.bytes_.begin());
  return true;
}

NodeId NodeId::from_hex(std::string_view hex) {
  NodeId id;
  std::string err;
  if (!parse(hex, id, &err)) throw std::invalid_argument(err);
  return id;
}

NodeId NodeId::from_bytes(ByteView b) {
  if (b.size() != kSize) throw std::invalid_argument("node id must be exactly 20 bytes");
  NodeId id;
  std::copy(b.begin(), b.end(), id.bytes_.begin());
  return id;
}

NodeId NodeId::hash_of(ByteView data) {
  NodeId id;
  crypto_generichash(id.bytes_.data(), kSize, data.data(), data.size(), nullptr, 0);
  return id;
}

std::string NodeId::hex() const { return to_hex(view()); }

int NodeId::common_prefix_bits(const NodeId& o) const {
  for (size_t i = 0; i < kSize; ++i) {
    uint8_t x = bytes_[i] ^ o.bytes_[i];
    if (x) return static_cast<int>(i * 8) + std::countl_zero(x);
  }
  return kBits;
}

int NodeId::log_distance(const NodeId& o) const {
  return static_cast<int>(kBits) - 1 - common_prefix_bits(o);
}

}  // namespace storjnet
