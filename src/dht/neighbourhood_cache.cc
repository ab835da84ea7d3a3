#include "dht/neighbourhood_cache.h"

#include <algorithm>

namespace storjnet::dht {

namespace {

// Whether the subtrees (a, da) and (b, db) overlap: prefix subtrees either nest or are disjoint.
bool overlap(const NodeId& a, int da, const NodeId& b, int db) { return a.common_prefix_bits(b) >= std::min(da, db); }

NodeId with_bit_flipped(const NodeId& id, int bit) {
  auto b = id.bytes();
  b[static_cast<size_t>(bit) / 8] ^= static_cast<uint8_t>(0x80u >> (bit % 8));
  return NodeId(b);
}

}  // namespace

std::optional<NeighbourhoodCache::Region> NeighbourhoodCache::region_of(const NodeId& key,
                                                                       const std::vector<Contact>& placement,
                                                                       const std::vector<NodeId>& unconfirmed,
                                                                       size_t k, TimePoint at) {
  if (k == 0 || placement.size() < k) return std::nullopt;
  int depth = key.common_prefix_bits(placement[k - 1].id) + 1;
  for (const NodeId& id : unconfirmed) depth = std::max(depth, key.common_prefix_bits(id) + 1);
  if (depth > static_cast<int>(NodeId::kBits)) return std::nullopt;  // nothing left to vouch for
  Region r{key, depth, {}, at};
  for (size_t i = 0; i + 1 < k; ++i)
    if (key.common_prefix_bits(placement[i].id) >= depth) r.members.push_back(placement[i]);
  return r;
}

void NeighbourhoodCache::remember(Region r, TimePoint now) {
  if (ttl_ <= Duration{} || r.at + ttl_ <= now) return;
  drop_expired(now);  // first: an expired region holds no view that should win
  auto overlaps = [&](const Region& o) { return overlap(o.around, o.depth, r.around, r.depth); };
  if (std::any_of(regions_.begin(), regions_.end(), [&](const Region& o) { return overlaps(o) && o.at > r.at; }))
    return;  // a later lookup found that part of the id space: its view wins
  r.members.shrink_to_fit();
  std::erase_if(regions_, overlaps);
  if (regions_.size() >= kMax) regions_.pop_front();
  regions_.push_back(std::move(r));
}

std::optional<NeighbourhoodCache::Placement> NeighbourhoodCache::placement(const NodeId& key, TimePoint now) {
  drop_expired(now);
  struct Ranked {
    int shared;  // leading bits shared with the key
    const Contact* c;
  };
  std::vector<Ranked> all;
  for (const Region& r : regions_)
    for (const Contact& c : r.members) all.push_back({key.common_prefix_bits(c.id), &c});
  // The smallest subtree around the key holding its stores and their replacements (`keep`, at least k): the
  // keep-th most leading bits shared. A replacement from further out might skip an unknown nearer node.
  const size_t need = std::max(k_, keep_);
  if (need == 0 || all.size() < need) return std::nullopt;
  std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(need - 1), all.end(),
                   [](const Ranked& a, const Ranked& b) { return a.shared > b.shared; });
  const int depth = all[need - 1].shared;
  if (!covered(key, depth)) return std::nullopt;
  Placement p{{}, depth, TimePoint::min()};
  for (const Region& r : regions_)
    if (overlap(r.around, r.depth, key, depth)) p.newest = std::max(p.newest, r.at);
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(need), all.end(),
                    [&](const Ranked& a, const Ranked& b) { return (a.c->id ^ key) < (b.c->id ^ key); });
  p.targets.reserve(need);
  for (size_t i = 0; i < need; ++i) p.targets.push_back(*all[i].c);
  return p;
}

bool NeighbourhoodCache::covered(const NodeId& id, int depth) const {
  bool inside = false;
  for (const Region& r : regions_) {
    if (r.depth <= depth && id.common_prefix_bits(r.around) >= r.depth) return true;  // r holds the whole subtree
    inside = inside || id.common_prefix_bits(r.around) >= depth;  // r lies within it
  }
  // Covered whole only if both halves are; a subtree no region reaches into is not.
  if (!inside || depth >= static_cast<int>(NodeId::kBits)) return false;
  return covered(id, depth + 1) && covered(with_bit_flipped(id, depth), depth + 1);
}

void NeighbourhoodCache::forget(const NodeId& within, int depth, TimePoint at) {
  std::erase_if(regions_, [&](const Region& r) { return r.at <= at && overlap(r.around, r.depth, within, depth); });
}

void NeighbourhoodCache::drop_expired(TimePoint now) {
  std::erase_if(regions_, [&](const Region& r) { return r.at + ttl_ <= now; });
  if (regions_.empty()) regions_ = {};  // gives the deque's blocks back
}

}  // namespace storjnet::dht
