// PlacementCache: where this node's recent puts stored, by key, for the next put of the same key.
//
// A put's lookup finds its key's neighbourhood (LookupResult::placement); an update of the key moments later
// would find the same nodes, and can store on them at once instead (OpenDHT keeps its searches for this). A
// put remembers its placement only once its stores ended cleanly (every store answered `true`, or went unanswered
// only on candidates its lookup left slow, which are left out): its first `keep` targets (the k stores and a few
// replacements) and whether this node was among the key's k closest
// (it keeps a copy then). find() gives it back for `ttl` after its lookup ended (a reuse does not make it
// younger: nodes that joined nearer the key since are found only by a lookup). forget() drops a key's placement
// that a put's stores showed stale, unless it is newer than what that put used. At most kMax keys: remembering
// another forgets the oldest; expired entries are dropped as they are met.
// Not thread-safe: one node's Dht drives it on its own thread.
#pragma once
#include <deque>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/environment.h"

namespace storjnet::dht {

class PlacementCache {
 public:
  static constexpr size_t kMax = 8;
  struct Entry {
    NodeId key;
    std::vector<Contact> targets;  // closest first
    bool self_among = false;       // this node was among the key's k closest (and keeps a copy)
    TimePoint at{};                // when the lookup that found it ended
  };

  // ttl 0: remembers nothing.
  PlacementCache(Duration ttl, size_t keep) : ttl_(ttl), keep_(keep) {}

  void remember(const NodeId& key, std::vector<Contact> targets, bool self_among, TimePoint at, TimePoint now);
  // The key's placement while younger than ttl, else nullptr. Valid until the next call.
  const Entry* find(const NodeId& key, TimePoint now);
  // Drops the key's placement if its lookup ended at `at` or before (a placement a later put remembered stays).
  void forget(const NodeId& key, TimePoint at = TimePoint::max());
  // Drops the placements older than ttl (the node's maintenance calls it: a node that stopped putting holds none).
  void drop_expired(TimePoint now);
  size_t size() const { return entries_.size(); }
  size_t keep() const { return keep_; }  // targets kept per key

 private:
  Duration ttl_;
  size_t keep_;
  std::deque<Entry> entries_;  // oldest first
};

}  // namespace storjnet::dht
