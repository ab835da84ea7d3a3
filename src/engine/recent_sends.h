// RecentSends: when this node last sent a datagram to each IP address (any port), over the last kWindow.
//
// A node behind a NAT cannot see what its router filtered, but it knows what it sent: a datagram from an
// address it sent nothing to within kWindow came in unsolicited, through any NAT (a restricted or symmetric
// one only lets in answers to its own traffic). The dial-back self-check (docs/protocol.md 5.1) rests on this.
// Sends made while a datagram is being handled (an answer, a verifying ping) must not count for that datagram:
// the engine numbers datagrams as they arrive and sent_before() uses, for an address sent to while handling
// the current one, the last send before it arrived.
// Bounded: at most max_entries addresses; when full of fresh entries the table is cleared and answers "sent"
// for every address until kWindow passes (conservative: the node then never claims an unsolicited datagram).
#pragma once
#include <unordered_map>

#include "storjnet/endpoint.h"
#include "storjnet/environment.h"

namespace storjnet {

class RecentSends {
 public:
  static constexpr Duration kWindow = std::chrono::minutes(5);
  explicit RecentSends(size_t max_entries = 8192) : max_(max_entries) {}

  // A datagram went to `to` at `now`, while handling arrival number `seq`.
  void sent(const Endpoint& to, TimePoint now, uint64_t seq) {
    Endpoint a = to;
    a.port = 0;
    auto it = map_.find(a);
    if (it == map_.end()) {
      if (map_.size() >= max_) prune(now);
      it = map_.emplace(a, Times{}).first;
    }
    Times& t = it->second;
    if (t.seq != seq) {
      t.before_seq = t.last;
      t.seq = seq;
    }
    t.last = now;
  }
  // Whether anything went to `from`'s address within kWindow before `arrival`, the arrival time of datagram
  // number `seq` (the one being handled).
  bool sent_before(const Endpoint& from, TimePoint arrival, uint64_t seq) const {
    if (arrival < saturated_until_) return true;
    Endpoint a = from;
    a.port = 0;
    auto it = map_.find(a);
    if (it == map_.end()) return false;
    const Times& t = it->second;
    TimePoint last = t.seq == seq ? t.before_seq : t.last;
    return last != TimePoint::min() && last >= arrival - kWindow;
  }
  size_t entries() const { return map_.size(); }

 private:
  struct Times {
    TimePoint last = TimePoint::min(), before_seq = TimePoint::min();  // last send; last before datagram `seq`
    uint64_t seq = 0;
  };
  void prune(TimePoint now) {
    std::erase_if(map_, [&](const auto& kv) { return kv.second.last < now - kWindow; });
    if (map_.size() < max_ - max_ / 8) return;
    map_.clear();
    saturated_until_ = now + kWindow;
  }
  size_t max_;
  std::unordered_map<Endpoint, Times> map_;
  TimePoint saturated_until_{};
};

}  // namespace storjnet
