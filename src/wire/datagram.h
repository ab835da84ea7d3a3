// Datagram codec, wire protocol v2 (docs/protocol.md, "Datagrams"). Pure functions over bytes.
//
// Every datagram starts with: version (1 byte), kind (1 byte), network id (4 bytes, big endian).
//   HELLO         : + sender public key (32) + challenge (8), zero-padded to exactly kHelloSize bytes
//   HELLO_REPLY   : + responder public key (32) + challenge (8)                      = 46 bytes
//   SEALED        : + sender public key (32) + nonce (24) + ciphertext (>= 1 + 16-byte tag)
//   COOKIE_REPLY  : + responder public key (32) + echoed nonce (24) + cookie (16)     = 78 bytes
//   SEALED_COOKIE : + cookie (16) + sender public key (32) + nonce (24) + ciphertext
// The header (everything before the ciphertext) of a SEALED or SEALED_COOKIE datagram is the AEAD's
// associated data. Frames are sized so a SEALED_COOKIE datagram still fits kMaxDatagram.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <variant>

#include "storjnet/bytes.h"
#include "storjnet/identity.h"
#include "wire/drop_reason.h"

namespace storjnet::wire {

constexpr uint8_t kVersion = 4;
constexpr size_t kMaxDatagram = 1280;
constexpr size_t kCommonHeaderSize = 6;
constexpr size_t kHelloSize = 128;
constexpr size_t kHelloReplySize = 46;
constexpr size_t kNonceSize = 24;
constexpr size_t kTagSize = 16;
constexpr size_t kSealedHeaderSize = kCommonHeaderSize + 32 + kNonceSize;  // 62
constexpr size_t kSealedOverhead = kSealedHeaderSize + kTagSize;           // 78
constexpr size_t kCookieSize = 16;
constexpr size_t kCookieReplySize = kCommonHeaderSize + 32 + kNonceSize + kCookieSize;           // 78
constexpr size_t kMaxSealedPlaintext = kMaxDatagram - kSealedOverhead - kCookieSize;            // 1186

enum class Kind : uint8_t { kHello = 1, kHelloReply = 2, kSealed = 3, kCookieReply = 4, kSealedCookie = 5 };

using Nonce = std::array<uint8_t, kNonceSize>;
using Cookie = std::array<uint8_t, kCookieSize>;

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
  ByteView header;               // associated data (first 62 bytes; 78 with a cookie)
  ByteView ciphertext;           // includes the tag
  std::optional<Cookie> cookie;  // set for SEALED_COOKIE
  size_t size() const { return header.size() + ciphertext.size(); }
};
// Sent instead of doing key work for an unknown sender while over the first-contact budget.
struct CookieReply {
  PublicKey responder{};
  Nonce nonce{};  // the nonce of the datagram being answered (proves the reply saw it)
  Cookie cookie{};
};

using Decoded = std::variant<Hello, HelloReply, Sealed, CookieReply>;

struct DecodeResult {
  std::optional<Decoded> datagram;
  DropReason drop = DropReason::kCount;  // set when datagram is empty
};

// Parses the outer layout only (no crypto). Views in the result point into `data`.
DecodeResult decode(ByteView data, uint32_t network_id);

Bytes encode_hello(uint32_t network_id, const Hello& h);
Bytes encode_hello_reply(uint32_t network_id, const HelloReply& r);
Bytes encode_cookie_reply(uint32_t network_id, const CookieReply& r);
// Writes the sealed header into `out` (resized): 62 bytes, or 78 as SEALED_COOKIE when `cookie` is given.
// The caller appends the ciphertext, sealed with the whole header as associated data.
void encode_sealed_header(uint32_t network_id, const PublicKey& sender, const Nonce& nonce, Bytes& out,
                          const Cookie* cookie = nullptr);

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
