// RecordCipher: AES-256-GCM for one direction of a streams fast-path connection (docs/protocol.md 7.6).
//
// The nonce is the direction's record counter (64-bit little-endian, zero-padded to 12 bytes), so a
// cipher seals or opens records strictly in order and never reuses a nonce. Sealing takes the plaintext in
// pieces (header, then data) so a record is encrypted straight from the caller's buffers, and opening
// decrypts straight into the buffers that keep the plaintext. Backed by OpenSSL's EVP interface (VAES/AVX-512 and AES-NI code paths), which runs several
// times faster than libsodium's AES-GCM on current CPUs. Not copyable; one per direction.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>

#include "storjnet/bytes.h"

namespace storjnet::streams {

class RecordCipher {
 public:
  static constexpr size_t kTagSize = 16;
  using Key = std::array<uint8_t, 32>;

  enum class Direction { kSeal, kOpen };
  RecordCipher(const Key& key, Direction dir);
  ~RecordCipher();
  RecordCipher(const RecordCipher&) = delete;
  RecordCipher& operator=(const RecordCipher&) = delete;

  // Writes ciphertext of the concatenated pieces, then the 16-byte tag, to `out` (room for their total
  // size + kTagSize). Uses the next counter.
  void seal(std::initializer_list<ByteView> pieces, uint8_t* out);
  // Opening goes in steps so the plaintext can land in several buffers: begin_open() (uses the next
  // counter), decrypt() over the ciphertext in order (out may equal in), then finish_open() with the tag.
  // Nothing decrypted may be used unless finish_open() returns true.
  void begin_open();
  void decrypt(const uint8_t* in, size_t n, uint8_t* out);
  bool finish_open(const uint8_t* tag);

 private:
  void start(std::array<uint8_t, 12>& nonce);
  bool failed_ = false;
  void* ctx_;  // EVP_CIPHER_CTX
  uint64_t counter_ = 0;
};

}  // namespace storjnet::streams
