// Datagram codec, wire protocol v1 (docs/protocol.md, "Datagrams"). Pure functions over bytes.
//
// Every datagram starts with: version (1 byte), kind (1 byte), network id (4 bytes, big endian).
//   HELLO       : + sender public key (32) + challenge (8), zero-padded to exactly kHelloSize bytes
//   HELLO_REPLY : + responder public key (32) + challenge (8)                      = 46 bytes
//   SEALED      : + sender public key (32) + nonce (24) + ciphertext (>= 1 + 16-byte tag)
// The first kSealedHeaderSize bytes of a SEALED datagram are the AEAD's associated data.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <variant>

#include "storjnet/bytes.h"
#include "storjnet/identity.h"
#include "wire/drop_reason.h"

namespace storjnet::wire {

constexpr uint8_t kVersion = 1;
constexpr size_t kMaxDatagram = 1280;
constexpr size_t kCommonHeaderSize = 6;
constexpr size_t kHelloSize = 128;
constexpr size_t kHelloReplySize = 46;
constexpr size_t kNonceSize = 24;
constexpr size_t kTagSize = 16;
constexpr size_t kSealedHeaderSize = kCommonHeaderSize + 32 + kNonceSize;  // 62
constexpr size_t kSealedOverhead = kSealedHeaderSize + kTagSize;           // 78
constexpr size_t kMaxSealedPlaintext = kMaxDatagram - kSealedOverhead;     // 1202

enum class Kind : uint8_t { kHello = 1, kHelloReply = 2, kSealed = 3 };

using Nonce = std::array<uint8_t, kNonceSize>;

struct Hello {
  PublicKey sender{};
  uint64_t challenge = 0;
};
struct HelloReply {
  PublicKey responder{};
  uint64_t challenge = 0;
};
struct Sealed {
  PublicKey sender{};
  Nonce nonce{};
  ByteView header;      // associated data (first 62 bytes)
  ByteView ciphertext;  // includes the tag
};

using Decoded = std::variant<Hello, HelloReply, Sealed>;

struct DecodeResult {
  std::optional<Decoded> datagram;
  DropReason drop = DropReason::kCount;  // set when datagram is empty
};

// Parses the outer layout only (no crypto). Views in the result point into `data`.
DecodeResult decode(ByteView data, uint32_t network_id);

Bytes encode_hello(uint32_t network_id, const Hello& h);
Bytes encode_hello_reply(uint32_t network_id, const HelloReply& r);
// Writes the 62-byte sealed header into `out` (resized); the caller appends ciphertext.
void encode_sealed_header(uint32_t network_id, const PublicKey& sender, const Nonce& nonce, Bytes& out);

// Nonce layout: epoch_us (8, BE) | salt (8) | counter (8, BE).
Nonce make_nonce(uint64_t epoch_us, uint64_t salt, uint64_t counter);
void split_nonce(const Nonce& n, uint64_t& epoch_us, uint64_t& salt, uint64_t& counter);

// Big-endian helpers.
inline void put_u16(uint8_t* p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
inline void put_u32(uint8_t* p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
inline void put_u64(uint8_t* p, uint64_t v) { put_u32(p, v >> 32); put_u32(p + 4, static_cast<uint32_t>(v)); }
inline uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline uint64_t get_u64(const uint8_t* p) { return uint64_t(get_u32(p)) << 32 | get_u32(p + 4); }

}  // namespace storjnet::wire
