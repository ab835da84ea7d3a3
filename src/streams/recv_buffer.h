// RecvBuffer: a stream's receive side: contiguous bytes waiting for the application plus chunks that
// arrived ahead of a gap. Everything it holds lies within [read offset, read offset + window).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <optional>

#include "storjnet/bytes.h"

namespace storjnet::streams {

class RecvBuffer {
 public:
  explicit RecvBuffer(size_t window) : window_(window) {}

  enum class Add { kOk, kBeyondWindow };
  // Stores data at stream offset `offset` (duplicates and overlaps are trimmed).
  Add add(uint64_t offset, ByteView data);
  // The same, keeping `data` itself (no copy) when it continues the contiguous run.
  Add add(uint64_t offset, Bytes&& data);
  // Up to `max` contiguous bytes (all when nullopt). A whole buffered chunk is handed over without a copy.
  Bytes read(std::optional<size_t> max);
  size_t unread() const { return static_cast<size_t>(received_ - read_); }
  uint64_t received() const { return received_; }
  uint64_t read_offset() const { return read_; }
  uint64_t limit() const { return read_ + window_; }
  size_t window() const { return window_; }
  size_t ahead_bytes() const { return ahead_bytes_; }
  void drop_ahead() {
    ahead_.clear();
    ahead_bytes_ = 0;
  }

 private:
  void append(ByteView data);
  void take_ahead();

  size_t window_;
  uint64_t read_ = 0, received_ = 0;
  std::deque<Bytes> chunks_;  // contiguous, unread; the first starts at head_ bytes in
  size_t head_ = 0;
  std::map<uint64_t, Bytes> ahead_;
  size_t ahead_bytes_ = 0;
};

}  // namespace storjnet::streams
