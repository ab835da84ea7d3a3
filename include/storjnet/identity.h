// Identity: a node's Ed25519 key pair and the node id derived from it.
//
// Node id = BLAKE2b-160(Ed25519 public key). Keys live in `<data dir>/identity.key` (the 32-byte seed, hex,
// file mode 0600), created on first start and reused after.
#pragma once
#include <array>
#include <filesystem>
#include <string>

#include "storjnet/bytes.h"
#include "storjnet/node_id.h"

namespace storjnet {

using PublicKey = std::array<uint8_t, 32>;  // Ed25519

class Identity {
 public:
  // A new identity from 32 bytes of seed (the simulator passes seeded randomness).
  static Identity from_seed(ByteView seed32);
  // A fresh random identity (libsodium randomness).
  static Identity generate();
  // Loads `dir/identity.key`, or creates it (mode 0600) when absent. Throws std::runtime_error with a clear
  // message when the file is unreadable, malformed, or the directory cannot be written.
  static Identity load_or_create(const std::filesystem::path& dir);

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
