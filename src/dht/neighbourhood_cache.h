// NeighbourhoodCache: the id regions this node's recent puts found whole, for puts of other keys in them.
//
// A put's lookup of key T ends with its placement: the nodes nearest T it found, closest first. Every node
// nearer T than the placement's k-th is among them (what T's own placement relies on), so the region of ids
// that share more leading bits with T than the k-th does (a prefix subtree, all of it nearer T than the k-th)
// is known whole: its members are the placement's nodes inside it. A region is also narrowed to leave out every
// candidate the lookup could not confirm (one that failed or stayed slow: a liar may have named an honest node
// at a false address). remember() keeps a region unless an overlapping one is newer, and drops the older ones it
// overlaps, so regions never overlap. placement(K) answers for another key K when the smallest subtree around K
// that holds `keep` members (the k stores and their replacements) is covered whole by regions: under XOR every
// id inside a subtree around K is nearer K than every id outside it, so K's `keep` closest nodes are the `keep`
// closest of those members, in order, as a lookup of K would find them. A region serves for `ttl` after its
// lookup ended (a use does not make it younger); at most kMax are kept, the oldest dropped first. forget() drops
// the regions a put's stores showed stale. Not thread-safe: one node's Dht drives it on its own thread.
#pragma once
#include <deque>
#include <optional>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/environment.h"

namespace storjnet::dht {

class NeighbourhoodCache {
 public:
  static constexpr size_t kMax = 32;
  struct Region {
    NodeId around;                 // the put's key: the region is every id sharing `depth` leading bits with it
    int depth = 0;
    std::vector<Contact> members;  // the placement's nodes inside the region, closest to `around` first
    TimePoint at{};                // when the lookup that found it ended
  };
  struct Placement {
    std::vector<Contact> targets;  // the key's `keep` closest (k stores, then their replacements), closest first
    int depth = 0;                 // they came from the ids sharing `depth` leading bits with the key
    TimePoint newest{};            // the newest lookup among the regions covering that subtree (a stale
                                   // placement drops them all: forget() up to it)
  };

  // k: the replication factor; keep: targets a placement gives (k and replacements); ttl 0: remembers nothing.
  NeighbourhoodCache(Duration ttl, size_t k, size_t keep) : ttl_(ttl), k_(k), keep_(keep) {}

  // The region a lookup of `key` that ended at `at` found whole, from its placement (closest first) and the
  // candidates it could not confirm (failed or slow); none when the placement is shorter than k.
  static std::optional<Region> region_of(const NodeId& key, const std::vector<Contact>& placement,
                                         const std::vector<NodeId>& unconfirmed, size_t k, TimePoint at);
  // Keeps `r` unless it is ttl old or an overlapping region is newer, dropping the regions it overlaps.
  void remember(Region r, TimePoint now);
  // `key`'s placement from the regions, when the smallest subtree around it holding `keep` members is covered
  // whole.
  std::optional<Placement> placement(const NodeId& key, TimePoint now);
  // Drops the regions that overlap the subtree of ids sharing `depth` leading bits with `within`, found at `at`
  // or before (one a later put remembered stays).
  void forget(const NodeId& within, int depth, TimePoint at);
  void drop_expired(TimePoint now);
  size_t size() const { return regions_.size(); }

 private:
  // Whether the subtree of ids sharing `depth` leading bits with `id` is covered whole by regions.
  bool covered(const NodeId& id, int depth) const;

  Duration ttl_;
  size_t k_, keep_;
  std::deque<Region> regions_;  // oldest first
};

}  // namespace storjnet::dht
