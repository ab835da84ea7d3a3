#include "dht/signed_value.h"

#include <cstring>
#include <string_view>

namespace storjnet::dht {

namespace {
constexpr std::string_view kContext = "storjnet-dht-value-v3";
}  // namespace

Bytes value_signing_bytes(uint32_t network_id, const StoredValue& v) {
  Bytes out(kContext.size() + 4 + NodeId::kSize + 8 + v.value.size());
  uint8_t* p = out.data();
  std::memcpy(p, kContext.data(), kContext.size());
  p += kContext.size();
  for (int i = 0; i < 4; ++i) *p++ = static_cast<uint8_t>(network_id >> (24 - 8 * i));
  std::memcpy(p, v.key.bytes().data(), NodeId::kSize);
  p += NodeId::kSize;
  for (int i = 0; i < 8; ++i) *p++ = static_cast<uint8_t>(v.version >> (56 - 8 * i));
  if (!v.value.empty()) std::memcpy(p, v.value.data(), v.value.size());
  return out;
}

void sign_value(StoredValue& v, const Identity& id, uint32_t network_id) {
  v.owner = id.public_key();
  v.signature = id.sign(value_signing_bytes(network_id, v));
}

bool verify_value(const StoredValue& v, uint32_t network_id) {
  return Identity::verify(v.owner, value_signing_bytes(network_id, v), v.signature);
}

bool same_signed_value(const StoredValue& a, const StoredValue& b) {
  return a.owner == b.owner && a.version == b.version && a.signature == b.signature && a.value == b.value;
}

bool VerifiedValues::check(const StoredValue& v, const std::function<bool(const StoredValue&)>& verify) {
  for (auto& seen : valid_)
    if (seen.key == v.key && same_signed_value(seen, v)) return true;
  if (!verify(v)) return false;
  if (valid_.size() < kMax) valid_.push_back(v);
  return true;
}

}  // namespace storjnet::dht
