#include "streams/record_cipher.h"

#include <openssl/evp.h>

#include <climits>
#include <cstring>
#include <stdexcept>

namespace storjnet::streams {

namespace {
EVP_CIPHER_CTX* ctx_of(void* p) { return static_cast<EVP_CIPHER_CTX*>(p); }
int as_int(size_t n) {
  if (n > INT_MAX) throw std::length_error("record too large");
  return static_cast<int>(n);
}
}  // namespace

RecordCipher::RecordCipher(Suite suite, const Key& key, Direction dir, uint64_t first)
    : ctx_(EVP_CIPHER_CTX_new()), counter_(first) {
  if (dir == Direction::kSeal && first != 0) {
    EVP_CIPHER_CTX_free(ctx_of(ctx_));
    throw std::logic_error("a sealing RecordCipher starts at counter 0");
  }
  auto* c = ctx_of(ctx_);
  const EVP_CIPHER* aes = suite == Suite::kAes128Ocb ? EVP_aes_128_ocb() : EVP_aes_256_ocb();
  // Key schedule once; each record then only sets its IV. AES-128 takes the key's first 16 bytes.
  int ok = c && (dir == Direction::kSeal ? EVP_EncryptInit_ex(c, aes, nullptr, key.data(), nullptr)
                                         : EVP_DecryptInit_ex(c, aes, nullptr, key.data(), nullptr));
  if (!ok) {
    EVP_CIPHER_CTX_free(c);
    throw std::runtime_error("AES-OCB unavailable");
  }
}

RecordCipher::~RecordCipher() { EVP_CIPHER_CTX_free(ctx_of(ctx_)); }

void RecordCipher::start(std::array<uint8_t, 12>& nonce) {
  nonce.fill(0);
  for (int i = 0; i < 8; ++i) nonce[i] = uint8_t(counter_ >> (8 * i));
  ++counter_;
}

void RecordCipher::seal(std::initializer_list<ByteView> pieces, uint8_t* out) {
  auto* c = ctx_of(ctx_);
  std::array<uint8_t, 12> nonce;
  start(nonce);
  int len = 0;
  EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce.data());
  for (ByteView p : pieces) {
    if (p.empty()) continue;
    EVP_EncryptUpdate(c, out, &len, p.data(), as_int(p.size()));
    out += len;
  }
  EVP_EncryptFinal_ex(c, out, &len);
  out += len;
  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kTagSize, out);
}

void RecordCipher::begin_open() {
  std::array<uint8_t, 12> nonce;
  start(nonce);
  failed_ = EVP_DecryptInit_ex(ctx_of(ctx_), nullptr, nullptr, nullptr, nonce.data()) != 1;
}

size_t RecordCipher::decrypt(const uint8_t* in, size_t n, uint8_t* out) {
  int len = 0;
  if (n > 0 && EVP_DecryptUpdate(ctx_of(ctx_), out, &len, in, as_int(n)) != 1) failed_ = true;
  return static_cast<size_t>(len);
}

bool RecordCipher::finish_open(const uint8_t* tag, uint8_t* tail) {
  auto* c = ctx_of(ctx_);
  uint8_t t[kTagSize];
  std::memcpy(t, tag, kTagSize);
  int len = 0;
  if (failed_ || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kTagSize, t) != 1) return false;
  return EVP_DecryptFinal_ex(c, tail, &len) == 1;
}

}  // namespace storjnet::streams
