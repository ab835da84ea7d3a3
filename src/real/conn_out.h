// ConnOut: one byte connection's send queue in the real driver, in order: buffers it owns (conn_send) and
// buffers a caller keeps alive (conn_send_kept: a sealed record its stream holds until acknowledged, written
// from without a copy). Written owned buffers go back to the driver's BufferPool. One thread (the io thread).
#pragma once
#include <cstddef>
#include <deque>
#include <memory>
#include <utility>

#include "real/buffer_pool.h"
#include "storjnet/bytes.h"

namespace storjnet::real {

class ConnOut {
 public:
  void push(Bytes bytes) {
    queued_ += bytes.size();
    ByteView view(bytes);
    items_.push_back({std::move(bytes), view, nullptr});  // a vector's data does not move with it
  }
  void push_kept(ByteView bytes, std::shared_ptr<const void> keep) {
    queued_ += bytes.size();
    items_.push_back({Bytes(), bytes, std::move(keep)});
  }
  bool empty() const { return items_.empty(); }
  size_t queued() const { return queued_; }  // bytes not yet written
  // Calls f(ByteView) for the first `max` buffers (one gathered write); returns how many.
  template <class F>
  size_t first(size_t max, F&& f) const {
    size_t n = 0;
    for (auto it = items_.begin(); it != items_.end() && n < max; ++it, ++n) f(it->view);
    return n;
  }
  // The first `n` buffers were written: owned ones go to `pool`, kept ones are let go.
  void written(size_t n, BufferPool& pool) {
    for (; n > 0 && !items_.empty(); --n) {
      queued_ -= items_.front().view.size();
      if (!items_.front().keep) pool.give(std::move(items_.front().own));
      items_.pop_front();
    }
  }
  void clear() {
    items_.clear();
    queued_ = 0;
  }

 private:
  struct Item {
    Bytes own;
    ByteView view;
    std::shared_ptr<const void> keep;
  };
  std::deque<Item> items_;
  size_t queued_ = 0;
};

}  // namespace storjnet::real
