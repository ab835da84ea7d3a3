#include "pubsub/subscriber_list.h"

#include <algorithm>

namespace storjnet::pubsub {

const SubscriberList::Entry* SubscriberList::find(const NodeId& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

size_t SubscriberList::active() const {
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(), [](const auto& kv) { return kv.second.active; }));
}

void SubscriberList::count(const Entry& e, int delta) {
  auto p = e.contact.endpoint.prefix();
  auto& n = per_block_[p];
  n = static_cast<size_t>(static_cast<long>(n) + delta);
  if (n == 0) per_block_.erase(p);
}

size_t SubscriberList::in_block(const Endpoint::Prefix& p) const {
  auto it = per_block_.find(p);
  return it == per_block_.end() ? 0 : it->second;
}

SubscriberList::Result SubscriberList::apply(const Entry& e, size_t max) {
  auto it = entries_.find(e.contact.id);
  if (it != entries_.end()) {
    if (e.issued_us <= it->second.issued_us) return Result::kStale;
    count(it->second, -1);
    it->second = e;
    count(e, +1);
    return Result::kApplied;
  }
  if (entries_.size() >= max) {
    // Full: the largest block gives up its entry nearest to expiry, if that block is clearly larger.
    const Endpoint::Prefix mine = e.contact.endpoint.prefix();
    auto largest = std::max_element(per_block_.begin(), per_block_.end(),
                                    [](const auto& a, const auto& b) { return a.second < b.second; });
    if (largest == per_block_.end() || largest->second < in_block(mine) + 2) return Result::kFull;
    const Endpoint::Prefix victim_block = largest->first;
    auto victim = entries_.end();
    for (auto v = entries_.begin(); v != entries_.end(); ++v) {
      if (v->second.self || v->second.contact.endpoint.prefix() != victim_block) continue;
      if (victim == entries_.end() || v->second.expires < victim->second.expires ||
          (v->second.expires == victim->second.expires && v->first < victim->first))
        victim = v;
    }
    if (victim == entries_.end()) return Result::kFull;
    count(victim->second, -1);
    entries_.erase(victim);
    entries_.emplace(e.contact.id, e);
    count(e, +1);
    return Result::kDisplaced;
  }
  entries_.emplace(e.contact.id, e);
  count(e, +1);
  return Result::kApplied;
}

size_t SubscriberList::expire(TimePoint now) {
  size_t n = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.expires <= now) {
      count(it->second, -1);
      it = entries_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

}  // namespace storjnet::pubsub
