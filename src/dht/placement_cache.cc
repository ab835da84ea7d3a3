#include "dht/placement_cache.h"

#include <algorithm>

namespace storjnet::dht {

void PlacementCache::remember(const NodeId& key, std::vector<Contact> targets, bool self_among, TimePoint at,
                              TimePoint now) {
  if (ttl_ <= Duration{} || targets.empty() || at + ttl_ <= now) return;
  forget(key);
  drop_expired(now);
  if (entries_.size() >= kMax) entries_.pop_front();
  if (targets.size() > keep_) targets.resize(keep_);
  targets.shrink_to_fit();
  entries_.push_back({key, std::move(targets), self_among, at});
}

const PlacementCache::Entry* PlacementCache::find(const NodeId& key, TimePoint now) {
  drop_expired(now);
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == key; });
  return it == entries_.end() ? nullptr : &*it;
}

void PlacementCache::forget(const NodeId& key, TimePoint at) {
  std::erase_if(entries_, [&](const Entry& e) { return e.key == key && e.at <= at; });
}

void PlacementCache::drop_expired(TimePoint now) {
  std::erase_if(entries_, [&](const Entry& e) { return e.at + ttl_ <= now; });
  if (entries_.empty()) entries_ = {};  // gives the deque's blocks back
}

}  // namespace storjnet::dht
