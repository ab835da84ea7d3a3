// ValueStore: the DHT values this node holds, over a DhtStorage, with the storage bounds and the rule that
// decides which of two values for a key is newer.
//
// Newer: larger version (the publisher's wall clock in us when it (re)published); on equal versions, the
// larger BLAKE2b-256 of the value bytes. Every replica applies the same rule, so they converge.
// Bounds: total count and bytes, and bytes per storing peer (the authenticated sender of the store). Bytes are
// charged as the value's size plus DhtConfig::min_value_charge, so empty values are not free. A failed
// storage write (disk full, I/O error) is kWriteFailed: nothing changed, and the caller answers with an error.
#pragma once
#include <optional>
#include <unordered_map>

#include "storjnet/dht.h"
#include "storjnet/dht_storage.h"

namespace storjnet::dht {

class ValueStore {
 public:
  enum class Result { kStored, kSame, kHeldNewer, kTooLarge, kFull, kQuota, kWriteFailed };

  ValueStore(DhtStorage& storage, const DhtConfig& config) : storage_(storage), config_(config) {}

  // Stores `v` received from `peer` (our own id for local puts). kStored and kSame count as acknowledged.
  Result store(const StoredValue& v, const NodeId& peer);
  std::optional<StoredValue> get(const NodeId& key) { return storage_.get(key); }
  void erase(const NodeId& key) {
    release(key);
    storage_.erase(key);
  }
  // Drops values whose version is older than expire_after at `now_us`; returns how many.
  size_t expire(uint64_t now_us);
  size_t count() { return storage_.count(); }
  size_t bytes() { return storage_.bytes(); }

  // True when a is newer than b.
  static bool newer(const StoredValue& a, const StoredValue& b);

 private:
  size_t charge_of(const StoredValue& v) const { return v.value.size() + config_.min_value_charge; }
  void charge(const NodeId& key, const NodeId& peer, size_t bytes);
  void release(const NodeId& key);

  DhtStorage& storage_;
  const DhtConfig& config_;
  std::unordered_map<NodeId, size_t> per_peer_bytes_;
  std::unordered_map<NodeId, std::pair<NodeId, size_t>> charged_;  // key -> (peer, bytes)
};

}  // namespace storjnet::dht
