// Reassembler: rebuilds messages from authenticated fragments, within bounds on memory and time.
//
// Bounds (all configurable): a message may not exceed max_message bytes; one peer may hold at most
// max_per_peer bytes of partial messages and the node max_total; a partial message is dropped timeout after
// its first fragment. Fragments that would break a bound are refused (kOverLimit) and the partial message
// they belong to is dropped, so a peer cannot pin memory. Duplicate fragments are ignored.
//
// max_message counts payload bytes. The per-peer and total bounds count each stored fragment as at least
// kMinFragmentCharge bytes, so that many tiny fragments (each costing bookkeeping memory) cannot hold more
// memory than the bounds say. Memory for a partial message grows with the fragments received, not with its
// announced fragment count.
#pragma once
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "storjnet/bytes.h"
#include "storjnet/config.h"
#include "storjnet/environment.h"
#include "storjnet/node_id.h"

namespace storjnet::wire {

class Reassembler {
 public:
  enum class Result { kIncomplete, kComplete, kDuplicate, kInvalid, kOverLimit };
  // Per-fragment floor of the per-peer and total accounting (covers the map nodes and buffer of a fragment).
  static constexpr size_t kMinFragmentCharge = 256;

  explicit Reassembler(ReassemblyLimits limits = {}) : limits_(limits) {}

  // Adds fragment `index` of `count` of message `msg_id` from `peer`. On kComplete, `out` holds the message.
  Result add(const NodeId& peer, uint32_t msg_id, uint16_t index, uint16_t count, ByteView chunk,
             TimePoint now, Bytes& out);
  // Drops partial messages older than the timeout; returns how many were dropped.
  size_t expire(TimePoint now);

  // Bytes charged against max_total (payload, each fragment counted as at least kMinFragmentCharge).
  size_t bytes_in_use() const { return total_; }
  // Bytes charged against `peer`'s max_per_peer.
  size_t peer_bytes(const NodeId& peer) const {
    auto it = per_peer_.find(peer);
    return it == per_peer_.end() ? 0 : it->second;
  }
  size_t partial_messages() const { return partials_.size(); }
  bool empty() const { return partials_.empty(); }

 private:
  struct Key {
    NodeId peer;
    uint32_t msg_id;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<NodeId>()(k.peer) ^ (size_t(k.msg_id) * 0x9e3779b97f4a7c15ull); }
  };
  struct Partial {
    TimePoint started;
    uint16_t count = 0;
    size_t bytes = 0;    // payload bytes received (checked against max_message)
    size_t charged = 0;  // bytes charged against the per-peer and total bounds
    std::map<uint16_t, Bytes> chunks;  // by index; only the fragments received
  };
  void erase(std::unordered_map<Key, Partial, KeyHash>::iterator it);

  ReassemblyLimits limits_;
  std::unordered_map<Key, Partial, KeyHash> partials_;
  std::unordered_map<NodeId, size_t> per_peer_;
  size_t total_ = 0;
};

}  // namespace storjnet::wire
