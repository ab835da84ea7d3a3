#include "dht/value_store.h"

#include <sodium.h>

#include <vector>

namespace storjnet::dht {

namespace {
template <class Map, class Key>
void subtract(Map& m, const Key& k, size_t n) {
  auto it = m.find(k);
  if (it == m.end()) return;
  it->second -= std::min(it->second, n);
  if (it->second == 0) m.erase(it);
}
}  // namespace

std::string self_named_user_key(const NodeId& id) { return "storjnet-relay/" + id.hex(); }

NodeId self_named_key(const PublicKey& owner) { return dht_key(self_named_user_key(Identity::id_of(owner))); }

ValueStore::Claim ValueStore::claim(const StoredValue& v, const StoredValue& held) {
  if (held.owner == v.owner) return Claim::kOwner;
  if (v.key == self_named_key(v.owner)) return Claim::kReclaim;  // held's owner's name hashes elsewhere
  return held.key == self_named_key(held.owner) ? Claim::kSquat : Claim::kOther;
}

bool ValueStore::newer(const StoredValue& a, const StoredValue& b) {
  if (a.version != b.version) return a.version > b.version;
  std::array<uint8_t, 32> ha, hb;
  crypto_generichash(ha.data(), ha.size(), a.value.data(), a.value.size(), nullptr, 0);
  crypto_generichash(hb.data(), hb.size(), b.value.data(), b.value.size(), nullptr, 0);
  return ha > hb;
}

void ValueStore::charge(const NodeId& key, const Charge& c) {
  release(key);
  per_peer_bytes_[c.peer] += c.bytes;
  if (c.prefix) per_prefix_bytes_[*c.prefix] += c.bytes;
  charged_[key] = c;
}

void ValueStore::release(const NodeId& key) {
  auto it = charged_.find(key);
  if (it == charged_.end()) return;
  subtract(per_peer_bytes_, it->second.peer, it->second.bytes);
  if (it->second.prefix) subtract(per_prefix_bytes_, *it->second.prefix, it->second.bytes);
  charged_.erase(it);
}

ValueStore::Result ValueStore::store(const StoredValue& v, const NodeId& peer, std::optional<Endpoint::Prefix> prefix) {
  if (v.value.size() > kMaxValueSize) return Result::kTooLarge;
  auto held = storage_.get(v.key);
  const Claim c = held ? claim(v, *held) : Claim::kOwner;
  if (c == Claim::kSquat) return Result::kSquatRefused;
  if (c == Claim::kOther) return Result::kOtherOwner;
  if (held && c == Claim::kOwner) {
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
  size_t new_count = storage_.count() + (held ? 0 : 1);
  size_t new_bytes = storage_.bytes() - (held ? held->value.size() : 0) + v.value.size();
  if (new_count > config_.max_values || new_bytes + new_count * config_.min_value_charge > config_.max_bytes)
    return Result::kFull;
  size_t cost = charge_of(v);
  if (!v.original) {
    // What this sender already pays for this key is replaced, not added.
    auto ch = charged_.find(v.key);
    size_t peer_old = ch != charged_.end() && ch->second.peer == peer ? ch->second.bytes : 0;
    size_t prefix_old = ch != charged_.end() && ch->second.prefix == prefix ? ch->second.bytes : 0;
    if (used_by(per_peer_bytes_, peer) - peer_old + cost > config_.max_bytes_per_publisher) return Result::kQuota;
    if (prefix) {
      auto pp = per_prefix_bytes_.find(*prefix);
      size_t prefix_used = pp == per_prefix_bytes_.end() ? 0 : pp->second;
      if (prefix_used - prefix_old + cost > config_.max_bytes_per_prefix) return Result::kPrefixQuota;
    }
  }
  if (!storage_.put(v)) return Result::kWriteFailed;
  if (v.original) release(v.key);
  else charge(v.key, Charge{peer, prefix, cost});
  return c == Claim::kReclaim ? Result::kReclaimed : Result::kStored;
}

size_t ValueStore::used_by(const std::unordered_map<NodeId, size_t>& m, const NodeId& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

size_t ValueStore::expire(uint64_t now_us) {
  uint64_t life = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(config_.expire_after).count());
  std::vector<NodeId> dead;
  storage_.for_each([&](const StoredValue& v) {
    if (v.version + life < now_us) dead.push_back(v.key);
  });
  for (auto& k : dead) erase(k);
  return dead.size();
}

}  // namespace storjnet::dht
