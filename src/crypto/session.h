// Per-peer session crypto: the shared key from X25519 and the receive-side replay window.
//
// Key = BLAKE2b-256( X25519(my_x25519_secret, peer_x25519_public) || lower_pk || higher_pk ), where the X25519
// keys are the Ed25519 identity keys converted by libsodium. Both ends derive the same key without a
// handshake, and only the holders of the two identity secrets can. Datagrams are sealed with AES-256-GCM under
// a per-session subkey of that key (BLAKE2b of the nonce's (epoch, random salt)), the session's counter as the
// GCM nonce, so no (subkey, nonce) pair is ever used twice (docs/protocol.md 1.4).
#pragma once
#include <array>
#include <cstdint>
#include <memory>

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
// seal and open use libsodium's AES-256-GCM where the CPU has AES-NI and CLMUL, else OpenSSL's; both give the
// same bytes. force_portable_aead(true) makes them use OpenSSL's (tests of that path).
void force_portable_aead(bool on);

// Receive-side replay protection for one peer: accepts each (epoch, salt, counter) at most once.
// A newer epoch starts a fresh window (the sender restarted or re-created its session); datagrams from an
// older epoch are stale. Within an epoch, counters up to kWindow behind the highest seen are tracked.
class ReplayWindow {
 public:
  static constexpr uint64_t kWindow = 512;
  enum class Verdict { kFresh, kReplay, kStale };

  ReplayWindow() = default;
  ReplayWindow(const ReplayWindow& o);
  ReplayWindow& operator=(const ReplayWindow& o);
  ReplayWindow(ReplayWindow&&) noexcept = default;
  ReplayWindow& operator=(ReplayWindow&&) noexcept = default;

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
  // Heap bytes held: 0 until a bit more than 64 counters behind the highest must be remembered.
  size_t heap_bytes() const { return far_ ? sizeof(Far) : 0; }

 private:
  // The window's kWindow bits (bit i: counter top_ - i seen) are `near_` (bits 0-63) and the rest. The rest is
  // allocated only when a set bit reaches it or a bit there is set: until then every bit of it equals
  // `far_all_`. Most sessions (a few DHT requests) never allocate it; the verdicts are those of one bitmap.
  static constexpr size_t kFarWords = kWindow / 64 - 1;
  using Far = std::array<uint64_t, kFarWords>;  // word j: bits 64 (j + 1) .. 64 (j + 1) + 63
  bool far_bit(uint64_t back) const;
  Far& far();  // allocates the rest (filled with far_all_) if needed
  void shift(uint64_t by);

  bool has_ = false, far_all_ = false;
  uint64_t epoch_ = 0, salt_ = 0, top_ = 0;
  uint64_t near_ = 0;
  std::unique_ptr<Far> far_;
};

}  // namespace storjnet::crypto
