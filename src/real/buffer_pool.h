// BufferPool: spent buffers of the real driver's byte connections, kept for reuse: written send buffers, and
// stream chunks an application's read consumed (ConnProvider::conn_recycle), for the next record received.
// A fast-path record is ~128 KiB; a fresh std::vector of that size is allocated and zero-filled before the
// cipher overwrites it.
// A reused one keeps its size and capacity, so sizing it to the next record of the same size costs nothing.
// Bounded: at most kMax buffers, each of kMinCapacity to kMaxCapacity bytes of capacity (others are freed: small
// ones are not worth keeping).
// Contents are stale: ciphertext already sent, or stream bytes already read (this process's own, never shown:
// each user overwrites what it sizes). One thread (the io thread).
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

#include "storjnet/bytes.h"

namespace storjnet::real {

class BufferPool {
 public:
  static constexpr size_t kMax = 16;
  static constexpr size_t kMinCapacity = 4096;
  static constexpr size_t kMaxCapacity = 256 * 1024;

  // A spent buffer (its old size and contents), or an empty one when none is kept.
  Bytes take() {
    if (free_.empty()) return {};
    Bytes b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  // Keeps `b` for a later take() unless the pool is full or `b` is too large.
  void give(Bytes&& b) {
    if (free_.size() < kMax && b.capacity() >= kMinCapacity && b.capacity() <= kMaxCapacity) free_.push_back(std::move(b));
  }
  size_t size() const { return free_.size(); }

 private:
  std::vector<Bytes> free_;
};

}  // namespace storjnet::real
