#include "crypto/session.h"

#include "crypto/key_cache.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <functional>

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

void seal(const SessionKey& key, ByteView nonce, ByteView ad, ByteView plain, Bytes& out) {
  size_t at = out.size();
  // The associated data is usually the header already in `out` (see the engine): growing `out` may move it,
  // so re-point `ad` after the resize instead of reading freed memory.
  const uint8_t* base = out.data();
  bool ad_in_out = !ad.empty() && !out.empty() && std::less_equal<const uint8_t*>()(base, ad.data()) &&
                   std::less<const uint8_t*>()(ad.data(), base + at);
  size_t ad_off = ad_in_out ? static_cast<size_t>(ad.data() - base) : 0;
  out.resize(at + plain.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  if (ad_in_out) ad = ByteView(out.data() + ad_off, ad.size());
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + at, &clen, plain.data(), plain.size(), ad.data(),
                                             ad.size(), nullptr, nonce.data(), key.data());
  out.resize(at + clen);
}

bool open(const SessionKey& key, ByteView nonce, ByteView ad, ByteView cipher, Bytes& out) {
  if (cipher.size() < crypto_aead_xchacha20poly1305_ietf_ABYTES) return false;
  out.resize(cipher.size() - crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &mlen, nullptr, cipher.data(), cipher.size(),
                                                 ad.data(), ad.size(), nonce.data(), key.data()) != 0)
    return false;
  out.resize(mlen);
  return true;
}

ReplayWindow::Verdict ReplayWindow::check(uint64_t epoch, uint64_t salt, uint64_t counter) const {
  if (!has_ || epoch > epoch_) return Verdict::kFresh;
  if (epoch < epoch_ || salt != salt_) return Verdict::kStale;
  if (counter > top_) return Verdict::kFresh;
  uint64_t back = top_ - counter;
  if (back >= kWindow || seen_[back]) return Verdict::kReplay;
  return Verdict::kFresh;
}

ReplayWindow ReplayWindow::from_floor(const Floor& f) {
  ReplayWindow w;
  w.has_ = f.has;
  w.epoch_ = f.epoch;
  w.salt_ = f.salt;
  w.top_ = f.top;
  if (f.has) w.seen_.set();  // counters in flight when the session was shrunk are refused, never replayed
  return w;
}

void ReplayWindow::accept(uint64_t epoch, uint64_t salt, uint64_t counter) {
  if (!has_ || epoch > epoch_) {
    has_ = true;
    epoch_ = epoch;
    salt_ = salt;
    top_ = counter;
    seen_.reset();
    seen_.set(0);
    return;
  }
  if (counter > top_) {
    uint64_t shift = counter - top_;
    if (shift >= kWindow) seen_.reset();
    else seen_ <<= shift;
    top_ = counter;
    seen_.set(0);
  } else {
    seen_.set(top_ - counter);
  }
}

}  // namespace storjnet::crypto
