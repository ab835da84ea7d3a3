// evict_oldest_eighth: the one eviction every bounded per-peer table of the engine uses (sessions, dormant
// session floors, AddressGuard's unproven and proven pairs).
#pragma once
#include <algorithm>
#include <iterator>
#include <vector>

#include "storjnet/environment.h"

namespace storjnet {

// Erases the least recently used eighth of `map` (at least one entry) in one pass: amortised O(1) per insert.
// `age(value)` is an entry's last use; `erase(it)` erases one entry. Erasing must leave the other entries'
// iterators valid (node maps, and absl's flat maps, which move nothing on erase).
template <class Map, class Age, class Erase>
void evict_oldest_eighth(Map& map, Age age, Erase erase) {
  if (map.empty()) return;
  std::vector<TimePoint> ages;
  ages.reserve(map.size());
  for (auto& kv : map) ages.push_back(age(kv.second));
  size_t n = std::max<size_t>(1, ages.size() / 8);
  std::nth_element(ages.begin(), ages.begin() + static_cast<long>(n - 1), ages.end());
  TimePoint cutoff = ages[n - 1];
  for (auto it = map.begin(); it != map.end() && n > 0;) {
    if (age(it->second) <= cutoff) {
      auto next = std::next(it);
      erase(it);
      it = next;
      --n;
    } else {
      ++it;
    }
  }
}

}  // namespace storjnet
