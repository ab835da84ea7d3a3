#include "crypto/session.h"

#include "crypto/key_cache.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace storjnet::crypto {

namespace {
bool compute_session_key(const Identity& me, const PublicKey& peer, SessionKey& key, bool cache) {
  auto peer_x = x25519_of(peer, cache);
  if (!peer_x) return false;
  uint8_t shared[32];
  if (crypto_scalarmult(shared, me.x25519_secret().data(), peer_x->data()) != 0) return false;
  const PublicKey& a = std::min(me.public_key(), peer);
  const PublicKey& b = std::max(me.public_key(), peer);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, key.size());
  crypto_generichash_update(&st, shared, sizeof shared);
  crypto_generichash_update(&st, a.data(), a.size());
  crypto_generichash_update(&st, b.data(), b.size());
  crypto_generichash_final(&st, key.data(), key.size());
  sodium_memzero(shared, sizeof shared);
  return true;
}
}  // namespace

bool derive_session_key(const Identity& me, const PublicKey& peer, SessionKey& out, bool cache) {
  if (peer == me.public_key()) return false;
  if (!cache) {
    if (cached_pair_key(me.public_key(), peer, out)) return true;
    return compute_session_key(me, peer, out, false);
  }
  return pair_key(me.public_key(), peer, out, [&](SessionKey& key) { return compute_session_key(me, peer, key, true); });
}

void remember_session_key(const Identity& me, const PublicKey& peer, const SessionKey& key) {
  SessionKey out;
  pair_key(me.public_key(), peer, out, [&](SessionKey& k) {
    k = key;
    return true;
  });
}

namespace {
// A datagram is sealed with AES-256-GCM under the subkey BLAKE2b-256(key: the session key, message: the nonce's
// first 16 bytes, the sender session's epoch and salt), with the nonce's last 8 bytes (the session's counter)
// after 4 zero bytes as the 12-byte GCM nonce: a subkey is never used by two sessions, nor a GCM nonce twice
// under one subkey. One subkey serves every datagram of a session, so each thread keeps the subkeys it made
// last in a small direct-mapped table (256 entries, 20 KiB) and derives one per session and thread. A miss
// recomputes, so a chosen collision costs the sender nothing but what every datagram would cost without it.
// libsodium's AES-256-GCM where the CPU has AES-NI and CLMUL, else OpenSSL's (the same bytes: identity_test).
struct Subkeys {
  struct Entry {
    SessionKey key;
    std::array<uint8_t, 16> prefix;
    SessionKey subkey;
    bool used = false;
  };
  std::array<Entry, 256> table{};

  const SessionKey& of(const SessionKey& key, const uint8_t* prefix) {
    uint8_t slot = key[0] ^ key[9] ^ prefix[0] ^ prefix[3] ^ prefix[8] ^ prefix[13];
    Entry& e = table[slot];
    if (!e.used || e.key != key || std::memcmp(e.prefix.data(), prefix, 16) != 0) {
      e.key = key;
      std::memcpy(e.prefix.data(), prefix, 16);
      crypto_generichash(e.subkey.data(), e.subkey.size(), prefix, 16, key.data(), key.size());
      e.used = true;
    }
    return e.subkey;
  }
};
thread_local Subkeys tl_subkeys;

constexpr size_t kTag = 16;
std::atomic<bool> portable_forced{false};

bool hardware_aes() {
  static const bool ok = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available() == 1;
  return ok && !portable_forced.load(std::memory_order_relaxed);
}

// The GCM nonce: 4 zero bytes and the last 8 bytes of the 24-byte one.
std::array<uint8_t, 12> gcm_nonce(ByteView nonce24) {
  std::array<uint8_t, 12> n{};
  std::memcpy(n.data() + 4, nonce24.data() + 16, 8);
  return n;
}

// OpenSSL's AES-256-GCM, one context per thread.
struct Evp {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~Evp() { EVP_CIPHER_CTX_free(ctx); }
};
thread_local Evp tl_evp;

void evp_seal(const SessionKey& subkey, const uint8_t* n12, ByteView ad, ByteView plain, uint8_t* out) {
  EVP_CIPHER_CTX* c = tl_evp.ctx;
  int len = 0, fin = 0;
  if (!c || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, subkey.data(), n12) != 1 ||
      (!ad.empty() && EVP_EncryptUpdate(c, nullptr, &len, ad.data(), static_cast<int>(ad.size())) != 1) ||
      (!plain.empty() && EVP_EncryptUpdate(c, out, &len, plain.data(), static_cast<int>(plain.size())) != 1) ||
      EVP_EncryptFinal_ex(c, out + plain.size(), &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kTag, out + plain.size()) != 1)
    throw std::runtime_error("AES-256-GCM seal failed");
}

bool evp_open(const SessionKey& subkey, const uint8_t* n12, ByteView ad, ByteView cipher, uint8_t* out) {
  EVP_CIPHER_CTX* c = tl_evp.ctx;
  size_t n = cipher.size() - kTag;
  uint8_t tag[kTag];
  std::memcpy(tag, cipher.data() + n, kTag);
  int len = 0, fin = 0;
  return c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), nullptr, subkey.data(), n12) == 1 &&
         (ad.empty() || EVP_DecryptUpdate(c, nullptr, &len, ad.data(), static_cast<int>(ad.size())) == 1) &&
         (n == 0 || EVP_DecryptUpdate(c, out, &len, cipher.data(), static_cast<int>(n)) == 1) &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kTag, tag) == 1 && EVP_DecryptFinal_ex(c, out + n, &fin) == 1;
}
}  // namespace

void force_portable_aead(bool on) { portable_forced.store(on, std::memory_order_relaxed); }

void seal(const SessionKey& key, ByteView nonce, ByteView ad, ByteView plain, Bytes& out) {
  size_t at = out.size();
  // The associated data is usually the header already in `out` (see the engine): growing `out` may move it,
  // so re-point `ad` after the resize instead of reading freed memory.
  const uint8_t* base = out.data();
  bool ad_in_out = !ad.empty() && !out.empty() && std::less_equal<const uint8_t*>()(base, ad.data()) &&
                   std::less<const uint8_t*>()(ad.data(), base + at);
  size_t ad_off = ad_in_out ? static_cast<size_t>(ad.data() - base) : 0;
  out.resize(at + plain.size() + kTag);
  if (ad_in_out) ad = ByteView(out.data() + ad_off, ad.size());
  auto n12 = gcm_nonce(nonce);
  const SessionKey& subkey = tl_subkeys.of(key, nonce.data());
  if (!hardware_aes()) return evp_seal(subkey, n12.data(), ad, plain, out.data() + at);
  unsigned long long clen = 0;
  crypto_aead_aes256gcm_encrypt(out.data() + at, &clen, plain.data(), plain.size(), ad.data(), ad.size(), nullptr,
                                n12.data(), subkey.data());
  out.resize(at + clen);
}

bool open(const SessionKey& key, ByteView nonce, ByteView ad, ByteView cipher, Bytes& out) {
  if (cipher.size() < kTag) return false;
  out.resize(cipher.size() - kTag);
  auto n12 = gcm_nonce(nonce);
  const SessionKey& subkey = tl_subkeys.of(key, nonce.data());
  if (!hardware_aes()) return evp_open(subkey, n12.data(), ad, cipher, out.data());
  unsigned long long mlen = 0;
  if (crypto_aead_aes256gcm_decrypt(out.data(), &mlen, nullptr, cipher.data(), cipher.size(), ad.data(), ad.size(),
                                    n12.data(), subkey.data()) != 0)
    return false;
  out.resize(mlen);
  return true;
}

ReplayWindow::ReplayWindow(const ReplayWindow& o)
    : has_(o.has_), far_all_(o.far_all_), epoch_(o.epoch_), salt_(o.salt_), top_(o.top_), near_(o.near_),
      far_(o.far_ ? std::make_unique<Far>(*o.far_) : nullptr) {}

ReplayWindow& ReplayWindow::operator=(const ReplayWindow& o) {
  if (this != &o) *this = ReplayWindow(o);
  return *this;
}

bool ReplayWindow::far_bit(uint64_t back) const {
  if (!far_) return far_all_;
  uint64_t i = back - 64;
  return ((*far_)[i / 64] >> (i % 64)) & 1;
}

ReplayWindow::Far& ReplayWindow::far() {
  if (!far_) {
    far_ = std::make_unique<Far>();
    far_->fill(far_all_ ? ~uint64_t{0} : 0);
  }
  return *far_;
}

void ReplayWindow::shift(uint64_t by) {
  // The window moves `by` counters forward: every bit i becomes bit i + by; bits 0..by-1 become 0.
  if (by >= kWindow) {
    near_ = 0;
    far_.reset();
    far_all_ = false;
    return;
  }
  uint64_t spill = by >= 64 ? near_ : near_ >> (64 - by);  // near bits that move past bit 63
  if (!far_ && !far_all_ && spill == 0) {                   // the rest stays all zero
    near_ = by >= 64 ? 0 : near_ << by;
    return;
  }
  // The whole window as 8 words (word 0 = near_), shifted by whole words then bits.
  Far& f = far();
  std::array<uint64_t, kFarWords + 1> w{};
  w[0] = near_;
  std::copy(f.begin(), f.end(), w.begin() + 1);
  size_t words = by / 64, bits = by % 64;
  for (size_t i = w.size(); i-- > 0;) {
    uint64_t v = i >= words ? w[i - words] << bits : 0;
    if (bits && i >= words + 1) v |= w[i - words - 1] >> (64 - bits);
    w[i] = v;
  }
  near_ = w[0];
  std::copy(w.begin() + 1, w.end(), f.begin());
}

ReplayWindow::Verdict ReplayWindow::check(uint64_t epoch, uint64_t salt, uint64_t counter) const {
  if (!has_ || epoch > epoch_) return Verdict::kFresh;
  if (epoch < epoch_ || salt != salt_) return Verdict::kStale;
  if (counter > top_) return Verdict::kFresh;
  uint64_t back = top_ - counter;
  if (back >= kWindow) return Verdict::kReplay;
  bool seen = back < 64 ? (near_ >> back) & 1 : far_bit(back);
  return seen ? Verdict::kReplay : Verdict::kFresh;
}

ReplayWindow ReplayWindow::from_floor(const Floor& f) {
  ReplayWindow w;
  w.has_ = f.has;
  w.epoch_ = f.epoch;
  w.salt_ = f.salt;
  w.top_ = f.top;
  if (f.has) {  // counters in flight when the session was shrunk are refused, never replayed
    w.near_ = ~uint64_t{0};
    w.far_all_ = true;
  }
  return w;
}

void ReplayWindow::accept(uint64_t epoch, uint64_t salt, uint64_t counter) {
  if (!has_ || epoch > epoch_) {
    has_ = true;
    epoch_ = epoch;
    salt_ = salt;
    top_ = counter;
    near_ = 1;
    far_.reset();
    far_all_ = false;
    return;
  }
  if (counter > top_) {
    shift(counter - top_);
    top_ = counter;
    near_ |= 1;
    return;
  }
  uint64_t back = top_ - counter;
  if (back < 64) {
    near_ |= uint64_t{1} << back;
  } else if (back < kWindow) {
    uint64_t i = back - 64;
    far()[i / 64] |= uint64_t{1} << (i % 64);
  }
}

}  // namespace storjnet::crypto
