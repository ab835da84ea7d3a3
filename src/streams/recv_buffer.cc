#include "streams/recv_buffer.h"

#include <algorithm>
#include <cstring>

namespace storjnet::streams {

void RecvBuffer::append(ByteView data) {
  if (data.empty()) return;
  chunks_.emplace_back(data.begin(), data.end());
  received_ += data.size();
  charged_ += charge(data.size());
}

RecvBuffer::Add RecvBuffer::add(uint64_t offset, ByteView data) {
  if (data.empty()) return Add::kOk;
  if (offset + data.size() > limit()) return Add::kBeyondWindow;
  if (offset + data.size() <= received_) return Add::kOk;  // duplicate
  if (offset > received_) {
    // An honest writer's chunks ahead of the gap do not overlap, so they total at most the window; a peer
    // sending overlapping chunks at many offsets is refused instead of growing memory.
    auto held = ahead_.find(offset);
    size_t replaced = held == ahead_.end() ? 0 : held->second.size();
    if (ahead_bytes_ - replaced + data.size() > window_) return Add::kBeyondWindow;
    if (held == ahead_.end() && ahead_.size() >= max_ahead_) return Add::kTooManyAhead;
    auto [it, fresh] = ahead_.try_emplace(offset);
    if (fresh || it->second.size() < data.size()) {
      ahead_bytes_ -= it->second.size();
      if (!fresh) charged_ -= charge(it->second.size());
      it->second.assign(data.begin(), data.end());
      ahead_bytes_ += data.size();
      charged_ += charge(data.size());
    }
    return Add::kOk;
  }
  append(data.subspan(static_cast<size_t>(received_ - offset)));
  take_ahead();
  return Add::kOk;
}

RecvBuffer::Add RecvBuffer::add(uint64_t offset, Bytes&& data) {
  if (offset != received_ || data.empty() || offset + data.size() > limit()) return add(offset, ByteView(data));
  received_ += data.size();
  charged_ += charge(data.size());
  chunks_.push_back(std::move(data));
  take_ahead();
  return Add::kOk;
}

// Chunks that arrived ahead may now continue the contiguous run.
void RecvBuffer::take_ahead() {
  while (!ahead_.empty() && ahead_.begin()->first <= received_) {
    auto node = ahead_.extract(ahead_.begin());
    ahead_bytes_ -= node.mapped().size();
    charged_ -= charge(node.mapped().size());
    uint64_t end = node.key() + node.mapped().size();
    if (end > received_) append(ByteView(node.mapped()).subspan(static_cast<size_t>(received_ - node.key())));
  }
}

Bytes RecvBuffer::read(std::optional<size_t> max, std::vector<Bytes>* spent) {
  size_t n = std::min(unread(), max.value_or(unread()));
  if (n > 0 && head_ == 0 && chunks_.front().size() == n) {
    Bytes out = std::move(chunks_.front());
    chunks_.pop_front();
    charged_ -= charge(out.size());
    read_ += n;
    return out;
  }
  Bytes out;
  out.reserve(n);
  while (out.size() < n) {
    Bytes& c = chunks_.front();
    size_t take = std::min(c.size() - head_, n - out.size());
    out.insert(out.end(), c.begin() + static_cast<long>(head_), c.begin() + static_cast<long>(head_ + take));
    head_ += take;
    if (head_ == c.size()) {
      charged_ -= charge(c.size());
      if (spent) spent->push_back(std::move(c));
      chunks_.pop_front();
      head_ = 0;
    }
  }
  read_ += n;
  return out;
}

}  // namespace storjnet::streams
