// ValueStore: the DHT values this node holds, over a DhtStorage, with ownership, the storage budgets and
// the rule that decides which of two values of one owner is newer.
//
// Ownership: while a value lives, only its owner (the same Ed25519 key) may replace it; a value signed by
// another key for a held key is refused (kOtherOwner), never kept beside it. Expiry frees the key.
// Self-named keys are the exception: the key self_named_key(owner) (a node's relay list, "storjnet-relay/" +
// hex(its id)) belongs to that owner from the start. Its value replaces another owner's held there (kReclaimed:
// a squatter's, who could never hold it rightfully), and no other owner's value displaces it (kSquatRefused).
// The storing node cannot tell whose name a key is, but it can compute the arriving value's owner's own key.
// Newer (same owner): larger version; on equal versions, the larger BLAKE2b-256 of the value bytes. Every
// replica applies the same rule, so they converge.
// Budgets, all in charged bytes (value size + DhtConfig::min_value_charge, so empty values are not free):
// total count and bytes, bytes per storing peer (the authenticated sender of the store) and per storing
// peer's public address block (Endpoint::prefix(): IPv4 /24, IPv6 /48). The node's own puts are not charged to any peer.
// Signatures are not checked here (dht/signed_value.h): callers verify before storing.
// A failed storage write (disk full, I/O error) is kWriteFailed: nothing changed, and the caller answers
// with an error.
#pragma once
#include <optional>
#include <string>
#include <unordered_map>

#include "storjnet/dht.h"
#include "storjnet/dht_storage.h"
#include "storjnet/endpoint.h"

namespace storjnet::dht {

// The user key named after node `id` ("storjnet-relay/" + hex(id): its relay list, src/dht/relay.h), and its DHT
// key for the owner whose node id it names: that key belongs to `owner` (docs/protocol.md 5, "Ownership").
std::string self_named_user_key(const NodeId& id);
NodeId self_named_key(const PublicKey& owner);

class ValueStore {
 public:
  // kReclaimed: stored over another owner's value under v's owner's self-named key (counted as kStored);
  // kSquatRefused: refused as kOtherOwner, the key being the held value's owner's self-named key.
  enum class Result {
    kStored, kReclaimed, kSame, kHeldNewer, kOtherOwner, kSquatRefused, kTooLarge, kFull, kQuota, kPrefixQuota,
    kWriteFailed
  };
  // Who may write `v` over `held`: its own owner (the version rule decides), the owner of the key's name over
  // anyone else (kReclaim), or no other owner (kSquat: the key is held's owner's name; kOther: first come).
  enum class Claim { kOwner, kReclaim, kSquat, kOther };
  static Claim claim(const StoredValue& v, const StoredValue& held);
  static bool may_replace(const StoredValue& v, const StoredValue& held) {
    auto c = claim(v, held);
    return c == Claim::kOwner || c == Claim::kReclaim;
  }

  ValueStore(DhtStorage& storage, const DhtConfig& config) : storage_(storage), config_(config) {}

  // Stores `v` received from `peer` at address block `prefix` (nullopt: not charged to a block; the DHT passes
  // nullopt for private and loopback senders, as the routing table does not limit them either). Our own puts
  // have v.original set and are not charged.
  // kStored, kReclaimed and kSame count as acknowledged; kWriteFailed: the backend failed to write, nothing changed.
  Result store(const StoredValue& v, const NodeId& peer, std::optional<Endpoint::Prefix> prefix = std::nullopt);
  std::optional<StoredValue> get(const NodeId& key) { return storage_.get(key); }
  void erase(const NodeId& key) {
    release(key);
    storage_.erase(key);
  }
  // Drops values whose version is older than expire_after at `now_us`; returns how many.
  size_t expire(uint64_t now_us);
  size_t count() { return storage_.count(); }
  size_t bytes() { return storage_.bytes(); }
  size_t charge_of(const StoredValue& v) const { return v.value.size() + config_.min_value_charge; }

  // True when a is newer than b (meaningful for values of one owner).
  static bool newer(const StoredValue& a, const StoredValue& b);

 private:
  struct Charge {
    NodeId peer;
    std::optional<Endpoint::Prefix> prefix;
    size_t bytes = 0;
  };
  static size_t used_by(const std::unordered_map<NodeId, size_t>& m, const NodeId& k);
  void charge(const NodeId& key, const Charge& c);
  void release(const NodeId& key);

  DhtStorage& storage_;
  const DhtConfig& config_;
  std::unordered_map<NodeId, size_t> per_peer_bytes_;
  std::unordered_map<Endpoint::Prefix, size_t> per_prefix_bytes_;
  std::unordered_map<NodeId, Charge> charged_;  // key -> who pays for it
};

}  // namespace storjnet::dht
