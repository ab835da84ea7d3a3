// Process-wide caches of pure key computations, shared by every node in the process (the simulator hosts
// thousands, the real driver may too). The cached functions are deterministic, so caching changes no result;
// it only avoids repeating the expensive curve operations:
//  - Ed25519 public key -> X25519 public key (libsodium checks the point: costlier than a DH, 45 µs against 30 on
//    the bench VM);
//  - the pair key of (pk_a, pk_b), which both ends derive identically;
//  - whether an Ed25519 signature is valid, remembered for valid ones only (verify_signature).
// Thread-safe; bounded (the first two in two generations: the older half is dropped when full; the third is a
// direct-mapped table); keyed with random per-process keys (SipHash for Ed25519 keys, a 128-bit BLAKE2b
// fingerprint standing for a pair or a signed message, src/crypto/key_cache.cc), so chosen public keys cannot
// collide into one bucket. Callers insert only keys of peers we chose to send to or that authenticated (see the
// engine).
#pragma once
#include <array>
#include <functional>
#include <optional>

#include "storjnet/identity.h"

namespace storjnet::crypto {

// The pair-key cache's bound: about 20 MB at most (64-byte entries and their buckets).
constexpr size_t kMaxCachedPairs = 1 << 18;

// nullopt when `pk` is not a valid Ed25519 point. Only valid conversions are cached, and only with cache=true.
std::optional<std::array<uint8_t, 32>> x25519_of(const PublicKey& pk, bool cache = true);

// The cached pair key, if present (never computes).
bool cached_pair_key(const PublicKey& a, const PublicKey& b, std::array<uint8_t, 32>& out);

// Returns the cached key for the unordered pair {a, b}, computing it with `compute` (false: invalid) once.
bool pair_key(const PublicKey& a, const PublicKey& b, std::array<uint8_t, 32>& out,
              const std::function<bool(std::array<uint8_t, 32>&)>& compute);

// Whether `sig` is `pk`'s Ed25519 signature of `msg` (crypto_sign_verify_detached). Signatures found valid are
// remembered by a keyed 128-bit BLAKE2b fingerprint of (pk, sig, msg) in a direct-mapped table of
// kVerifiedSlots (64 KiB, allocated at the first valid signature; a newer fingerprint takes its slot), so the
// nodes of one process handed the same signed record (a put's k replicas, a get's holders, a pubsub message
// forwarded among them) verify it once. An invalid signature is never remembered: each one costs a verify.
constexpr size_t kVerifiedSlots = 1 << 12;
bool verify_signature(const PublicKey& pk, ByteView msg, const Signature& sig);
// Valid signatures answered from the table since the process started (for tests and benches).
uint64_t signatures_remembered();

// Ed25519 -> X25519 conversions x25519_of computed since the process started, failed ones included (answered from
// the cache: not counted; Identity's conversion of its own key: not counted). For tests and benches.
uint64_t conversions_computed();

// Forgets everything cached. For tests that need a receiver to pay for key work a sender in the same process
// already did (the cache is process-wide).
void clear_key_caches();

}  // namespace storjnet::crypto
