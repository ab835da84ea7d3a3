#include "crypto/key_cache.h"
#include "storjnet/keyed_hash.h"

#include <sodium.h>

#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace storjnet::crypto {

namespace {
constexpr size_t kMaxConverted = 1 << 20;

// A pair is remembered by a 128-bit keyed BLAKE2b fingerprint of its two keys (smaller first), not the keys:
// an entry is 64 bytes instead of 128. The fingerprint key is random per process, so nobody can search for
// two pairs with one fingerprint offline, and by chance one collision among 2^19 entries takes ~2^90 tries.
using Print = std::array<uint8_t, 16>;
struct PrintHash {  // the fingerprint is already keyed and uniform: its first 8 bytes are the hash
  size_t operator()(const Print& p) const noexcept {
    size_t h;
    std::memcpy(&h, p.data(), sizeof h);
    return h;
  }
};

// Holds at most `max` entries in two generations of max / 2: when the newer one is full it becomes the older
// one and the oldest generation is dropped, so the max / 2 entries used most lately always stay (clearing
// everything when full forgot the pairs in use too, and a process with thousands of nodes paid their key
// agreements again). A hit in the older generation moves the entry into the newer one.
template <typename Key, typename Hash>
class TwoGenerations {
 public:
  explicit TwoGenerations(size_t max) : half_(max / 2) {}
  const std::array<uint8_t, 32>* find(const Key& k) {
    if (auto it = newer_.find(k); it != newer_.end()) return &it->second;
    auto it = older_.find(k);
    if (it == older_.end()) return nullptr;
    std::array<uint8_t, 32> v = it->second;
    older_.erase(it);
    return &put(k, v);
  }
  const std::array<uint8_t, 32>& put(const Key& k, const std::array<uint8_t, 32>& v) {
    if (newer_.size() >= half_) {
      older_ = std::move(newer_);
      newer_ = {};
    }
    return newer_.insert_or_assign(k, v).first->second;
  }
  void clear() {
    newer_ = {};
    older_ = {};
  }

 private:
  size_t half_;
  std::unordered_map<Key, std::array<uint8_t, 32>, Hash> newer_, older_;
};

std::mutex mu;
TwoGenerations<PublicKey, KeyedHash> converted(kMaxConverted);
TwoGenerations<Print, PrintHash> pairs(kMaxCachedPairs);
std::vector<Print> verified;  // kVerifiedSlots fingerprints of valid signatures (all zero: empty)
uint64_t remembered = 0;
uint64_t conversions = 0;  // x25519_of's conversions computed, not answered from `converted`

using PrintKey = std::array<uint8_t, crypto_generichash_KEYBYTES>;
PrintKey random_print_key() {
  PrintKey k;
  randombytes_buf(k.data(), k.size());
  return k;
}

// Stands for (pk, sig, msg). Its key is random per process and not the pair prints' own.
Print signature_print(const PublicKey& pk, ByteView msg, const Signature& sig) {
  static const PrintKey key = random_print_key();
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.data(), key.size(), sizeof(Print));
  crypto_generichash_update(&st, pk.data(), pk.size());
  crypto_generichash_update(&st, sig.data(), sig.size());
  crypto_generichash_update(&st, msg.data(), msg.size());
  Print out;
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}
size_t slot_of(const Print& p) { return PrintHash{}(p) & (kVerifiedSlots - 1); }

Print pair_print(const PublicKey& a, const PublicKey& b) {
  static const PrintKey key = random_print_key();
  const PublicKey& lo = a < b ? a : b;
  const PublicKey& hi = a < b ? b : a;
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.data(), key.size(), sizeof(Print));
  crypto_generichash_update(&st, lo.data(), lo.size());
  crypto_generichash_update(&st, hi.data(), hi.size());
  Print out;
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}
}  // namespace

std::optional<std::array<uint8_t, 32>> x25519_of(const PublicKey& pk, bool cache) {
  {
    std::lock_guard lock(mu);
    if (auto* hit = converted.find(pk)) return *hit;
  }
  std::array<uint8_t, 32> out;
  const bool ok = crypto_sign_ed25519_pk_to_curve25519(out.data(), pk.data()) == 0;
  std::lock_guard lock(mu);
  ++conversions;
  if (!ok) return std::nullopt;
  if (cache) converted.put(pk, out);
  return out;
}

bool cached_pair_key(const PublicKey& a, const PublicKey& b, std::array<uint8_t, 32>& out) {
  Print key = pair_print(a, b);
  std::lock_guard lock(mu);
  auto* hit = pairs.find(key);
  if (!hit) return false;
  out = *hit;
  return true;
}

bool pair_key(const PublicKey& a, const PublicKey& b, std::array<uint8_t, 32>& out,
              const std::function<bool(std::array<uint8_t, 32>&)>& compute) {
  Print key = pair_print(a, b);
  {
    std::lock_guard lock(mu);
    if (auto* hit = pairs.find(key)) {
      out = *hit;
      return true;
    }
  }
  if (!compute(out)) return false;
  std::lock_guard lock(mu);
  pairs.put(key, out);
  return true;
}

bool verify_signature(const PublicKey& pk, ByteView msg, const Signature& sig) {
  Print print = signature_print(pk, msg, sig);
  {
    std::lock_guard lock(mu);
    if (!verified.empty() && verified[slot_of(print)] == print) {
      ++remembered;
      return true;
    }
  }
  if (crypto_sign_verify_detached(sig.data(), msg.data(), msg.size(), pk.data()) != 0) return false;
  std::lock_guard lock(mu);
  if (verified.empty()) verified.resize(kVerifiedSlots);
  verified[slot_of(print)] = print;
  return true;
}

uint64_t signatures_remembered() {
  std::lock_guard lock(mu);
  return remembered;
}

uint64_t conversions_computed() {
  std::lock_guard lock(mu);
  return conversions;
}

void clear_key_caches() {
  std::lock_guard lock(mu);
  converted.clear();
  pairs.clear();
  verified = {};
}

}  // namespace storjnet::crypto
