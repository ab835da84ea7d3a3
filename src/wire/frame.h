// Frames: the plaintext inside a SEALED datagram (docs/protocol.md, "Frames").
//
//   WHOLE    : 0x01 | message bytes
//   FRAGMENT : 0x02 | msg_id (4, BE) | index (2, BE) | count (2, BE) | chunk
//   PADDED   : 0x03 | message length (2, BE) | message | padding (zero bytes)
// A message that fits in one datagram travels WHOLE; a larger one (up to kMaxMessage bytes) is cut into
// `count` fragments of at most kMaxChunk bytes, each sealed and authenticated on its own. PADDED carries one
// whole message in a full-size datagram: a first request to a peer that has not yet seen our address proven
// buys the answer room under the peer's 3x anti-amplification limit (as QUIC pads its first packet).
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "storjnet/bytes.h"
#include "wire/datagram.h"

namespace storjnet::wire {

constexpr uint8_t kFrameWhole = 1;
constexpr uint8_t kFrameFragment = 2;
constexpr uint8_t kFramePadded = 3;
constexpr size_t kPaddedHeaderSize = 3;
constexpr size_t kFragmentHeaderSize = 9;
constexpr size_t kMaxWhole = kMaxSealedPlaintext - 1;                  // 1185
constexpr size_t kMaxChunk = kMaxSealedPlaintext - kFragmentHeaderSize;  // 1177
constexpr size_t kMaxPadded = kMaxSealedPlaintext - kPaddedHeaderSize;  // 1183
constexpr size_t kMaxMessage = 128 * 1024;
constexpr size_t kMaxFragments = (kMaxMessage + kMaxChunk - 1) / kMaxChunk;

struct Frame {
  uint8_t type = 0;
  uint32_t msg_id = 0;
  uint16_t index = 0, count = 0;
  ByteView body;  // message (WHOLE, PADDED) or chunk (FRAGMENT), pointing into the decoded plaintext
  bool whole() const { return type == kFrameWhole || type == kFramePadded; }
};

// nullopt when malformed (unknown type, short header, index >= count, count 0 or > kMaxFragments,
// empty chunk, a PADDED length past the end or padding that is not zero).
std::optional<Frame> decode_frame(ByteView plain);

// Plaintext frames for one message. Throws std::length_error above kMaxMessage.
std::vector<Bytes> encode_frames(ByteView message, uint32_t msg_id);

// A PADDED frame of exactly kMaxSealedPlaintext bytes. Throws std::length_error above kMaxPadded.
Bytes encode_padded(ByteView message);

}  // namespace storjnet::wire
