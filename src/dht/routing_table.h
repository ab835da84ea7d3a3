// RoutingTable: Kademlia k-buckets around our own id.
//
// Bucket i holds contacts sharing exactly i leading bits with us (i in [0, 160)), at most k each, ordered
// least recently seen first. Only contacts that proved their key (an authenticated message from them) are
// added. When a bucket is full the newcomer waits in a small replacement cache; if the least recently seen
// entry has gone quiet, it is pinged and the newcomer replaces it only if the ping fails (as BEP 5: entries
// heard from recently are good and not pinged). Contacts whose requests keep timing out are evicted and
// replaced from the cache.
#pragma once
#include <array>
#include <optional>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/environment.h"

namespace storjnet::dht {

class RoutingTable {
 public:
  struct Entry {
    Contact contact;
    TimePoint last_seen{};
    int failures = 0;
  };
  enum class Seen { kAdded, kUpdated, kFull, kIgnored };
  static constexpr size_t kBuckets = 160;
  static constexpr size_t kReplacements = 8;

  RoutingTable(const NodeId& self, size_t k) : self_(self), k_(k) {}

  // A contact proved alive (authenticated message). kFull: bucket full, newcomer cached; ping oldest_in_bucket_of.
  Seen seen(const Contact& c, TimePoint now);
  // The least recently seen contact of the bucket `id` falls in, if it was last seen before `quiet_since`
  // (nullopt when the bucket is empty or that contact was heard from since).
  std::optional<Contact> oldest_in_bucket_of(const NodeId& id, TimePoint quiet_since = TimePoint::max()) const;
  // An RPC to `id` timed out. Returns true when the contact was evicted (after max_failures in a row).
  bool failed(const NodeId& id, int max_failures);
  // Removes `id`, promoting the newest replacement of its bucket.
  void remove(const NodeId& id);

  std::optional<Contact> find(const NodeId& id) const;
  // Up to n contacts closest to target (XOR), closest first.
  std::vector<Contact> closest(const NodeId& target, size_t n) const;
  std::vector<Contact> all() const;
  size_t size() const { return size_; }
  int bucket_of(const NodeId& id) const;
  const std::vector<Entry>& bucket(size_t i) const { return i < buckets_.size() ? buckets_[i].entries : kEmpty; }
  TimePoint last_refresh(size_t i) const { return i < buckets_.size() ? buckets_[i].refreshed : TimePoint{}; }
  void mark_refreshed(size_t i, TimePoint now) { at(i).refreshed = now; }
  // Deepest non-empty bucket index, or -1.
  int deepest_bucket() const;

 private:
  struct Bucket {
    std::vector<Entry> entries;          // least recently seen first
    std::vector<Contact> replacements;   // newest last (a deque would allocate 512 B per empty bucket)
    TimePoint refreshed{};
  };
  // Buckets exist up to the deepest one used: in a network of N nodes only about log2(N) are ever filled.
  Bucket& at(size_t i) {
    if (i >= buckets_.size()) buckets_.resize(i + 1);
    return buckets_[i];
  }
  static inline const std::vector<Entry> kEmpty{};
  NodeId self_;
  size_t k_;
  std::vector<Bucket> buckets_;
  size_t size_ = 0;
};

}  // namespace storjnet::dht
