#include "dht/vote.h"

#include <algorithm>
#include <unordered_set>

#include "dht/value_store.h"

namespace storjnet::dht {

std::vector<OwnedValue> tally(const std::vector<FoundValue>& found, const std::optional<StoredValue>& local) {
  std::vector<std::pair<StoredValue, size_t>> owners;  // best value per owner, holders
  auto count = [&](const StoredValue& v) {
    auto it = std::find_if(owners.begin(), owners.end(), [&](auto& o) { return o.first.owner == v.owner; });
    if (it == owners.end()) return owners.emplace_back(v, 1), void();
    ++it->second;
    if (ValueStore::newer(v, it->first)) it->first = v;
  };
  for (auto& f : found) count(f.value);
  if (local) count(*local);
  // The owner a self-named key names comes first, however few hold it: the others are squatters.
  auto named = std::stable_partition(owners.begin(), owners.end(),
                                     [](const auto& o) { return o.first.key == self_named_key(o.first.owner); });
  std::vector<OwnedValue> out;
  for (auto& [v, n] : owners) out.push_back({v.value, v.owner, v.publisher(), v.version, n});
  auto by_votes = [](const OwnedValue& a, const OwnedValue& b) {
    if (a.holders != b.holders) return a.holders > b.holders;
    if (a.version != b.version) return a.version > b.version;
    return a.owner < b.owner;
  };
  std::sort(out.begin() + (named - owners.begin()), out.end(), by_votes);
  return out;
}

std::vector<FoundValue> voters(const LookupResult& res) {
  std::unordered_set<NodeId> near;
  for (const auto& c : res.closest) near.insert(c.id);
  std::vector<FoundValue> out;
  for (const auto& f : res.values)
    if (near.count(f.from.id)) out.push_back(f);
  return out.empty() ? res.values : out;
}

}  // namespace storjnet::dht
