#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "crypto/key_cache.h"
#include "crypto/session.h"
#include "storjnet/identity.h"
#include "storjnet/node_id.h"

using namespace storjnet;

TEST(NodeId, HexRoundTripAndStrictParsing) {
  std::string hex = "00112233445566778899aabbccddeeff01234567";
  NodeId id = NodeId::from_hex(hex);
  EXPECT_EQ(id.hex(), hex);
  EXPECT_THROW(NodeId::from_hex(hex.substr(1)), std::invalid_argument);                       // 39 chars
  EXPECT_THROW(NodeId::from_hex(hex + "0"), std::invalid_argument);                           // 41 chars
  EXPECT_THROW(NodeId::from_hex("00112233445566778899AABBCCDDEEFF01234567"), std::invalid_argument);  // upper
  EXPECT_THROW(NodeId::from_hex("g0112233445566778899aabbccddeeff01234567"), std::invalid_argument);
  EXPECT_THROW(NodeId::from_hex(""), std::invalid_argument);
  std::string err;
  NodeId out;
  EXPECT_FALSE(NodeId::parse("xyz", out, &err));
  EXPECT_NE(err.find("40 hex"), std::string::npos);
}

TEST(NodeId, XorDistanceAndPrefix) {
  NodeId a = NodeId::from_hex("8000000000000000000000000000000000000000");
  NodeId b = NodeId::from_hex("0000000000000000000000000000000000000000");
  NodeId c = NodeId::from_hex("0000000000000000000000000000000000000001");
  EXPECT_EQ(a.log_distance(b), 159);
  EXPECT_EQ(b.log_distance(c), 0);
  EXPECT_EQ(b.log_distance(b), -1);
  EXPECT_EQ(b.common_prefix_bits(c), 159);
  EXPECT_TRUE(closer(b, c, a));
  EXPECT_EQ((a ^ a), NodeId());
}

TEST(Identity, IdIsBlake2b160OfPublicKey) {
  std::array<uint8_t, 32> seed{};
  seed[0] = 42;
  Identity a = Identity::from_seed(seed), b = Identity::from_seed(seed);
  EXPECT_EQ(a.public_key(), b.public_key());
  uint8_t h[20];
  crypto_generichash(h, 20, a.public_key().data(), 32, nullptr, 0);
  EXPECT_EQ(a.id(), NodeId::from_bytes({h, 20}));
  seed[0] = 43;
  EXPECT_NE(Identity::from_seed(seed).id(), a.id());
  EXPECT_THROW(Identity::from_seed(ByteView(seed.data(), 31)), std::invalid_argument);
}

TEST(Identity, StoredWithMode0600AndReused) {
  auto dir = std::filesystem::temp_directory_path() / ("storjnet-id-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  Identity first = Identity::load_or_create(dir);
  struct stat st;
  ASSERT_EQ(::stat((dir / "identity.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  Identity again = Identity::load_or_create(dir);
  EXPECT_EQ(first.id(), again.id());
  EXPECT_EQ(first.public_key(), again.public_key());
  std::ofstream(dir / "identity.key") << "not-hex";
  try {
    Identity::load_or_create(dir);
    FAIL() << "malformed key file accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("malformed"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(IdPuzzle, GeneratedIdsSolveItAndRandomOnesRarelyDo) {
  const uint32_t net = 0x53544a31;
  Identity solved = Identity::generate(net, 10);
  EXPECT_GE(id_puzzle_bits(solved.id(), net), 10);
  EXPECT_TRUE(id_puzzle_ok(solved.id(), net, 10));
  // The puzzle is bound to the network id: the same id is (almost surely) worth little on another network.
  EXPECT_LT(id_puzzle_bits(solved.id(), net + 1), 10);
  // The hash is BLAKE2b-160(network id BE | id).
  uint8_t in[24] = {0x53, 0x54, 0x4a, 0x31};
  std::memcpy(in + 4, solved.id().bytes().data(), 20);
  uint8_t h[20];
  crypto_generichash(h, 20, in, sizeof in, nullptr, 0);
  EXPECT_EQ(id_puzzle_bits(solved.id(), net), NodeId::from_bytes({h, 20}).common_prefix_bits(NodeId()));
  int pass = 0;
  for (uint8_t i = 0; i < 200; ++i) {
    std::array<uint8_t, 32> seed{};
    seed[0] = i;
    pass += id_puzzle_ok(Identity::from_seed(seed).id(), net, 10);
  }
  EXPECT_LE(pass, 3);  // about 200 / 1024 expected
  EXPECT_TRUE(id_puzzle_ok(Identity::from_seed(std::array<uint8_t, 32>{}).id(), net, 0));
  EXPECT_THROW(Identity::generate(net, Identity::kMaxPuzzleBits + 1), std::invalid_argument);
}

TEST(IdPuzzle, SeededSolvingIsDeterministicAndLoadRefusesAnUnsolvedKey) {
  const uint32_t net = 7;
  std::array<uint8_t, 32> seed{};
  seed[5] = 9;
  Identity a = Identity::from_seed_solving(seed, net, 8), b = Identity::from_seed_solving(seed, net, 8);
  EXPECT_EQ(a.id(), b.id());
  EXPECT_TRUE(id_puzzle_ok(a.id(), net, 8));
  EXPECT_EQ(Identity::from_seed_solving(seed, net, 0).id(), Identity::from_seed(seed).id());

  auto dir = std::filesystem::temp_directory_path() / ("storjnet-puzzle-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  Identity made = Identity::load_or_create(dir, net, 6);
  EXPECT_TRUE(id_puzzle_ok(made.id(), net, 6));
  EXPECT_EQ(Identity::load_or_create(dir, net, 6).id(), made.id());
  // A stored key that does not solve a (now stricter) puzzle is refused with a clear message.
  int need = id_puzzle_bits(made.id(), net) + 1;
  try {
    Identity::load_or_create(dir, net, need);
    FAIL() << "unsolved identity accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("puzzle"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(Identity, SignaturesVerifyOnlyForTheSignerAndTheMessage) {
  std::array<uint8_t, 32> seed{};
  Identity a = Identity::from_seed(seed);
  seed[0] = 1;
  Identity b = Identity::from_seed(seed);
  Bytes msg = {1, 2, 3};
  Signature sig = a.sign(msg);
  EXPECT_TRUE(Identity::verify(a.public_key(), msg, sig));
  EXPECT_FALSE(Identity::verify(b.public_key(), msg, sig));
  msg[0] = 9;
  EXPECT_FALSE(Identity::verify(a.public_key(), msg, sig));
}

// The pair-key cache (src/crypto/key_cache.cc) stands for a pair by a keyed fingerprint of its two keys: the
// unordered pair finds its key from either end, every other pair (sharing one key, or none) misses, and a
// present key is never computed again.
TEST(KeyCache, PairKeyFoundFromEitherEndOnlyForItsPair) {
  using storjnet::crypto::cached_pair_key;
  using storjnet::crypto::pair_key;
  storjnet::crypto::clear_key_caches();
  std::vector<storjnet::PublicKey> keys;
  for (uint8_t i = 0; i < 40; ++i) {
    std::array<uint8_t, 32> seed{};
    seed[0] = i;
    seed[31] = 0x5a;
    keys.push_back(storjnet::Identity::from_seed(storjnet::ByteView(seed.data(), seed.size())).public_key());
  }
  auto value_of = [](size_t i, size_t j) {  // a distinct stand-in key per unordered pair
    std::array<uint8_t, 32> v{};
    v[0] = static_cast<uint8_t>(std::min(i, j));
    v[1] = static_cast<uint8_t>(std::max(i, j));
    v[2] = 0xee;
    return v;
  };
  int computed = 0;
  for (size_t i = 0; i < keys.size(); ++i)
    for (size_t j = i + 1; j < keys.size(); j += 3) {
      std::array<uint8_t, 32> out{}, miss{};
      ASSERT_FALSE(cached_pair_key(keys[i], keys[j], miss));
      ASSERT_TRUE(pair_key(keys[i], keys[j], out, [&](std::array<uint8_t, 32>& k) {
        ++computed;
        k = value_of(i, j);
        return true;
      }));
      EXPECT_EQ(out, value_of(i, j));
    }
  const int first = computed;
  for (size_t i = 0; i < keys.size(); ++i)
    for (size_t j = 0; j < keys.size(); ++j) {
      if (i == j) continue;
      std::array<uint8_t, 32> out{};
      bool cached = (std::max(i, j) - std::min(i, j)) % 3 == 1;
      ASSERT_EQ(cached_pair_key(keys[i], keys[j], out), cached) << i << " " << j;
      if (cached) {
        EXPECT_EQ(out, value_of(i, j));
        std::array<uint8_t, 32> again{};
        ASSERT_TRUE(pair_key(keys[j], keys[i], again, [&](std::array<uint8_t, 32>&) {
          ++computed;
          return false;
        }));
        EXPECT_EQ(again, value_of(i, j));
      }
    }
  EXPECT_EQ(computed, first);  // every cached pair answered from the cache, from both ends
  storjnet::crypto::clear_key_caches();
  std::array<uint8_t, 32> out{};
  EXPECT_FALSE(cached_pair_key(keys[0], keys[1], out));
}

// The cache is bounded, and filling it forgets the pairs least lately used, not the pairs in use: a pair asked
// for again and again stays through any number of new pairs, while one never asked for again is forgotten.
TEST(KeyCache, APairInUseOutlivesTheCacheFillingUp) {
  using storjnet::crypto::cached_pair_key;
  using storjnet::crypto::pair_key;
  storjnet::crypto::clear_key_caches();
  auto key_of = [](uint32_t n) {
    storjnet::PublicKey k{};
    for (int b = 0; b < 4; ++b) k[b] = static_cast<uint8_t>(n >> (8 * b));
    k[31] = 0xa5;
    return k;
  };
  auto put = [&](const storjnet::PublicKey& a, const storjnet::PublicKey& b, uint8_t tag) {
    std::array<uint8_t, 32> out{};
    ASSERT_TRUE(pair_key(a, b, out, [&](std::array<uint8_t, 32>& k) {
      k.fill(tag);
      return true;
    }));
  };
  const auto in_use_a = key_of(1u << 30), in_use_b = key_of((1u << 30) + 1);
  const auto left_a = key_of(1u << 31), left_b = key_of((1u << 31) + 1);
  put(in_use_a, in_use_b, 7);
  put(left_a, left_b, 9);
  constexpr uint32_t kNewPairs = storjnet::crypto::kMaxCachedPairs * 3 / 2;
  for (uint32_t i = 0; i < kNewPairs; ++i) {
    put(key_of(2 * i), key_of(2 * i + 1), 1);
    if (i % 4096 == 0) {
      std::array<uint8_t, 32> out{};
      ASSERT_TRUE(cached_pair_key(in_use_b, in_use_a, out)) << "after " << i << " new pairs";
      ASSERT_EQ(out[0], 7);
    }
  }
  std::array<uint8_t, 32> out{};
  EXPECT_TRUE(cached_pair_key(in_use_a, in_use_b, out));
  EXPECT_FALSE(cached_pair_key(left_a, left_b, out));
  EXPECT_FALSE(cached_pair_key(key_of(0), key_of(1), out));  // the first new pair, long unused
  storjnet::crypto::clear_key_caches();
}

// Identity::id_of and id_puzzle_bits remember a thread's recent answers (src/crypto/identity.cc): whatever the
// tables hold, after keys and ids that share a slot and more than the tables have slots, both answer exactly
// what BLAKE2b-160 gives, and keys differing in one byte get their own ids.
TEST(Identity, IdsAndPuzzleBitsAreTheHashesWhateverTheThreadRemembers) {
  auto blake = [](const uint8_t* p, size_t n) {
    std::array<uint8_t, 20> out;
    crypto_generichash(out.data(), out.size(), p, n, nullptr, 0);
    return out;
  };
  std::vector<storjnet::PublicKey> keys;
  for (uint32_t i = 0; i < 3000; ++i) {
    storjnet::PublicKey k{};
    k[0] = static_cast<uint8_t>(i % 3);  // many keys share the first bytes (a slot)
    k[5] = static_cast<uint8_t>(i);
    k[6] = static_cast<uint8_t>(i >> 8);
    keys.push_back(k);
  }
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < keys.size(); i += (round == 1 ? 7 : 1)) {
      const auto& k = keys[i];
      NodeId id = Identity::id_of(k);
      auto want = blake(k.data(), k.size());
      ASSERT_TRUE(std::equal(want.begin(), want.end(), id.bytes().begin())) << i;
      for (uint32_t net : {0u, 7u}) {
        std::array<uint8_t, 24> in{};
        for (int b = 0; b < 4; ++b) in[b] = static_cast<uint8_t>(net >> (24 - 8 * b));
        std::memcpy(in.data() + 4, id.bytes().data(), 20);
        int bits = NodeId::from_bytes(storjnet::ByteView(blake(in.data(), in.size()))).common_prefix_bits(NodeId{});
        ASSERT_EQ(storjnet::id_puzzle_bits(id, net), bits) << i << " " << net;
      }
    }
}

// Identity::verify remembers valid signatures only (crypto::verify_signature): a valid one answers true again
// from the table, while any change of key, message or signature is verified, and refused, every time; a
// table cleared or overwritten (more valid signatures than it has slots) only costs verifying again.
TEST(KeyCache, ValidSignaturesAreRememberedForgedOnesAreVerifiedEveryTime) {
  using storjnet::crypto::signatures_remembered;
  storjnet::crypto::clear_key_caches();
  std::array<uint8_t, 32> seed{};
  seed[0] = 3;
  Identity a = Identity::from_seed(seed);
  seed[0] = 4;
  Identity b = Identity::from_seed(seed);
  Bytes msg = {1, 2, 3, 4};
  Signature sig = a.sign(msg);
  uint64_t before = signatures_remembered();
  EXPECT_TRUE(Identity::verify(a.public_key(), msg, sig));
  EXPECT_EQ(signatures_remembered(), before);  // verified, not remembered yet
  EXPECT_TRUE(Identity::verify(a.public_key(), msg, sig));
  EXPECT_EQ(signatures_remembered(), before + 1);
  Bytes other_msg = msg;
  other_msg[3] ^= 1;
  Signature other_sig = sig;
  other_sig[10] ^= 0x40;
  for (int round = 0; round < 3; ++round) {
    EXPECT_FALSE(Identity::verify(b.public_key(), msg, sig));
    EXPECT_FALSE(Identity::verify(a.public_key(), other_msg, sig));
    EXPECT_FALSE(Identity::verify(a.public_key(), msg, other_sig));
    EXPECT_FALSE(Identity::verify(a.public_key(), Bytes{}, sig));
  }
  EXPECT_EQ(signatures_remembered(), before + 1);
  // More valid signatures than slots: each still verifies, and the one signed first again too.
  for (size_t i = 0; i < storjnet::crypto::kVerifiedSlots + 64; ++i) {
    Bytes m = {static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8), 0x77};
    ASSERT_TRUE(Identity::verify(b.public_key(), m, b.sign(m))) << i;
  }
  EXPECT_TRUE(Identity::verify(a.public_key(), msg, sig));
  EXPECT_FALSE(Identity::verify(a.public_key(), other_msg, sig));
  storjnet::crypto::clear_key_caches();
  uint64_t cleared = signatures_remembered();
  EXPECT_TRUE(Identity::verify(a.public_key(), msg, sig));
  EXPECT_EQ(signatures_remembered(), cleared);
  EXPECT_TRUE(Identity::verify(a.public_key(), msg, sig));
  EXPECT_EQ(signatures_remembered(), cleared + 1);
}

namespace {
// AES-256-GCM by OpenSSL, straight from docs/protocol.md 1.4: the subkey is the keyed BLAKE2b-256 of the nonce's
// first 16 bytes, the GCM nonce 4 zero bytes and the nonce's last 8.
Bytes reference_seal(const storjnet::crypto::SessionKey& key, const uint8_t* nonce, ByteView ad, ByteView plain) {
  uint8_t subkey[32], n12[12] = {};
  crypto_generichash(subkey, sizeof subkey, nonce, 16, key.data(), key.size());
  std::memcpy(n12 + 4, nonce + 16, 8);
  Bytes out(plain.size() + 16);
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, subkey, n12), 1);
  EXPECT_EQ(EVP_EncryptUpdate(c, nullptr, &len, ad.data(), static_cast<int>(ad.size())), 1);
  if (!plain.empty()) {
    EXPECT_EQ(EVP_EncryptUpdate(c, out.data(), &len, plain.data(), static_cast<int>(plain.size())), 1);
  }
  EXPECT_EQ(EVP_EncryptFinal_ex(c, out.data() + plain.size(), &len), 1);
  EXPECT_EQ(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out.data() + plain.size()), 1);
  EVP_CIPHER_CTX_free(c);
  return out;
}
}  // namespace

// crypto::seal and open are AES-256-GCM under the session's subkey byte for byte, by libsodium (AES-NI) and by
// OpenSSL (the portable path) alike, though they keep each session's subkey: many keys and sessions (nonce
// prefixes) interleaved, more than the subkey table holds, each sealed output equal to the reference and opened
// by the other path; a changed byte never opens.
TEST(SessionCrypto, SealAndOpenAreAes256GcmUnderTheSessionSubkeyOnEitherPath) {
  std::vector<storjnet::crypto::SessionKey> keys(40);
  for (size_t i = 0; i < keys.size(); ++i) randombytes_buf(keys[i].data(), keys[i].size());
  for (int round = 0; round < 3000; ++round) {
    const auto& key = keys[static_cast<size_t>(round * 7) % keys.size()];
    uint8_t nonce[24];
    randombytes_buf(nonce, 16);  // a session's (epoch, salt): a fresh one now and then, else a recent one
    if (round % 5 != 0) std::memset(nonce, round % 11, 16);
    for (int i = 0; i < 8; ++i) nonce[16 + i] = static_cast<uint8_t>(round >> (8 * (i % 2)));
    Bytes head(7 + round % 5, 0x33), plain(static_cast<size_t>(round % 300));
    if (!plain.empty()) randombytes_buf(plain.data(), plain.size());
    const bool portable = round % 2 == 1;
    storjnet::crypto::force_portable_aead(portable);
    Bytes ours = head;
    storjnet::crypto::seal(key, ByteView(nonce, 24), ByteView(ours).first(head.size()), plain, ours);
    Bytes theirs = reference_seal(key, nonce, head, plain);
    ASSERT_EQ(Bytes(ours.begin() + static_cast<long>(head.size()), ours.end()), theirs) << round;
    storjnet::crypto::force_portable_aead(!portable);
    Bytes opened;
    ASSERT_TRUE(storjnet::crypto::open(key, ByteView(nonce, 24), head, theirs, opened));
    EXPECT_EQ(opened, plain);
    theirs[static_cast<size_t>(round) % theirs.size()] ^= 1;
    EXPECT_FALSE(storjnet::crypto::open(key, ByteView(nonce, 24), head, theirs, opened));
    Bytes other_head = head;
    other_head[0] ^= 1;
    theirs[static_cast<size_t>(round) % theirs.size()] ^= 1;
    EXPECT_FALSE(storjnet::crypto::open(key, ByteView(nonce, 24), other_head, theirs, opened));
  }
  storjnet::crypto::force_portable_aead(false);
}
