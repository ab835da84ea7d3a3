// SeenSet: event ids seen recently, with a flag byte per id (delivered, forwarded by Quasar, routed...).
// Bounded in time (entries older than `window` are forgotten) and in count (the oldest go first).
#pragma once
#include <deque>
#include <unordered_map>

#include "pubsub/wire.h"
#include "storjnet/environment.h"
#include "storjnet/keyed_hash.h"

namespace storjnet::pubsub {

class SeenSet {
 public:
  SeenSet(Duration window, size_t max_entries) : window_(window), max_(max_entries) {}

  // Sets `flag` on `id`; true when it was not set before.
  bool test_and_set(const EventId& id, uint8_t flag, TimePoint now) {
    expire(now);
    auto [it, fresh] = map_.try_emplace(id, 0);
    if (fresh) {
      order_.push_back({now, id});
      if (map_.size() > max_) {
        map_.erase(order_.front().id);
        order_.pop_front();
        ++evicted_;
      }
      it = map_.find(id);
      if (it == map_.end()) return true;  // evicted itself (max_ == 0)
    }
    if (it->second & flag) return false;
    it->second |= flag;
    return true;
  }
  bool has(const EventId& id, uint8_t flag) const {
    auto it = map_.find(id);
    return it != map_.end() && (it->second & flag);
  }
  void expire(TimePoint now) {
    while (!order_.empty() && order_.front().at + window_ <= now) {
      map_.erase(order_.front().id);
      order_.pop_front();
    }
  }
  size_t size() const { return map_.size(); }
  bool empty() const { return map_.empty(); }
  uint64_t evicted() const { return evicted_; }

 private:
  struct Entry {
    TimePoint at;
    EventId id;
  };
  Duration window_;
  size_t max_;
  std::unordered_map<EventId, uint8_t, KeyedHash> map_;  // event ids are chosen by publishers: keyed
  std::deque<Entry> order_;
  uint64_t evicted_ = 0;
};

}  // namespace storjnet::pubsub
