// msgpack helpers for wire bodies: packing into Bytes and unpacking network input with hard limits, so a
// hostile body cannot make the decoder allocate more than the body justifies.
#pragma once
#include <msgpack.hpp>
#include <optional>

#include "storjnet/bytes.h"

namespace storjnet {

// Limits for any msgpack body coming from the network.
inline msgpack::unpack_limit wire_unpack_limit() {
  return msgpack::unpack_limit(/*array*/ 4096, /*map*/ 4096, /*str*/ 128 * 1024, /*bin*/ 128 * 1024,
                               /*ext*/ 0, /*depth*/ 16);
}

// Parses one msgpack object occupying all of `data`; nullopt when malformed, over a limit, or followed by
// trailing bytes.
inline std::optional<msgpack::object_handle> unpack_wire(ByteView data) {
  try {
    std::size_t off = 0;
    auto oh = msgpack::unpack(reinterpret_cast<const char*>(data.data()), data.size(), off, nullptr, nullptr,
                              wire_unpack_limit());
    if (off != data.size()) return std::nullopt;
    return oh;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

struct BytesWriter {
  Bytes& out;
  void write(const char* p, size_t n) { out.insert(out.end(), p, p + n); }
};

template <class T>
Bytes pack(const T& v) {
  Bytes out;
  BytesWriter w{out};
  msgpack::pack(w, v);
  return out;
}

// Reads a bin or str object as bytes; false on any other type.
inline bool as_bytes_view(const msgpack::object& o, ByteView& out) {
  if (o.type == msgpack::type::BIN) {
    out = {reinterpret_cast<const uint8_t*>(o.via.bin.ptr), o.via.bin.size};
    return true;
  }
  if (o.type == msgpack::type::STR) {
    out = {reinterpret_cast<const uint8_t*>(o.via.str.ptr), o.via.str.size};
    return true;
  }
  return false;
}

}  // namespace storjnet
