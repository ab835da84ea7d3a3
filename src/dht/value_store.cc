#include "dht/value_store.h"

#include <sodium.h>

#include <vector>

namespace storjnet::dht {

bool ValueStore::newer(const StoredValue& a, const StoredValue& b) {
  if (a.version != b.version) return a.version > b.version;
  std::array<uint8_t, 32> ha, hb;
  crypto_generichash(ha.data(), ha.size(), a.value.data(), a.value.size(), nullptr, 0);
  crypto_generichash(hb.data(), hb.size(), b.value.data(), b.value.size(), nullptr, 0);
  return ha > hb;
}

void ValueStore::charge(const NodeId& key, const NodeId& peer, size_t bytes) {
  release(key);
  per_peer_bytes_[peer] += bytes;
  charged_[key] = {peer, bytes};
}

void ValueStore::release(const NodeId& key) {
  auto it = charged_.find(key);
  if (it == charged_.end()) return;
  auto pp = per_peer_bytes_.find(it->second.first);
  if (pp != per_peer_bytes_.end()) {
    pp->second -= std::min(pp->second, it->second.second);
    if (pp->second == 0) per_peer_bytes_.erase(pp);
  }
  charged_.erase(it);
}

ValueStore::Result ValueStore::store(const StoredValue& v, const NodeId& peer) {
  if (v.value.size() > kMaxValueSize) return Result::kTooLarge;
  auto held = storage_.get(v.key);
  if (held) {
    if (held->version == v.version && held->value == v.value) {
      if (v.original && !held->original) {
        StoredValue upd = *held;
        upd.original = true;
        (void)storage_.put(upd);  // only the republish duty is lost if this write fails
      }
      return Result::kSame;
    }
    if (!newer(v, *held)) return Result::kHeldNewer;
  }
  size_t old_bytes = held ? held->value.size() : 0;
  size_t new_count = storage_.count() + (held ? 0 : 1);
  size_t new_bytes = storage_.bytes() - old_bytes + v.value.size();
  if (new_count > config_.max_values || new_bytes + new_count * config_.min_value_charge > config_.max_bytes)
    return Result::kFull;
  bool self = v.original;
  if (!self) {
    auto pp = per_peer_bytes_.find(peer);
    size_t mine = pp == per_peer_bytes_.end() ? 0 : pp->second;
    auto ch = charged_.find(v.key);
    if (ch != charged_.end() && ch->second.first == peer) mine -= std::min(mine, ch->second.second);
    if (mine + charge_of(v) > config_.max_bytes_per_publisher) return Result::kQuota;
  }
  if (!storage_.put(v)) return Result::kWriteFailed;
  if (self) release(v.key);
  else charge(v.key, peer, charge_of(v));
  return Result::kStored;
}

size_t ValueStore::expire(uint64_t now_us) {
  uint64_t life = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(config_.expire_after).count());
  std::vector<NodeId> dead;
  storage_.for_each([&](const StoredValue& v) {
    if (v.version + life < now_us) dead.push_back(v.key);
  });
  for (auto& k : dead) {
    release(k);
    storage_.erase(k);
  }
  return dead.size();
}

}  // namespace storjnet::dht
