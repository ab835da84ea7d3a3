// RecvBuffer: a stream's receive side: contiguous bytes waiting for the application plus chunks that
// arrived ahead of a gap. Everything it holds lies within [read offset, read offset + window); at most
// max_ahead chunks are held ahead of a gap. charged(): what it holds for the node's budgets, each chunk
// counted as at least min_charge bytes (so tiny chunks are not cheap).
#pragma once
#include <cstdint>
#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "storjnet/bytes.h"

namespace storjnet::streams {

class RecvBuffer {
 public:
  explicit RecvBuffer(size_t window, size_t min_charge = 0, size_t max_ahead = SIZE_MAX)
      : window_(window), min_charge_(min_charge), max_ahead_(max_ahead) {}

  enum class Add { kOk, kBeyondWindow, kTooManyAhead };
  // Stores data at stream offset `offset` (duplicates and overlaps are trimmed).
  Add add(uint64_t offset, ByteView data);
  // The same, keeping `data` itself (no copy) when it continues the contiguous run.
  Add add(uint64_t offset, Bytes&& data);
  // Up to `max` contiguous bytes (all when nullopt). A whole buffered chunk is handed over without a copy;
  // chunks copied out whole go to `spent` when given (buffers for reuse).
  Bytes read(std::optional<size_t> max, std::vector<Bytes>* spent = nullptr);
  size_t unread() const { return static_cast<size_t>(received_ - read_); }
  uint64_t received() const { return received_; }
  uint64_t read_offset() const { return read_; }
  uint64_t limit() const { return read_ + window_; }
  size_t window() const { return window_; }
  size_t ahead_bytes() const { return ahead_bytes_; }
  size_t ahead_chunks() const { return ahead_.size(); }
  size_t charged() const { return charged_; }
  // The most one add of `n` bytes can raise charged().
  size_t max_charge(size_t n) const { return charge(n); }
  void drop_ahead() {
    for (auto& [off, c] : ahead_) charged_ -= charge(c.size());
    ahead_.clear();
    ahead_bytes_ = 0;
  }

 private:
  size_t charge(size_t n) const { return n < min_charge_ ? min_charge_ : n; }
  void append(ByteView data);
  void take_ahead();

  size_t window_, min_charge_, max_ahead_;
  size_t charged_ = 0;
  uint64_t read_ = 0, received_ = 0;
  std::deque<Bytes> chunks_;  // contiguous, unread; the first starts at head_ bytes in
  size_t head_ = 0;
  std::map<uint64_t, Bytes> ahead_;
  size_t ahead_bytes_ = 0;
};

}  // namespace storjnet::streams
