#include "api/file_stream.h"

#include <algorithm>
#include <cstring>

namespace storjnet::api::files {

namespace {

void put_u16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

constexpr size_t kFixedHeader = 4 + 1 + 2;  // magic, version, name length

}  // namespace

Bytes encode_header(const FileHeader& h) {
  Bytes out(kMagic.begin(), kMagic.end());
  out.push_back(kVersion);
  put_u16(out, static_cast<uint16_t>(h.name.size()));
  out.insert(out.end(), h.name.begin(), h.name.end());
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(h.size >> (8 * i)));
  return out;
}

TransferHash::TransferHash() { crypto_generichash_init(&state_, nullptr, 0, kHashSize); }
void TransferHash::update(ByteView data) { crypto_generichash_update(&state_, data.data(), data.size()); }
std::array<uint8_t, kHashSize> TransferHash::final() {
  std::array<uint8_t, kHashSize> out{};
  crypto_generichash_final(&state_, out.data(), out.size());
  return out;
}

FileStreamParser::Step FileStreamParser::fail(std::string why) {
  state_ = State::kFailed;
  error_ = std::move(why);
  return {Kind::kError, {}};
}

int FileStreamParser::try_header() {
  const Bytes& b = header_buf_;
  // Judge each field as soon as its bytes are in, so garbage is refused without waiting for more.
  size_t magic_have = std::min(b.size(), kMagic.size());
  if (!std::equal(b.begin(), b.begin() + static_cast<long>(magic_have), kMagic.begin())) {
    fail("not a file stream (bad magic)");
    return -1;
  }
  if (b.size() > 4 && b[4] != kVersion) {
    fail("unsupported file stream version " + std::to_string(b[4]));
    return -1;
  }
  if (b.size() < kFixedHeader) return 0;
  size_t name_len = get_u16(b.data() + 5);
  if (name_len == 0 || name_len > kMaxName) {
    fail("bad name length " + std::to_string(name_len) + " (1 to " + std::to_string(kMaxName) + ")");
    return -1;
  }
  if (b.size() < kFixedHeader + name_len + 8) return 0;
  std::string name(reinterpret_cast<const char*>(b.data() + kFixedHeader), name_len);
  if (name.find('\0') != std::string::npos) {
    fail("bad name (contains NUL)");
    return -1;
  }
  uint64_t size = 0;
  for (size_t i = 0; i < 8; ++i) size = (size << 8) | b[kFixedHeader + name_len + i];
  header_ = {std::move(name), size};
  hash_.update(b);
  return 1;
}

FileStreamParser::Step FileStreamParser::next(ByteView& in) {
  switch (state_) {
    case State::kHeader: {
      // Take one byte at a time up to the fixed part, then exactly what the header still needs: never more
      // than the header, so the rest of `in` stays for the content.
      while (!in.empty()) {
        size_t want = kFixedHeader;
        if (header_buf_.size() >= kFixedHeader) want = kFixedHeader + get_u16(header_buf_.data() + 5) + 8;
        size_t take = header_buf_.size() < kMagic.size() ? 1 : std::min(in.size(), want - header_buf_.size());
        header_buf_.insert(header_buf_.end(), in.begin(), in.begin() + static_cast<long>(take));
        in = in.subspan(take);
        int r = try_header();
        if (r < 0) return {Kind::kError, {}};
        if (r > 0) {
          state_ = header_.size ? State::kContent : State::kTrailer;
          header_buf_.clear();
          header_buf_.shrink_to_fit();
          return {Kind::kHeader, {}};
        }
      }
      return {Kind::kNeedMore, {}};
    }
    case State::kContent: {
      if (in.empty()) return {Kind::kNeedMore, {}};
      size_t take = static_cast<size_t>(std::min<uint64_t>(in.size(), header_.size - content_));
      ByteView piece = in.first(take);
      in = in.subspan(take);
      hash_.update(piece);
      content_ += take;
      if (content_ == header_.size) state_ = State::kTrailer;
      return {Kind::kContent, piece};
    }
    case State::kTrailer: {
      size_t take = std::min(in.size(), kHashSize - trailer_.size());
      trailer_.insert(trailer_.end(), in.begin(), in.begin() + static_cast<long>(take));
      in = in.subspan(take);
      if (trailer_.size() < kHashSize) return {Kind::kNeedMore, {}};
      auto want = hash_.final();
      if (sodium_memcmp(want.data(), trailer_.data(), kHashSize) != 0)
        return fail("hash mismatch: the content is not what the sender hashed");
      state_ = State::kDone;
      if (!in.empty()) return fail("bytes after the trailer");
      return {Kind::kDone, {}};
    }
    case State::kDone:
      if (!in.empty()) return fail("bytes after the trailer");
      return {Kind::kNeedMore, {}};
    case State::kFailed:
      in = {};
      return {Kind::kError, {}};
  }
  return fail("unreachable");
}

Bytes encode_verdict(const Verdict& v) {
  Bytes out{static_cast<uint8_t>(v.status)};
  size_t n = std::min(v.message.size(), kMaxVerdictMessage);
  put_u16(out, static_cast<uint16_t>(n));
  out.insert(out.end(), v.message.begin(), v.message.begin() + static_cast<long>(n));
  return out;
}

std::optional<Verdict> decode_verdict(ByteView in, std::string* error) {
  if (in.empty()) return std::nullopt;
  if (in[0] > Verdict::kFailed) {
    if (error) *error = "bad verdict status " + std::to_string(in[0]);
    return std::nullopt;
  }
  if (in.size() < 3) return std::nullopt;
  size_t n = get_u16(in.data() + 1);
  if (n > kMaxVerdictMessage) {
    if (error) *error = "verdict message too long";
    return std::nullopt;
  }
  if (in.size() < 3 + n) return std::nullopt;
  if (in.size() > 3 + n) {
    if (error) *error = "bytes after the verdict";
    return std::nullopt;
  }
  return Verdict{static_cast<Verdict::Status>(in[0]), std::string(reinterpret_cast<const char*>(in.data() + 3), n)};
}

std::string safe_name(std::string_view sent) {
  auto slash = sent.find_last_of("/\\");
  if (slash != std::string_view::npos) sent = sent.substr(slash + 1);
  std::string out;
  for (char c : sent)
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out.push_back(c);
  if (out.size() > kMaxSafeName) out.resize(kMaxSafeName);
  if (out.empty() || out == "." || out == "..") return "file";
  return out;
}

std::string numbered_name(const std::string& name, unsigned n) {
  if (n == 0) return name;
  auto dot = name.rfind('.');
  if (dot == 0 || dot == std::string::npos) dot = name.size();
  return name.substr(0, dot) + " (" + std::to_string(n) + ")" + name.substr(dot);
}

}  // namespace storjnet::api::files
