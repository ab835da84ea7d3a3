#include "storjnet/identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
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

NodeId Identity::id_of(const PublicKey& pk) { return NodeId::hash_of({pk.data(), pk.size()}); }

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

Identity Identity::load_or_create(const std::filesystem::path& dir) {
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
    return from_seed(*seed);
  }
  std::array<uint8_t, 32> seed;
  randombytes_buf(seed.data(), seed.size());
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
