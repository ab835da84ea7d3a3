// Wire bodies of the stream RPCs (docs/protocol.md, "7. Streams"). Fixed binary layouts, big-endian:
//
//   stream_open   request : id (32) | receive window (u32)      response: receive window (u32)
//   stream_write  request : id (32) | offset (u64) | data        response: received (u64) | limit (u64)
//   stream_close  request : id (32)                              response: empty
//   stream_window one-way : id (32) | limit (u64)
//
// `received` is how many bytes of the stream the receiver holds contiguously; `limit` is the stream offset
// the writer may send up to (bytes read by the application + the receive window).
#pragma once
#include <cstdint>
#include <optional>

#include "storjnet/bytes.h"
#include "storjnet/streams.h"

namespace storjnet::streams {

constexpr size_t kIdSize = 32;
constexpr size_t kMaxChunk = 32 * 1024;  // data bytes in one stream_write request

struct OpenBody {
  StreamId id{};
  uint32_t window = 0;
};
struct DataBody {
  StreamId id{};
  uint64_t offset = 0;
  ByteView data;  // points into the decoded body
};
struct DataAck {
  uint64_t received = 0, limit = 0;
};
struct WindowBody {
  StreamId id{};
  uint64_t limit = 0;
};

Bytes encode_open(const OpenBody& b);
std::optional<OpenBody> decode_open(ByteView body);
Bytes encode_window_size(uint32_t window);
std::optional<uint32_t> decode_window_size(ByteView body);
Bytes encode_data(const StreamId& id, uint64_t offset, ByteView data);
std::optional<DataBody> decode_data(ByteView body);
Bytes encode_ack(const DataAck& a);
std::optional<DataAck> decode_ack(ByteView body);
Bytes encode_close(const StreamId& id);
std::optional<StreamId> decode_close(ByteView body);
Bytes encode_window(const WindowBody& b);
std::optional<WindowBody> decode_window(ByteView body);

}  // namespace storjnet::streams
