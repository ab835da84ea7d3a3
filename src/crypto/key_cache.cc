#include "crypto/key_cache.h"

#include <sodium.h>

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace storjnet::crypto {

namespace {
constexpr size_t kMaxConverted = 1 << 20;
constexpr size_t kMaxPairs = 1 << 19;  // about 80 MB at most

struct PkHash {
  size_t operator()(const PublicKey& k) const {
    size_t h;
    std::memcpy(&h, k.data(), sizeof h);
    return h;
  }
};
struct PairHash {
  size_t operator()(const std::pair<PublicKey, PublicKey>& p) const {
    return PkHash()(p.first) * 0x9e3779b97f4a7c15ull ^ PkHash()(p.second);
  }
};

std::mutex mu;
std::unordered_map<PublicKey, std::optional<std::array<uint8_t, 32>>, PkHash> converted;
std::unordered_map<std::pair<PublicKey, PublicKey>, std::array<uint8_t, 32>, PairHash> pairs;
}  // namespace

std::optional<std::array<uint8_t, 32>> x25519_of(const PublicKey& pk) {
  {
    std::lock_guard lock(mu);
    auto it = converted.find(pk);
    if (it != converted.end()) return it->second;
  }
  std::optional<std::array<uint8_t, 32>> x;
  std::array<uint8_t, 32> out;
  if (crypto_sign_ed25519_pk_to_curve25519(out.data(), pk.data()) == 0) x = out;
  std::lock_guard lock(mu);
  if (converted.size() >= kMaxConverted) converted.clear();
  converted.emplace(pk, x);
  return x;
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

}  // namespace storjnet::crypto
