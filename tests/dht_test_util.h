// Helpers for the DHT unit tests: identities, contacts and signed values made from a number; fake networks.
#pragma once
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "dht/signed_value.h"
#include "sim/rng.h"
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

// A fake network's tables: each node knows the `near` nodes closest to it and `random` nodes drawn at random.
inline std::unordered_map<NodeId, std::vector<Contact>> fake_tables(const std::vector<Contact>& nodes, size_t near,
                                                                    size_t random, uint64_t seed) {
  sim::Rng rng(seed);
  std::unordered_map<NodeId, std::vector<Contact>> knows;
  for (auto& n : nodes) {
    auto sorted = nodes;
    std::sort(sorted.begin(), sorted.end(), [&](auto& a, auto& b) { return closer(n.id, a.id, b.id); });
    std::vector<Contact> k(sorted.begin() + 1, sorted.begin() + 1 + static_cast<long>(near));
    for (size_t r = 0; r < random; ++r) k.push_back(nodes[rng.below(nodes.size())]);
    knows[n.id] = k;
  }
  return knows;
}

inline std::vector<Contact> by_distance(std::vector<Contact> v, const NodeId& target) {
  std::sort(v.begin(), v.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  return v;
}

}  // namespace storjnet::test
