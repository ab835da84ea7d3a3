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
// Addresses last sent to more than kWindow (plus kGrace) ago are forgotten as sends go on, at most every
// kWindow / 2: they answer "not sent" with or without their entry, so a node costs memory only for the
// addresses of its last few minutes, not for every peer it ever met; the table gives its spare room back when
// it falls under a quarter full. Addresses are held as 64-bit keyed fingerprints (std::hash<Endpoint>, SipHash
// under the process key): two that collide answer "sent" for each other, the conservative side, and a peer
// cannot aim a collision at the process's secret key.
// Compact: an entry is 24 bytes in one flat table (absl::flat_hash_map), times in whole milliseconds modulo 2^32
// (CompactBucket::stamp) and the datagram number modulo 2^32. Times compare as signed 32-bit differences, right
// for gaps under 24 days; entries are never kept that long while sends go on (an older one could only read as
// "sent"). Two datagram numbers 2^32 apart read as the same, which needs 2^32 arrivals within an entry's life.
#pragma once
#include <absl/container/flat_hash_map.h>

#include "common/compact_bucket.h"

#include "storjnet/endpoint.h"
#include "storjnet/environment.h"

namespace storjnet {

class RecentSends {
 public:
  static constexpr Duration kWindow = std::chrono::minutes(5);
  // How much older than kWindow an entry gets before it is forgotten: a datagram's arrival time may precede
  // the moment it is handled (a real driver's batch), and its answer must not change meanwhile.
  static constexpr Duration kGrace = std::chrono::seconds(10);
  explicit RecentSends(size_t max_entries = 8192) : max_(max_entries) {}

  // A datagram went to `to` at `now`, while handling arrival number `seq`.
  void sent(const Endpoint& to, TimePoint now, uint64_t seq) {
    uint64_t a = fingerprint(to);
    if (now >= next_expiry_) {
      expire(now);
      next_expiry_ = now + kWindow / 2;
    }
    auto it = map_.find(a);
    if (it == map_.end()) {
      if (map_.size() >= max_) prune(now);
      it = map_.emplace(a, Times{}).first;
    }
    Times& t = it->second;
    auto s = static_cast<uint32_t>(seq);
    if (t.seq != s || !t.any) {
      t.before_ms = t.last_ms;
      t.before_any = t.any;
      t.seq = s;
    }
    t.last_ms = CompactBucket::stamp(now);
    t.any = true;
  }
  // Whether anything went to `from`'s address within kWindow before `arrival`, the arrival time of datagram
  // number `seq` (the one being handled).
  bool sent_before(const Endpoint& from, TimePoint arrival, uint64_t seq) const {
    if (arrival < saturated_until_) return true;
    auto it = map_.find(fingerprint(from));
    if (it == map_.end()) return false;
    const Times& t = it->second;
    bool before = t.seq == static_cast<uint32_t>(seq);
    if (!(before ? t.before_any : t.any)) return false;
    return age_ms(arrival, before ? t.before_ms : t.last_ms) <= kWindowMs;
  }
  size_t entries() const { return map_.size(); }
  size_t capacity() const { return map_.capacity(); }

 private:
  using Ms = std::chrono::milliseconds;
  static constexpr int64_t kWindowMs = std::chrono::duration_cast<Ms>(kWindow).count();
  static constexpr int64_t kForgetMs = std::chrono::duration_cast<Ms>(kWindow + kGrace).count();
  struct Times {
    uint32_t last_ms = 0, before_ms = 0;  // last send; last send before datagram `seq`
    uint32_t seq = 0;
    bool any = false, before_any = false;  // whether last_ms, before_ms hold a send
  };
  static_assert(sizeof(Times) == 16);
  // How long before `t` the stamp `ms` is (negative: after it).
  static int64_t age_ms(TimePoint t, uint32_t ms) {
    return static_cast<int32_t>(CompactBucket::stamp(t) - ms);
  }
  static uint64_t fingerprint(Endpoint ep) {  // the address (family and bytes), any port: the keyed endpoint hash
    ep.port = 0;
    return std::hash<Endpoint>()(ep);
  }
  void expire(TimePoint now) {
    for (auto it = map_.begin(); it != map_.end();) {
      if (age_ms(now, it->second.last_ms) > kForgetMs) map_.erase(it++);
      else ++it;
    }
    if (map_.capacity() > 64 && map_.size() < map_.capacity() / 4) map_.rehash(0);  // give the spare room back
  }
  void prune(TimePoint now) {
    expire(now);
    if (map_.size() < max_ - max_ / 8) return;
    map_.clear();
    saturated_until_ = now + kWindow;
  }
  size_t max_;
  absl::flat_hash_map<uint64_t, Times> map_;  // by fingerprint
  TimePoint saturated_until_{};
  TimePoint next_expiry_{};  // the next sent() that forgets old entries
};

}  // namespace storjnet
