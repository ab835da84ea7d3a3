#include "crypto/key_cache.h"
#include "storjnet/keyed_hash.h"

#include <sodium.h>

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace storjnet::crypto {

namespace {
constexpr size_t kMaxConverted = 1 << 20;
constexpr size_t kMaxPairs = 1 << 19;  // about 80 MB at most

struct PairHash {
  size_t operator()(const std::pair<PublicKey, PublicKey>& p) const {
    uint8_t both[64];
    std::memcpy(both, p.first.data(), 32);
    std::memcpy(both + 32, p.second.data(), 32);
    return keyed_hash(both, sizeof both);
  }
};

std::mutex mu;
std::unordered_map<PublicKey, std::array<uint8_t, 32>, KeyedHash> converted;
std::unordered_map<std::pair<PublicKey, PublicKey>, std::array<uint8_t, 32>, PairHash> pairs;
}  // namespace

std::optional<std::array<uint8_t, 32>> x25519_of(const PublicKey& pk, bool cache) {
  {
    std::lock_guard lock(mu);
    auto it = converted.find(pk);
    if (it != converted.end()) return it->second;
  }
  std::array<uint8_t, 32> out;
  if (crypto_sign_ed25519_pk_to_curve25519(out.data(), pk.data()) != 0) return std::nullopt;
  if (cache) {
    std::lock_guard lock(mu);
    if (converted.size() >= kMaxConverted) converted.clear();
    converted.emplace(pk, out);
  }
  return out;
}

bool cached_pair_key(const PublicKey& a, const PublicKey& b, std::array<uint8_t, 32>& out) {
  auto key = a < b ? std::pair(a, b) : std::pair(b, a);
  std::lock_guard lock(mu);
  auto it = pairs.find(key);
  if (it == pairs.end()) return false;
  out = it->second;
  return true;
}

bool pair_key(const PublicKey& a, const PublicKey& b, std::array<uint8_t, 32>& out,
              const std::function<bool(std::array<uint8_t, 32>&)>& compute) {
  auto key = a < b ? std::pair(a, b) : std::pair(b, a);
  {
    std::lock_guard lock(mu);
    auto it = pairs.find(key);
    if (it != pairs.end()) {
      out = it->second;
      return true;
    }
  }
  if (!compute(out)) return false;
  std::lock_guard lock(mu);
  if (pairs.size() >= kMaxPairs) pairs.clear();
  pairs.emplace(key, out);
  return true;
}

void clear_key_caches() {
  std::lock_guard lock(mu);
  converted.clear();
  pairs.clear();
}

}  // namespace storjnet::crypto
