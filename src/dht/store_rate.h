// StoreRate: per-peer token buckets for kademlia_store (DhtConfig::store_rate per second, burst 2x).
//
// A store costs a disk write, so it gets a tighter budget than the engine's per-peer request rate. The table
// is bounded: when it holds max_peers, buckets that have refilled (their peer went idle) are forgotten, and if
// that frees less than an eighth, others (in the keyed hash's order, which a sender cannot aim at) until an
// eighth is free; a forgotten peer only gets a fresh burst back. Amortised O(1) per new peer. Refilled buckets
// are also forgotten every kSweepEvery (on the next call): a full bucket is the same as none, so an idle peer
// costs no memory (a verifier asks a node's verdict once; at 10,000 nodes each node answers hundreds).
#pragma once
#include <algorithm>
#include <unordered_map>

#include "common/token_bucket.h"
#include "storjnet/node_id.h"

namespace storjnet::dht {

class StoreRate {
 public:
  static constexpr Duration kSweepEvery = std::chrono::seconds(10);

  explicit StoreRate(double per_second, size_t max_peers = 4096) : rate_(per_second), max_peers_(max_peers) {}

  // True when `peer` may store now (one token taken). A rate of 0 or less means unlimited.
  bool allow(const NodeId& peer, TimePoint now) {
    if (rate_ <= 0) return true;
    if (now - swept_ >= kSweepEvery) sweep(now);
    auto it = buckets_.find(peer);
    if (it == buckets_.end()) {
      if (buckets_.size() >= max_peers_) prune(now);
      it = buckets_.emplace(peer, TokenBucket{burst(), now}).first;
    }
    return it->second.take(rate_, burst(), now);
  }
  size_t tracked() const { return buckets_.size(); }

 private:
  double burst() const { return 2 * rate_; }
  // Forgets the refilled buckets.
  void sweep(TimePoint now) {
    swept_ = now;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      it->second.refill(rate_, burst(), now);
      it = it->second.tokens >= burst() ? buckets_.erase(it) : std::next(it);
    }
  }
  // Frees at least an eighth of the table: refilled buckets first, then any.
  void prune(TimePoint now) {
    size_t target = max_peers_ - std::max<size_t>(1, max_peers_ / 8);
    sweep(now);
    for (auto it = buckets_.begin(); buckets_.size() > target && it != buckets_.end();) it = buckets_.erase(it);
  }

  double rate_;
  size_t max_peers_;
  TimePoint swept_{};
  std::unordered_map<NodeId, TokenBucket> buckets_;
};

}  // namespace storjnet::dht
