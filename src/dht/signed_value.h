// Signed DHT values: what the owner signs, and the check every storing node and getter applies.
//
// Signed bytes: "storjnet-dht-value-v3" (21 bytes) || network id (u32 big-endian) || key (20 bytes)
//               || version (u64 big-endian) || value. Ed25519 (libsodium, detached signature).
// The network id keeps a value signed for one network from being replayed into another; the key binds
// the value to its slot; the version orders the owner's own updates.
#pragma once
#include <functional>
#include <vector>

#include "storjnet/dht_storage.h"
#include "storjnet/identity.h"

namespace storjnet::dht {

Bytes value_signing_bytes(uint32_t network_id, const StoredValue& v);
// Sets v.owner to the identity's key and v.signature over (network_id, v.key, v.value, v.version).
void sign_value(StoredValue& v, const Identity& id, uint32_t network_id);
// True when v.signature is v.owner's valid signature of (network_id, v.key, v.value, v.version).
bool verify_value(const StoredValue& v, uint32_t network_id);
// Same owner, version, value and signature: the very bytes already verified once.
bool same_signed_value(const StoredValue& a, const StoredValue& b);

// The values one lookup has checked (of any key). A key's holders answer a get with the very same signed bytes: each
// distinct value is verified once, not once per holder. Remembers at most kMax valid values (a lookup that
// meets more distinct values verifies the others every time); an invalid value is never remembered.
class VerifiedValues {
 public:
  static constexpr size_t kMax = 4;
  // True when v is the same signed value as one already verified here, else verify(v) (remembered if true).
  bool check(const StoredValue& v, const std::function<bool(const StoredValue&)>& verify);

 private:
  std::vector<StoredValue> valid_;
};

}  // namespace storjnet::dht
