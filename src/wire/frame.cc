#include "wire/frame.h"

#include <stdexcept>

namespace storjnet::wire {

std::optional<Frame> decode_frame(ByteView p) {
  if (p.empty()) return std::nullopt;
  Frame f;
  f.type = p[0];
  if (f.type == kFrameWhole) {
    f.body = p.subspan(1);
    return f;
  }
  if (f.type == kFramePadded) {
    if (p.size() < kPaddedHeaderSize) return std::nullopt;
    size_t len = get_u16(p.data() + 1);
    if (len > p.size() - kPaddedHeaderSize) return std::nullopt;
    for (size_t i = kPaddedHeaderSize + len; i < p.size(); ++i)
      if (p[i] != 0) return std::nullopt;
    f.body = p.subspan(kPaddedHeaderSize, len);
    return f;
  }
  if (f.type != kFrameFragment || p.size() <= kFragmentHeaderSize) return std::nullopt;
  f.msg_id = get_u32(p.data() + 1);
  f.index = get_u16(p.data() + 5);
  f.count = get_u16(p.data() + 7);
  if (f.count == 0 || f.count > kMaxFragments || f.index >= f.count) return std::nullopt;
  f.body = p.subspan(kFragmentHeaderSize);
  return f;
}

std::vector<Bytes> encode_frames(ByteView m, uint32_t msg_id) {
  if (m.size() > kMaxMessage) throw std::length_error("message exceeds the 128 KiB wire limit");
  std::vector<Bytes> out;
  if (m.size() <= kMaxWhole) {
    Bytes f(1 + m.size());
    f[0] = kFrameWhole;
    std::copy(m.begin(), m.end(), f.begin() + 1);
    out.push_back(std::move(f));
    return out;
  }
  size_t count = (m.size() + kMaxChunk - 1) / kMaxChunk;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    size_t off = i * kMaxChunk, len = std::min(kMaxChunk, m.size() - off);
    Bytes f(kFragmentHeaderSize + len);
    f[0] = kFrameFragment;
    put_u32(f.data() + 1, msg_id);
    put_u16(f.data() + 5, static_cast<uint16_t>(i));
    put_u16(f.data() + 7, static_cast<uint16_t>(count));
    std::copy(m.begin() + off, m.begin() + off + len, f.begin() + kFragmentHeaderSize);
    out.push_back(std::move(f));
  }
  return out;
}

Bytes encode_padded(ByteView m) {
  if (m.size() > kMaxPadded) throw std::length_error("message exceeds a padded frame");
  Bytes f(kMaxSealedPlaintext, 0);
  f[0] = kFramePadded;
  put_u16(f.data() + 1, static_cast<uint16_t>(m.size()));
  std::copy(m.begin(), m.end(), f.begin() + kPaddedHeaderSize);
  return f;
}

}  // namespace storjnet::wire
