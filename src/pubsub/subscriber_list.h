// SubscriberList: the subscribers a rendezvous holder keeps for one topic (docs/protocol.md section 8.3).
//
// Changed only by statements their subscribers signed (checked by the caller), newest first: a statement
// issued at or before the one held for that subscriber is stale and changes nothing, so a replayed subscribe
// cannot undo a later unsubscribe while the unsubscribe is remembered (as a tombstone, until its lease ends).
// Bounded by `max` entries (tombstones included) and fair across address blocks (Endpoint::prefix(), IPv4 /24,
// IPv6 /48): when full, a newcomer from a block holding fewer entries than the largest block by at least two
// takes the place of that block's entry nearest to expiry; otherwise it is refused. So a flood from one block
// can fill at most what the other blocks leave free, and never keeps a newcomer from another block out.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/environment.h"

namespace storjnet::pubsub {

class SubscriberList {
 public:
  struct Entry {
    Contact contact;          // endpoint proven (the holder reached the subscriber there), or ours
    uint64_t issued_us = 0;   // the newest statement applied
    TimePoint expires{};
    bool active = true;       // false: a tombstone (unsubscribed), kept so replays stay refused
    bool self = false;        // the holder itself
    std::vector<NodeId> holders;  // the holders its statement names (direct rendezvous; pubsub/serving.h)
  };
  enum class Result { kApplied, kDisplaced /* applied; another block's entry made room */, kStale, kFull };

  // The subscriber's newest statement, or nullptr.
  const Entry* find(const NodeId& id) const;
  // Applies a subscribe (active) or an unsubscribe (tombstone) issued at `e.issued_us`.
  Result apply(const Entry& e, size_t max);
  // Drops entries whose lease ended; returns how many.
  size_t expire(TimePoint now);
  size_t size() const { return entries_.size(); }
  size_t active() const;
  const std::unordered_map<NodeId, Entry>& entries() const { return entries_; }

 private:
  void count(const Entry& e, int delta);
  size_t in_block(const Endpoint::Prefix& p) const;
  std::unordered_map<NodeId, Entry> entries_;
  std::unordered_map<Endpoint::Prefix, size_t> per_block_;
};

}  // namespace storjnet::pubsub
