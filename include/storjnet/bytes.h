// Byte buffers and views used across storjnet, plus hex helpers.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace storjnet {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Lowercase hex of `data`.
std::string to_hex(ByteView data);
// Parses lowercase or uppercase hex of even length; nullopt on any other input.
std::optional<Bytes> from_hex(std::string_view hex);

}  // namespace storjnet
