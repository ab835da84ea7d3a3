// Reassembler: rebuilds messages from authenticated fragments, within bounds on memory and time, shared
// fairly across senders and their networks.
//
// Shape: every fragment but the last (index count - 1) carries exactly kMaxChunk bytes, as encode_frames
// cuts them; a shorter one is refused (kShortFragment). So a message's size is fixed by its count and last
// fragment, and a count too large for max_message is refused at its first fragment.
//
// Bounds (ReassemblyLimits): a message may not exceed max_message bytes; one peer (node id) may hold at most
// max_per_peer bytes of partial messages, one network (Endpoint::prefix(): IPv4 /24, IPv6 /48, of the
// address the message's first fragment came from) at most max_per_prefix, the node max_total. A fragment
// that would break the message, peer or prefix bound is refused (kOverLimit) and its partial message is
// dropped, so a peer cannot pin memory. When only the total is full, room is made fairly: partial messages
// of the prefix holding the most are evicted (oldest first, counted as reassembly_evicted) as long as that
// prefix would still hold more than the fragment's own; otherwise the fragment is refused. So many keys from
// one network cannot lock everyone else out. A partial message is dropped timeout after its first fragment.
// Duplicate fragments are ignored.
//
// max_message counts payload bytes. The peer, prefix and total bounds count each stored fragment as at
// least kMinFragmentCharge bytes (its bookkeeping), so tiny fragments cannot hold more memory than the
// bounds say. Memory for a partial message grows with the fragments received, not its announced count.
#pragma once
#include <cstdint>
#include <list>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storjnet/bytes.h"
#include "storjnet/config.h"
#include "storjnet/endpoint.h"
#include "storjnet/environment.h"
#include "storjnet/node_id.h"
#include "wire/drop_reason.h"

namespace storjnet::wire {

class Reassembler {
 public:
  enum class Result { kIncomplete, kComplete, kDuplicate, kInvalid, kOverLimit, kShortFragment };
  // Per-fragment floor of the per-peer, per-prefix and total accounting (covers a fragment's map node and
  // buffer).
  static constexpr size_t kMinFragmentCharge = 256;

  explicit Reassembler(ReassemblyLimits limits = {}) : limits_(limits) {}

  // Adds fragment `index` of `count` of message `msg_id` from `peer`, whose datagram came from `from`. On
  // kComplete, `out` holds the message. Partial messages of others evicted to make room are counted in
  // `drops` (reassembly_evicted); this fragment's own fate is the result.
  Result add(const NodeId& peer, const Endpoint& from, uint32_t msg_id, uint16_t index, uint16_t count,
             ByteView chunk, TimePoint now, Bytes& out, DropCounters& drops);
  // Drops partial messages older than the timeout; returns how many were dropped.
  size_t expire(TimePoint now);

  // Bytes charged against max_total (payload, each fragment counted as at least kMinFragmentCharge).
  size_t bytes_in_use() const { return total_; }
  // Bytes charged against `peer`'s max_per_peer.
  size_t peer_bytes(const NodeId& peer) const {
    auto it = per_peer_.find(peer);
    return it == per_peer_.end() ? 0 : it->second;
  }
  // Bytes charged against the max_per_prefix of `p`'s network.
  size_t prefix_bytes(const Endpoint::Prefix& p) const {
    auto it = per_prefix_.find(p);
    return it == per_prefix_.end() ? 0 : it->second.bytes;
  }
  size_t partial_messages() const { return partials_.size(); }
  bool empty() const { return partials_.empty(); }

 private:
  struct Key {
    NodeId peer;
    uint32_t msg_id;
    bool operator==(const Key&) const = default;
  };
  // Keyed (keyed_hash.h): peers choose both ids and msg_ids.
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      uint8_t b[NodeId::kSize + 4];
      std::memcpy(b, k.peer.bytes().data(), NodeId::kSize);
      std::memcpy(b + NodeId::kSize, &k.msg_id, 4);
      return keyed_hash(b, sizeof b);
    }
  };
  struct PrefixUse {
    size_t bytes = 0;
    std::list<Key> partials;  // oldest first: eviction order
  };
  struct Partial {
    TimePoint started;
    uint16_t count = 0;
    size_t bytes = 0;    // payload bytes received (checked against max_message)
    size_t charged = 0;  // bytes charged against the per-peer, per-prefix and total bounds
    Endpoint::Prefix prefix;
    std::list<Key>::iterator in_prefix;  // its entry in per_prefix_[prefix].partials
    std::map<uint16_t, Bytes> chunks;    // by index; only the fragments received
  };
  using Partials = std::unordered_map<Key, Partial, KeyHash>;
  void erase(Partials::iterator it);
  void charge(Partial& p, const NodeId& peer, size_t n);
  // Evicts from the largest prefix until `charge` more bytes fit the total; false when the fragment's own
  // prefix is (or would become) the largest, so it must be refused instead.
  bool make_room(const Endpoint::Prefix& mine, size_t charge, DropCounters& drops);
  void set_prefix_bytes(const Endpoint::Prefix& p, PrefixUse& use, size_t bytes);

  ReassemblyLimits limits_;
  Partials partials_;
  std::unordered_map<NodeId, size_t> per_peer_;
  std::unordered_map<Endpoint::Prefix, PrefixUse> per_prefix_;
  std::set<std::pair<size_t, Endpoint::Prefix>> by_prefix_bytes_;  // largest last
  size_t total_ = 0;
};

}  // namespace storjnet::wire
