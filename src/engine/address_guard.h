// AddressGuard: the anti-amplification rule (QUIC, RFC 9000 §8.1) for one node, per (address, peer key).
//
// A sealed datagram proves its key, not its source address. Until the holder of a key proves it receives at
// an address (it echoes a token we sent there: the random rpc id of a request, or an address challenge), we
// send to that (address, key) at most `factor` times the bytes of the authenticated datagrams that arrived
// from it. Sends that do not fit are held in a bounded queue (per address, per /24 or /48 prefix, in total)
// until the proof arrives, and dropped when it does not come in time. Sends on our own initiative to an
// address we have never heard from are not limited (nothing arrived that could be amplified).
// Both tables are keyed by a pair's 64-bit fingerprint (SipHash under the process's secret key,
// storjnet/keyed_hash.h), not by its 52-byte address and key: a peer cannot aim a collision at a key it does
// not know; a chance one among n pairs has probability about n^2 / 2^65.
// The table of unproven pairs is bounded: when full, the least recently used eighth is evicted. An unproven
// pair idle for kUnprovenIdle with nothing held is forgotten as new pairs come (at most every kUnprovenIdle / 2):
// that never widens a budget (a pair starts again from what arrives next, and its old allowance was at least
// 3x that), so a node costs memory only for the peers of its last minutes, not for every one it ever answered.
// A proven pair is only a fact and a time: it moves out of the table into a set of fingerprints with its last
// use (16 bytes), bounded alike (max_entries, the least recently used eighth evicted). Both are flat tables
// (absl::flat_hash_map: a slot per pair, no heap node).
// Pure bookkeeping: no I/O; the engine sends challenges and flushes what release() returns.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "storjnet/bytes.h"
#include "storjnet/config.h"
#include "storjnet/endpoint.h"
#include "storjnet/environment.h"
#include "storjnet/identity.h"
#include "wire/drop_reason.h"

namespace storjnet {

class AddressGuard {
 public:
  static constexpr size_t kMinHoldCharge = 256;  // bookkeeping cost charged per held message
  static constexpr Duration kUnprovenIdle = std::chrono::minutes(2);

  AddressGuard(AmplificationLimits limits, DropCounters& drops) : limits_(limits), drops_(drops) {}

  // An authenticated datagram of `bytes` arrived from `pk` at `ep`.
  void received(const Endpoint& ep, const PublicKey& pk, size_t bytes, TimePoint now);
  // `pk` proved it receives at `ep`: no limit from now on.
  void prove(const Endpoint& ep, const PublicKey& pk, TimePoint now);
  bool proven(const Endpoint& ep, const PublicKey& pk) const;
  // True when `bytes` may be sent now (and charges them). `initiative`: a request or one-way message of ours,
  // not an answer; it is free towards an address we have never heard from.
  bool allow(const Endpoint& ep, const PublicKey& pk, size_t bytes, bool initiative, TimePoint now);

  // The token of the address challenge for (ep, pk); `fresh` becomes it when none is outstanding.
  uint64_t challenge_token(const Endpoint& ep, const PublicKey& pk, uint64_t fresh, TimePoint now);
  // An echo of `token` came from `pk` at `ep`: true (and proven) when it matches the outstanding challenge.
  bool echo(const Endpoint& ep, const PublicKey& pk, uint64_t token, TimePoint now);

  // Holds a withheld message; false (counted hold_full) when a bound refuses it.
  bool hold(const Endpoint& ep, const PublicKey& pk, Bytes message, TimePoint now);
  // The messages held for (ep, pk), in order, removed from the queue.
  std::vector<Bytes> release(const Endpoint& ep, const PublicKey& pk);
  // Drops held messages older than hold_timeout (counted hold_expired).
  void expire(TimePoint now);

  size_t entries() const { return table_.size() + proven_.size(); }
  size_t held_bytes() const { return held_total_; }
  bool holding() const { return !holding_.empty(); }

 private:
  struct Held {
    Bytes message;
    TimePoint at;
  };
  struct Entry {  // one per (address, key) heard from: kept small (held messages live in holding_)
    uint64_t in = 0, out = 0;  // bytes while unproven
    uint64_t token = 0;        // outstanding address challenge (0: none)
    TimePoint last{};
  };
  struct HeldQueue {
    std::vector<Held> held;
    size_t bytes = 0;  // charged
    Endpoint::Prefix prefix;  // the address block charged (held_per_prefix_)
  };
  // Maps keyed by a fingerprint: it is already a keyed hash, so std::hash (the identity) spreads it, and no
  // hash is cached in the node.
  using HoldMap = std::unordered_map<uint64_t, HeldQueue>;

  Entry& entry(uint64_t fp, TimePoint now);  // an unproven pair's entry (made if missing)
  void evict();
  void forget_idle(TimePoint now);  // unproven pairs idle for kUnprovenIdle with nothing held
  // The pair's keyed hash; the last one is remembered, since handling one datagram asks about its pair
  // several times (received, allow, proven).
  uint64_t fingerprint(const Endpoint& ep, const PublicKey& pk) const;
  // The proven pair's last use, updated to `now`; false when the pair is not proven.
  bool touch_proven(uint64_t fp, TimePoint now);
  void drop_held(HoldMap::iterator q, size_t n);  // first n held messages (the queue is erased when empty)

  AmplificationLimits limits_;
  DropCounters& drops_;
  absl::flat_hash_map<uint64_t, Entry> table_;  // unproven pairs
  TimePoint next_forget_{};                     // when forget_idle runs next
  absl::flat_hash_map<uint64_t, TimePoint> proven_;  // proven pairs: last use
  HoldMap holding_;  // pairs with held messages (each also in table_)
  mutable struct {
    Endpoint ep;
    PublicKey pk{};
    uint64_t fp = 0;
    bool set = false;
  } last_fp_;
  std::unordered_map<Endpoint::Prefix, size_t> held_per_prefix_;
  size_t held_total_ = 0;
};

}  // namespace storjnet
