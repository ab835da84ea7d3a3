// Identity: a node's Ed25519 key pair and the node id derived from it.
//
// Node id = BLAKE2b-160(Ed25519 public key). Keys live in `<data dir>/identity.key` (the 32-byte seed, hex,
// file mode 0600), created on first start and reused after.
//
// Id puzzle (S/Kademlia's static crypto puzzle): a network may require that BLAKE2b-160(network id (4 bytes,
// big endian) | node id) start with c zero bits, so each id costs about 2^c key generations and ids cannot be
// placed at will. c = 0 (the default) accepts every id. Identity::generate(network_id, c) searches keys until
// the puzzle holds. See docs/protocol.md, section 1.1.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "storjnet/bytes.h"
#include "storjnet/node_id.h"

namespace storjnet {

using PublicKey = std::array<uint8_t, 32>;  // Ed25519
using Signature = std::array<uint8_t, 64>;  // Ed25519, detached

// Leading zero bits of BLAKE2b-160(network_id (BE) | id): the work the id embodies on that network.
int id_puzzle_bits(const NodeId& id, uint32_t network_id);
// True when `id` solves the puzzle of difficulty `bits` on `network_id` (always true for bits <= 0).
bool id_puzzle_ok(const NodeId& id, uint32_t network_id, int bits);

class Identity {
 public:
  // A new identity from 32 bytes of seed (the simulator passes seeded randomness).
  static Identity from_seed(ByteView seed32);
  // A fresh random identity (libsodium randomness).
  static Identity generate();
  // A fresh random identity whose id solves the puzzle of `puzzle_bits` on `network_id` (about 2^bits key
  // generations, ~20 us each). puzzle_bits is at most kMaxPuzzleBits (std::invalid_argument otherwise).
  static Identity generate(uint32_t network_id, int puzzle_bits);
  // Deterministic variant for simulations: from_seed(seed), else from_seed(BLAKE2b-256(seed)), ... until the
  // puzzle holds. With puzzle_bits <= 0 it equals from_seed(seed).
  static Identity from_seed_solving(ByteView seed32, uint32_t network_id, int puzzle_bits);
  static constexpr int kMaxPuzzleBits = 32;
  // Loads `dir/identity.key`, or creates it (mode 0600) when absent, solving the id puzzle of `puzzle_bits` on
  // `network_id` when creating. Throws std::runtime_error with a clear message when the file is unreadable,
  // malformed, the directory cannot be written, or a loaded identity does not solve the puzzle.
  static Identity load_or_create(const std::filesystem::path& dir, uint32_t network_id = 0, int puzzle_bits = 0);

  // Ed25519 signature of `msg` under this identity; verify() checks one against a public key (valid ones are
  // remembered process-wide, so the nodes of one process verify a signed record once: crypto/key_cache.h).
  Signature sign(ByteView msg) const;
  static bool verify(const PublicKey& pk, ByteView msg, const Signature& sig);

  const PublicKey& public_key() const { return pk_; }
  const NodeId& id() const { return id_; }
  // Ed25519 secret key (64 bytes, libsodium layout) and the X25519 pair derived from it.
  const std::array<uint8_t, 64>& secret_key() const { return sk_; }
  const std::array<uint8_t, 32>& x25519_secret() const { return xsk_; }
  const std::array<uint8_t, 32>& x25519_public() const { return xpk_; }

  static NodeId id_of(const PublicKey& pk);

 private:
  Identity() = default;
  PublicKey pk_{};
  std::array<uint8_t, 64> sk_{};
  std::array<uint8_t, 32> xsk_{}, xpk_{};
  NodeId id_;
};

}  // namespace storjnet
