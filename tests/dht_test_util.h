// Helpers for the DHT unit tests: identities, contacts and signed values made from a number.
#pragma once
#include <array>
#include <cstring>
#include <string>

#include "dht/signed_value.h"
#include "storjnet/contact.h"
#include "storjnet/dht.h"
#include "storjnet/identity.h"

namespace storjnet::test {

inline Identity identity_n(uint32_t n) {
  std::array<uint8_t, 32> seed{};
  std::memcpy(seed.data(), &n, 4);
  seed[31] = 0x5a;
  return Identity::from_seed(seed);
}

// Contact n at 10.0.0.0 + n, port 4000.
inline Contact contact_n(uint32_t n) {
  return Contact::from_key(identity_n(n).public_key(), Endpoint::v4(0x0a000000u + n, 4000));
}

// A value under dht_key(key), signed by owner.
inline StoredValue value_of(const std::string& key, Bytes bytes, uint64_t version, const Identity& owner) {
  StoredValue v;
  v.key = dht_key(key);
  v.value = std::move(bytes);
  v.version = version;
  dht::sign_value(v, owner, 1);
  return v;
}

}  // namespace storjnet::test
