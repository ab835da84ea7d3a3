#include "streams/codec.h"

#include <algorithm>
#include <cstring>

#include "wire/datagram.h"

namespace storjnet::streams {

namespace {
void put_be(Bytes& out, uint64_t v, size_t n) {  // n = 4 or 8
  size_t at = out.size();
  out.resize(at + n);
  if (n == 4) wire::put_u32(out.data() + at, static_cast<uint32_t>(v));
  else wire::put_u64(out.data() + at, v);
}
uint64_t get_be(const uint8_t* p, size_t n) { return n == 4 ? wire::get_u32(p) : wire::get_u64(p); }
StreamId get_id(ByteView b) {
  StreamId id;
  std::memcpy(id.data(), b.data(), kIdSize);
  return id;
}
void put_id(Bytes& out, const StreamId& id) { out.insert(out.end(), id.begin(), id.end()); }
}  // namespace

Bytes encode_open(const OpenBody& b) {
  Bytes out;
  put_id(out, b.id);
  put_be(out, b.window, 4);
  return out;
}
std::optional<OpenBody> decode_open(ByteView body) {
  if (body.size() != kIdSize + 4) return std::nullopt;
  return OpenBody{get_id(body), static_cast<uint32_t>(get_be(body.data() + kIdSize, 4))};
}

Bytes encode_window_size(uint32_t window) {
  Bytes out;
  put_be(out, window, 4);
  return out;
}
std::optional<uint32_t> decode_window_size(ByteView body) {
  if (body.size() != 4) return std::nullopt;
  return static_cast<uint32_t>(get_be(body.data(), 4));
}

Bytes encode_data(const StreamId& id, uint64_t offset, ByteView data) {
  Bytes out;
  out.reserve(kIdSize + 8 + data.size());
  put_id(out, id);
  put_be(out, offset, 8);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}
std::optional<DataBody> decode_data(ByteView body) {
  if (body.size() < kIdSize + 8 || body.size() > kIdSize + 8 + kMaxChunk) return std::nullopt;
  DataBody d{get_id(body), get_be(body.data() + kIdSize, 8), body.subspan(kIdSize + 8)};
  if (d.offset > (uint64_t(1) << 62)) return std::nullopt;  // far beyond any real stream: refuse overflow games
  return d;
}

Bytes encode_ack(const DataAck& a) {
  Bytes out;
  put_be(out, a.received, 8);
  put_be(out, a.limit, 8);
  return out;
}
std::optional<DataAck> decode_ack(ByteView body) {
  if (body.size() != 16) return std::nullopt;
  return DataAck{get_be(body.data(), 8), get_be(body.data() + 8, 8)};
}

Bytes encode_close(const StreamId& id) {
  Bytes out;
  put_id(out, id);
  return out;
}
std::optional<StreamId> decode_close(ByteView body) {
  if (body.size() != kIdSize) return std::nullopt;
  return get_id(body);
}

Bytes encode_window(const WindowBody& b) {
  Bytes out;
  put_id(out, b.id);
  put_be(out, b.limit, 8);
  return out;
}
std::optional<WindowBody> decode_window(ByteView body) {
  if (body.size() != kIdSize + 8) return std::nullopt;
  return WindowBody{get_id(body), get_be(body.data() + kIdSize, 8)};
}

}  // namespace storjnet::streams
