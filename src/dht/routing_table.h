// RoutingTable: Kademlia k-buckets around our own id.
//
// Bucket i holds contacts sharing exactly i leading bits with us (i in [0, 160)), at most k each, ordered
// least recently seen first. Only contacts that proved their key (an authenticated message from them) are
// added. When a bucket is full the newcomer waits in a small replacement cache; if the least recently seen
// entry has gone quiet, it is pinged and the newcomer replaces it only if the ping fails (as BEP 5: entries
// heard from recently are good and not pinged). Contacts whose requests keep timing out are evicted and
// replaced from the cache.
//
// Confirmation (dial-back, docs/protocol.md 5.1): entries enter unconfirmed; set_confirmed() marks one that
// strangers can reach. closest_answer() hands out confirmed entries, unconfirmed ones only to fill what the
// confirmed cannot. An entry that moves to another address is unconfirmed again. A contact heard from at an
// address of the other family than its entry's keeps its endpoint and gets that address as its alt (dual-stack
// nodes: docs/protocol.md 5, "Addresses"); address blocks and confirmation are those of the endpoint.
//
// Admission (Sybil resistance, docs/protocol.md section 5): a contact enters (or waits in a replacement cache)
// only if its id solves the network's id puzzle, and only while its address block (a public IPv4 /24 or IPv6
// /48, Endpoint::prefix()) holds fewer than `per_prefix_bucket` contacts of its bucket and `per_prefix_table`
// of the whole table, so one machine or subnet cannot fill a bucket or the table. Private and loopback
// addresses are not limited: they are not reachable from the public internet, and local test networks and the
// simulator put every node in one block.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/environment.h"

namespace storjnet::dht {

class RoutingTable {
 public:
  struct Entry {  // 112 bytes: the small fields fill the contact's padding (a node holds ~180 of these)
    Contact contact;
    uint8_t failures = 0;    // timeouts in a row (capped at 255)
    bool confirmed = false;  // a stranger's probe reached it (dial-back)
    TimePoint last_seen{};
    TimePoint checked{};  // when it entered or was last given to a dial-back check
  };
  // kRefusedPuzzle / kRefusedPrefix: not admitted (see above); a known contact that moved to a block over its
  // limit is removed and reported kRefusedPrefix.
  enum class Seen { kAdded, kUpdated, kFull, kIgnored, kRefusedPuzzle, kRefusedPrefix };
  static constexpr size_t kBuckets = 160;
  static constexpr size_t kReplacements = 8;
  struct Admission {
    uint32_t network_id = 0;
    int puzzle_bits = 0;                 // id puzzle difficulty (0: every id)
    size_t per_prefix_bucket = SIZE_MAX; // contacts of one public address block per bucket
    size_t per_prefix_table = SIZE_MAX;  // contacts of one public address block in the table
  };

  RoutingTable(const NodeId& self, size_t k) : self_(self), k_(k) {}
  RoutingTable(const NodeId& self, size_t k, const Admission& admission) : self_(self), k_(k), adm_(admission) {}

  // A contact proved alive (authenticated message). kFull: bucket full, newcomer cached; ping oldest_in_bucket_of.
  Seen seen(const Contact& c, TimePoint now);
  // The least recently seen contact of the bucket `id` falls in, if it was last seen before `quiet_since`
  // (nullopt when the bucket is empty or that contact was heard from since).
  std::optional<Contact> oldest_in_bucket_of(const NodeId& id, TimePoint quiet_since = TimePoint::max()) const;
  // An RPC to `id` timed out. Returns true when the contact was evicted (after max_failures in a row).
  bool failed(const NodeId& id, int max_failures);
  // Removes `id`, promoting the newest replacement of its bucket.
  void remove(const NodeId& id);

  std::optional<Contact> find(const NodeId& id) const;
  // Up to n contacts closest to target (XOR), closest first.
  std::vector<Contact> closest(const NodeId& target, size_t n) const;
  // Up to n contacts for an answer to a peer: the n closest confirmed ones, or, when fewer than n are
  // confirmed in the whole table, all confirmed ones and the closest unconfirmed ones; closest first.
  std::vector<Contact> closest_answer(const NodeId& target, size_t n) const;
  // Marks `id` confirmed; true when it was an unconfirmed entry.
  bool set_confirmed(const NodeId& id);
  bool confirmed(const NodeId& id) const;
  size_t confirmed_count() const { return confirmed_; }
  // Timeouts in a row of `id`'s entry (0 when absent).
  int failures(const NodeId& id) const;
  // Up to n unconfirmed entries last checked before `before`; marks them checked at `now`.
  std::vector<Contact> due_for_check(TimePoint before, TimePoint now, size_t n);
  std::vector<Contact> all() const;
  size_t size() const { return size_; }
  int bucket_of(const NodeId& id) const;
  const std::vector<Entry>& bucket(size_t i) const { return i < buckets_.size() ? buckets_[i].entries : kEmpty; }
  TimePoint last_refresh(size_t i) const { return i < buckets_.size() ? buckets_[i].refreshed : TimePoint{}; }
  void mark_refreshed(size_t i, TimePoint now) { at(i).refreshed = now; }
  // Deepest non-empty bucket index, or -1.
  int deepest_bucket() const;
  // Whether `c`'s id solves the network's id puzzle (no hashing when puzzle_bits is 0).
  bool puzzle_ok(const Contact& c) const;
  // Why a new contact `c` would be refused (kRefusedPuzzle, kRefusedPrefix), or nullopt if the table would take
  // it (added, or waiting for room): lets a caller skip work, such as a verifying ping, for a refused contact.
  std::optional<Seen> refusal(const Contact& c) const;
  // Contacts of the table in `ep`'s address block (0 for private and loopback addresses: not counted).
  size_t in_prefix(const Endpoint& ep) const;

 private:
  struct Bucket {
    std::vector<Entry> entries;          // least recently seen first
    std::vector<Contact> replacements;   // newest last (a deque would allocate 512 B per empty bucket)
    TimePoint refreshed{};
  };
  // Buckets exist up to the deepest one used: in a network of N nodes only about log2(N) are ever filled.
  Bucket& at(size_t i) {
    if (i >= buckets_.size()) buckets_.resize(i + 1);
    return buckets_[i];
  }
  // The address block an endpoint is charged to; nullopt for private and loopback addresses (not limited).
  static std::optional<Endpoint::Prefix> limited_prefix(const Endpoint& ep);
  // Whether one more contact at `ep` fits the block limits of bucket `bk` (ignoring entry `except`).
  bool prefix_fits(const Bucket& bk, const Endpoint& ep, const NodeId* except) const;
  void count_prefix(const Endpoint& ep, int delta);
  static inline const std::vector<Entry> kEmpty{};
  NodeId self_;
  size_t k_;
  Admission adm_;
  std::vector<Bucket> buckets_;
  size_t size_ = 0;
  size_t confirmed_ = 0;
  std::unordered_map<Endpoint::Prefix, size_t> per_prefix_;  // public address blocks -> contacts in the table
};

}  // namespace storjnet::dht
