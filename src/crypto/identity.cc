#include "storjnet/identity.h"

#include "crypto/key_cache.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace storjnet {

namespace {
struct SodiumInit {
  SodiumInit() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  }
};
void ensure_sodium() { static SodiumInit once; }
}  // namespace

namespace {
// Each thread remembers its last key -> id derivations and puzzle checks, each a BLAKE2b: a DHT answer names 20
// contacts, mostly nodes the thread decoded moments before (for another node of the process, or in the last
// answer), and both hashes ran for each. Direct-mapped tables, allocated at first use, each slot holding its
// whole input: a chosen key or id can only push another out of its slot, which then costs the hash again.
template <class In, class Out>
class Memo {
 public:
  static constexpr size_t kSlots = 1024;
  template <class F>
  Out get(const In& in, size_t index, F compute) {
    if (!slots_) slots_ = std::make_unique<std::array<Slot, kSlots>>();
    Slot& s = (*slots_)[index % kSlots];
    if (!s.used || s.in != in) s = {in, compute(), true};
    return s.out;
  }

 private:
  struct Slot {
    In in{};
    Out out{};
    bool used = false;
  };
  std::unique_ptr<std::array<Slot, kSlots>> slots_;
};
using PuzzleInput = std::array<uint8_t, 4 + NodeId::kSize>;  // network_id (BE) | id
thread_local Memo<PublicKey, NodeId> ids;
thread_local Memo<PuzzleInput, uint8_t> puzzles;  // at most 160 bits

size_t index_of(const uint8_t* bytes) { return size_t{bytes[0]} | size_t{bytes[1]} << 8; }
}  // namespace

NodeId Identity::id_of(const PublicKey& pk) {
  return ids.get(pk, index_of(pk.data()), [&] { return NodeId::hash_of({pk.data(), pk.size()}); });
}

int id_puzzle_bits(const NodeId& id, uint32_t network_id) {
  PuzzleInput in;
  for (int i = 0; i < 4; ++i) in[i] = static_cast<uint8_t>(network_id >> (24 - 8 * i));
  std::memcpy(in.data() + 4, id.bytes().data(), NodeId::kSize);
  return puzzles.get(in, index_of(id.bytes().data()), [&] {
    return static_cast<uint8_t>(NodeId::hash_of({in.data(), in.size()}).common_prefix_bits(NodeId{}));
  });
}

bool id_puzzle_ok(const NodeId& id, uint32_t network_id, int bits) {
  return bits <= 0 || id_puzzle_bits(id, network_id) >= bits;
}

namespace {
void check_puzzle_bits(int bits) {
  if (bits > Identity::kMaxPuzzleBits)
    throw std::invalid_argument("id puzzle of " + std::to_string(bits) + " bits is too costly (max " +
                                std::to_string(Identity::kMaxPuzzleBits) + ")");
}
// The id of the key pair a seed gives, without the X25519 conversion from_seed also does.
NodeId id_of_seed(const std::array<uint8_t, 32>& seed) {
  PublicKey pk;
  std::array<uint8_t, 64> sk;
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  sodium_memzero(sk.data(), sk.size());
  return Identity::id_of(pk);
}
}  // namespace

Signature Identity::sign(ByteView msg) const {
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, msg.data(), msg.size(), sk_.data());
  return sig;
}

bool Identity::verify(const PublicKey& pk, ByteView msg, const Signature& sig) {
  ensure_sodium();
  return crypto::verify_signature(pk, msg, sig);
}

Identity Identity::from_seed(ByteView seed) {
  ensure_sodium();
  if (seed.size() != crypto_sign_SEEDBYTES) throw std::invalid_argument("identity seed must be 32 bytes");
  Identity id;
  crypto_sign_seed_keypair(id.pk_.data(), id.sk_.data(), seed.data());
  if (crypto_sign_ed25519_sk_to_curve25519(id.xsk_.data(), id.sk_.data()) != 0 ||
      crypto_sign_ed25519_pk_to_curve25519(id.xpk_.data(), id.pk_.data()) != 0)
    throw std::runtime_error("cannot derive X25519 key from Ed25519 key");
  id.id_ = id_of(id.pk_);
  return id;
}

Identity Identity::generate() {
  ensure_sodium();
  std::array<uint8_t, 32> seed;
  randombytes_buf(seed.data(), seed.size());
  Identity id = from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return id;
}

Identity Identity::generate(uint32_t network_id, int puzzle_bits) {
  ensure_sodium();
  check_puzzle_bits(puzzle_bits);
  std::array<uint8_t, 32> seed;
  do randombytes_buf(seed.data(), seed.size());
  while (!id_puzzle_ok(id_of_seed(seed), network_id, puzzle_bits));
  Identity id = from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return id;
}

Identity Identity::from_seed_solving(ByteView seed32, uint32_t network_id, int puzzle_bits) {
  ensure_sodium();
  check_puzzle_bits(puzzle_bits);
  if (seed32.size() != crypto_sign_SEEDBYTES) throw std::invalid_argument("identity seed must be 32 bytes");
  std::array<uint8_t, 32> seed;
  std::memcpy(seed.data(), seed32.data(), seed.size());
  while (!id_puzzle_ok(id_of_seed(seed), network_id, puzzle_bits))
    crypto_generichash(seed.data(), seed.size(), seed.data(), seed.size(), nullptr, 0);
  return from_seed(seed);
}

Identity Identity::load_or_create(const std::filesystem::path& dir, uint32_t network_id, int puzzle_bits) {
  ensure_sodium();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create data directory " + dir.string() + ": " + ec.message());
  auto path = dir / "identity.key";
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::string hex;
    in >> hex;
    auto seed = from_hex(hex);
    if (!seed || seed->size() != 32)
      throw std::runtime_error(path.string() + " is malformed: expected 64 hex characters (an Ed25519 seed)");
    Identity loaded = from_seed(*seed);
    if (!id_puzzle_ok(loaded.id(), network_id, puzzle_bits))
      throw std::runtime_error(path.string() + " holds an identity that does not solve this network's id puzzle (" +
                               std::to_string(puzzle_bits) + " bits): move it away to create a new one");
    return loaded;
  }
  check_puzzle_bits(puzzle_bits);
  std::array<uint8_t, 32> seed;
  do randombytes_buf(seed.data(), seed.size());
  while (!id_puzzle_ok(id_of_seed(seed), network_id, puzzle_bits));
  auto tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp.string() + ": " + std::strerror(errno));
  std::string text = to_hex(seed) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot write " + path.string());
  Identity id = from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return id;
}

}  // namespace storjnet
