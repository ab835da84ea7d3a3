// Per-peer session crypto: the shared key from X25519 and the receive-side replay window.
//
// Key = BLAKE2b-256( X25519(my_x25519_secret, peer_x25519_public) || lower_pk || higher_pk ), where the X25519
// keys are the Ed25519 identity keys converted by libsodium. Both ends derive the same key without a
// handshake, and only the holders of the two identity secrets can. Datagrams are sealed with
// XChaCha20-Poly1305 (IETF) under that key; the nonce is never reused because it embeds a per-session
// (epoch, random salt) pair and a per-session counter.
#pragma once
#include <array>
#include <bitset>
#include <cstdint>

#include "storjnet/bytes.h"
#include "storjnet/identity.h"

namespace storjnet::crypto {

using SessionKey = std::array<uint8_t, 32>;

// False when `peer` is not a usable Ed25519 key (not on the curve, low order) or is `me`'s own key.
// With cache=true the result is memoised process-wide (key_cache.h); pass false for keys claimed by
// unauthenticated senders, then remember_session_key() once their datagram authenticated.
bool derive_session_key(const Identity& me, const PublicKey& peer, SessionKey& out, bool cache = true);
void remember_session_key(const Identity& me, const PublicKey& peer, const SessionKey& key);

// Appends ciphertext||tag of `plain` to `out`. `ad` may point into `out` (typically the header already
// written there); `plain` must not.
void seal(const SessionKey& key, ByteView nonce24, ByteView ad, ByteView plain, Bytes& out);
// Decrypts into `out`; false when the tag does not verify.
bool open(const SessionKey& key, ByteView nonce24, ByteView ad, ByteView cipher, Bytes& out);

// Receive-side replay protection for one peer: accepts each (epoch, salt, counter) at most once.
// A newer epoch starts a fresh window (the sender restarted or re-created its session); datagrams from an
// older epoch are stale. Within an epoch, counters up to kWindow behind the highest seen are tracked.
class ReplayWindow {
 public:
  static constexpr uint64_t kWindow = 512;
  enum class Verdict { kFresh, kReplay, kStale };

  Verdict check(uint64_t epoch, uint64_t salt, uint64_t counter) const;
  // Records a datagram that passed check() and authenticated.
  void accept(uint64_t epoch, uint64_t salt, uint64_t counter);

  // What a window leaves behind when its session is shrunk (24 bytes instead of the bitmap): the sender
  // session seen last and its highest counter. A window restored from it treats every counter of that session
  // at or below `top` as seen (replay), older epochs and other salts as stale, and anything newer as fresh.
  struct Floor {
    uint64_t epoch = 0, salt = 0, top = 0;
    bool has = false;  // anything accepted
  };
  Floor floor() const { return {epoch_, salt_, top_, has_}; }
  static ReplayWindow from_floor(const Floor& f);

 private:
  bool has_ = false;
  uint64_t epoch_ = 0, salt_ = 0, top_ = 0;
  std::bitset<kWindow> seen_;  // bit i: counter top_ - i seen
};

}  // namespace storjnet::crypto
