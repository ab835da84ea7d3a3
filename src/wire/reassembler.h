// Reassembler: rebuilds messages from authenticated fragments, within bounds on memory and time.
//
// Bounds (all configurable): a message may not exceed max_message bytes; one peer may hold at most
// max_per_peer bytes of partial messages and the node max_total; a partial message is dropped timeout after
// its first fragment. Fragments that would break a bound are refused (kOverLimit) and the partial message
// they belong to is dropped, so a peer cannot pin memory. Duplicate fragments are ignored.
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

  explicit Reassembler(ReassemblyLimits limits = {}) : limits_(limits) {}

  // Adds fragment `index` of `count` of message `msg_id` from `peer`. On kComplete, `out` holds the message.
  Result add(const NodeId& peer, uint32_t msg_id, uint16_t index, uint16_t count, ByteView chunk,
             TimePoint now, Bytes& out);
  // Drops partial messages older than the timeout; returns how many were dropped.
  size_t expire(TimePoint now);

  size_t bytes_in_use() const { return total_; }
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
    uint16_t count = 0, received = 0;
    size_t bytes = 0;
    std::vector<Bytes> chunks;
  };
  void erase(std::unordered_map<Key, Partial, KeyHash>::iterator it);

  ReassemblyLimits limits_;
  std::unordered_map<Key, Partial, KeyHash> partials_;
  std::unordered_map<NodeId, size_t> per_peer_;
  size_t total_ = 0;
};

}  // namespace storjnet::wire
