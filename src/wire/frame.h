// Frames: the plaintext inside a SEALED datagram (docs/protocol.md, "Frames").
//
//   WHOLE    : 0x01 | message bytes
//   FRAGMENT : 0x02 | msg_id (4, BE) | index (2, BE) | count (2, BE) | chunk
// A message that fits in one datagram travels WHOLE; a larger one (up to kMaxMessage bytes) is cut into
// `count` fragments of at most kMaxChunk bytes, each sealed and authenticated on its own.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "storjnet/bytes.h"
#include "wire/datagram.h"

namespace storjnet::wire {

constexpr uint8_t kFrameWhole = 1;
constexpr uint8_t kFrameFragment = 2;
constexpr size_t kFragmentHeaderSize = 9;
constexpr size_t kMaxWhole = kMaxSealedPlaintext - 1;                  // 1185
constexpr size_t kMaxChunk = kMaxSealedPlaintext - kFragmentHeaderSize;  // 1177
constexpr size_t kMaxMessage = 128 * 1024;
constexpr size_t kMaxFragments = (kMaxMessage + kMaxChunk - 1) / kMaxChunk;

struct Frame {
  uint8_t type = 0;
  uint32_t msg_id = 0;
  uint16_t index = 0, count = 0;
  ByteView body;  // message (WHOLE) or chunk (FRAGMENT), pointing into the decoded plaintext
};

// nullopt when malformed (unknown type, short header, index >= count, count 0 or > kMaxFragments,
// empty chunk).
std::optional<Frame> decode_frame(ByteView plain);

// Plaintext frames for one message. Throws std::length_error above kMaxMessage.
std::vector<Bytes> encode_frames(ByteView message, uint32_t msg_id);

}  // namespace storjnet::wire
