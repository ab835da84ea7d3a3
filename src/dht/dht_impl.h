// Dht::Impl: the DHT's state and protocol logic behind the public Dht (include/storjnet/dht.h). Internal to
// src/dht, one file per part:
//   dht_impl.cc        construction, and the answers to find_node, find_value and store;
//   dht_upkeep.cc      the routing table's upkeep: admitting contacts, evicting, refreshing, maintenance;
//   dht_operations.cc  lookups, stores, puts, gets, finding a node;
//   dht.cc             the public operations on top.
#pragma once
#include "storjnet/dht.h"

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "dht/address_check.h"
#include "dht/codec.h"
#include "dht/dial_back.h"
#include "dht/newcomer_check.h"
#include "dht/punch.h"
#include "dht/relay.h"
#include "dht/lookup.h"
#include "dht/birthday.h"
#include "dht/nat_view.h"
#include "dht/neighbourhood_cache.h"
#include "dht/placement_cache.h"
#include "dht/routing_table.h"
#include "dht/signed_value.h"
#include "dht/store_rate.h"
#include "dht/store_run.h"
#include "dht/vote.h"
#include "dht/value_store.h"
#include "engine/engine.h"

namespace storjnet {

namespace dht {
inline constexpr size_t kRecentLookups = 1024;
inline constexpr auto kSnapshotEvery = std::chrono::minutes(5);
inline constexpr auto kPutRetryDelay = std::chrono::milliseconds(500);
inline constexpr auto kRecheckAfter = std::chrono::minutes(10);

inline uint64_t to_us(Duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

// How Impl::lookup runs a lookup beyond its target. must_query: contacts asked whatever their distance;
// seeds: how many of the table's closest contacts to start from (0: k); paths: disjoint paths; settle: end
// once the paths agree (LookupParams); owner (value lookups): only values signed by this node id count, a
// node answering with anyone else's answers as if it held none; on_named: see LookupParams.
struct LookupOptions {
  std::vector<Contact> must_query = {};
  size_t seeds = 0;
  size_t paths = 1;
  bool settle = true;
  std::optional<NodeId> owner = std::nullopt;
  std::function<void(const Contact&)> on_named = {};
  std::function<bool()> enough = {};  // LookupParams::enough
  // A put's lookup: find_node with kFindNodePlacement, LookupParams::path_answers and ::placement.
  bool placement = false;
  size_t path_answers = 0;
  bool release_slow = false;  // LookupParams::release_slow (a join's look at its own id)
  std::vector<std::pair<Contact, std::vector<Contact>>> answered = {};  // LookupParams::answered (a join's probes)
};

// A put's lookup: each path finishes once its closest kPutPathAnswers candidates answered (docs/protocol.md 5,
// "Operations"); placement answers name the key's neighbourhood whatever its dial-back confirmation.
inline constexpr size_t kPutPathAnswers = 2;
}  // namespace dht

using namespace dht;

struct Dht::Impl {
  Engine& engine;
  DhtConfig cfg;
  std::unique_ptr<DhtStorage> storage;
  RoutingTable table;
  ValueStore values;
  StoreRate store_rate;
  PlacementCache placements;  // where our recent puts stored (DhtConfig::placement_reuse)
  NeighbourhoodCache neighbourhoods;  // the id regions our recent puts' lookups found whole (neighbourhood_reuse)
  DhtStats stats;
  std::deque<LookupStats> recent;
  std::unordered_map<int, bool> pinging;              // buckets with a liveness ping in flight
  std::unordered_map<NodeId, TimePoint> republish_at;  // held keys -> next holder republish
  std::unordered_map<NodeId, StoredValue> originals;   // values we published (re-put every original_republish)
  // Evicted contacts, probed now and then with backoff: a healed partition or a restarted peer comes back.
  struct Grave {
    Contact contact;
    TimePoint next_probe{};
    Duration backoff{};
  };
  std::vector<Grave> graveyard;
  static constexpr size_t kGraveyard = 64;
  TimerId maintenance;
  TimePoint last_snapshot{};
  NewcomerCheck newcomers;  // request senders pinged before they enter the table
  AddressCheck addresses;   // second addresses (dual-stack) pinged before they enter the table
  std::unique_ptr<DialBack> dial_back;  // nullptr when cfg.dial_back is off
  std::unique_ptr<NatView> nat_view;    // nullptr when cfg.nat_view is off
  std::unique_ptr<Punch> punch;         // nullptr when cfg.punch is off
  std::unique_ptr<Relay> relay;         // nullptr when cfg.relay is off (made by Dht::Dht: it puts and gets)
  std::unique_ptr<Birthday> upgrade;    // nullptr unless cfg.upgrade, cfg.punch and cfg.relay are on
  // Every RPC, timer and continuation of the DHT (Engine::Scope): ended first when the Dht is destroyed.
  Engine::Scope scope;

  Impl(Engine& e, DhtConfig c, std::unique_ptr<DhtStorage> s);
  ~Impl();

  uint32_t network() const { return engine.config().network_id; }

  // A value from the network we may keep or return: signed by its owner. (Storing nodes also bound its
  // version by their clock; a getter does not, or a getter whose clock runs slow would refuse every fresh value.)
  bool acceptable(const StoredValue& v);

  Duration jittered(Duration d) {
    // +-10%: holders of the same value do not republish in lockstep.
    auto span = d.count() / 5;
    return Duration(d.count() - span / 2 + (span > 0 ? static_cast<int64_t>(engine.env().random_below(span)) : 0));
  }

  // ------------------------------------------------------------ contact admission (Sybil resistance)

  static RoutingTable::Admission admission(const DhtConfig& c, uint32_t network_id) {
    return {network_id, c.id_puzzle_bits, c.max_per_prefix_bucket, c.max_per_prefix_table};
  }

  // Contacts learned from a peer's answer for `target`: those whose id fails the puzzle are dropped (and
  // counted); the rest turned towards a family this node sends on, and those with none dropped unless they are
  // the target (a relay may reach it: docs/protocol.md 5.3); second addresses of held entries checked.
  void admit_learned(std::vector<Contact>& contacts, const NodeId& target);

  // ------------------------------------------------------------ routing table upkeep

  void on_contact(const Contact& c, bool answered);
  void count_refusal(RoutingTable::Seen r);

  // Sends a DHT request; a timeout counts against the contact (evicted after max_failures in a row).
  // `on_slow`: RpcOptions::on_slow (the request is overdue: unanswered past the peer's retransmission timeout).
  void rpc(const Contact& to, Method m, Bytes body, std::function<void(std::optional<Bytes>)> cb,
           std::function<void()> on_slow = {});

  Duration maintenance_period() const {
    Duration period = std::min({cfg.republish_interval, cfg.bucket_refresh, cfg.expire_after}) / 8;
    return std::max<Duration>(period, 100ms);
  }

  void evicted(const Contact& c);
  void probe_graveyard();

  // ------------------------------------------------------------ handlers

  // The n contacts an answer for `target` names. With dial-back, confirmed contacts first (docs/protocol.md
  // 5.1); but a contact whose id is the target itself is named whatever its confirmation: the asker wants that
  // very node (to reach it, punching or relaying if need be). With `placement` (a put's find_node, flag
  // kFindNodePlacement), the n closest whatever their confirmation: where the value belongs.
  std::vector<Contact> answer_contacts(const NodeId& target, size_t n, bool placement = false) const;

  // Contacts we may tell `to` about: never private or loopback addresses to a peer on a public address.
  std::vector<Contact> shareable(const NodeId& target, const Contact& to, bool placement = false);

  void on_find_node(const IncomingRequest& q, const Reply& r);
  void on_find_value(const IncomingRequest& q, const Reply& r);
  void on_store(const IncomingRequest& q, const Reply& r);

  // ------------------------------------------------------------ lookups

  // seeds: how many of the table's closest contacts to start from (0: k). A seed that fails is replaced by
  // the next one, so a retry with more seeds gets past a region of the table that is all unreachable.
  // paths: disjoint paths (S/Kademlia). Puts and gets use cfg.disjoint_paths; table upkeep (join, refresh,
  // holder republish) and find use one: they carry no value a liar could hide, and the table's admission
  // rules bound what a liar can insert.
  void lookup(const NodeId& target, bool want_value, bool stop_on_target, std::function<void(LookupResult)> done,
              LookupOptions o = {});

  // How far from a key its holders (its k closest nodes) are expected to be: as far as our k-th closest
  // contact is from us (the network's density seen from here). nullopt while the table holds fewer than k.
  std::optional<NodeId> holder_radius() const;

  // Stores `v` on the first `want` of `targets` (all when 0): first_ack(acks) at the first acknowledgement,
  // all_done(tally) after every store answered or timed out. A store that gets no answer (a timeout or an error
  // reply) is replaced by one to the next of `targets` not yet tried; a `false` answer is not (StoreRun).
  void store_on(const std::vector<Contact>& targets, const StoredValue& v, std::function<void(size_t)> first_ack,
                std::function<void(StoreTally)> all_done, size_t want = 0);
  // kademlia_store of v, answered true (stored), false (refused) or nullopt (no answer).
  StoreFn store_fn(const StoredValue& v);

  // True when a put's lookup shows us among the k closest to key: closer than the k-th placement candidate,
  // or, with fewer than k, when none was lost (a lookup that lost nodes to loss or death proves nothing).
  bool self_among_closest(const NodeId& key, const LookupResult& res) const;

  // ------------------------------------------------------------ maintenance

  void schedule_maintenance();
  void maintain();
  void republish(const NodeId& key);

  // Lookups of a random id in every bucket that holds fewer than join_bucket_fill contacts (3), from bucket 0
  // down to the bucket of our k-th closest contact. The buckets below that one hold only ids nearer to us than
  // our k-th closest: a lookup of our own id has just asked our closest nodes for them, so a refresh there finds
  // nothing new. Each refresh ends once its bucket holds join_bucket_fill: a lookup needs a few contacts in a
  // far bucket, not k, and the nodes whose lookups ask us fill it on (in a network that starts together, most
  // buckets fill that way). Every node a refresh asks holds a session for us: refreshing to k/2 instead of 5
  // cost a fifth of a node's memory and of its join's datagrams, 5 instead of 3 another 13% of the datagrams and
  // 9% of the memory (bench/README.md, "dht: a join refreshes its far buckets to 5 contacts", "... to 3
  // contacts"). The refreshes run one after another (refresh_from), each starting only if its
  // bucket still holds fewer than join_bucket_fill: the refreshes before it and the newcomers that asked us
  // meanwhile often filled it, and a join holds one refresh's shortlist and requests at a time, not five
  // (bench/README.md, "dht: a join's refreshes run one after another").
  void refresh_neighbourhood();
  // Refreshes the first bucket from b to last that holds fewer than fill contacts, then goes on from the next.
  void refresh_from(int b, int last, size_t fill);

  // A lookup of a random id in bucket b's range. If nodes joined together, every contact near that range
  // may share our ignorance of it (all on our side of bit b); so also ask two random contacts from
  // shallower buckets, who sit on the other side of an earlier bit and see the range from outside.
  // fill: the lookup ends once the bucket holds that many (0: a full lookup). done: called when it ended.
  void refresh_bucket(int b, size_t fill = 0, std::function<void()> done = {});

  NodeId random_id_in_bucket(int b);

  // ------------------------------------------------------------ operations

  struct PutState {
    StoredValue value;
    std::function<void(const PutResult&)> cb;
    TimePoint deadline;
    PutResult result;
    size_t local = 0;  // the last attempt kept a copy here (we are among the key's k closest)
    // The last attempt's lookup: its placement and when it ended, remembered once its stores ended cleanly.
    std::vector<Contact> placement;
    bool self_among = false;
    TimePoint looked_up{};
    std::vector<NodeId> slow;  // its candidates still slow at its end (LookupResult::slow)
    std::optional<NeighbourhoodCache::Region> region;  // the id region its lookup found whole, if any
  };

  void put_value(const StoredValue& v, std::function<void(const PutResult&)> cb);

  // One lookup and store round of a put; another after kPutRetryDelay while no replica acknowledged.
  void put_attempt(std::shared_ptr<PutState> st);

  // The stores of an attempt on `targets` (a lookup's placement, or a recent one's), with our own copy when
  // self_among (we are among the key's k closest; a stale copy of ours is dropped otherwise).
  void place_put(const std::shared_ptr<PutState>& st, const std::shared_ptr<StoreRun>& run,
                 std::vector<Contact> targets, bool self_among);

  // Whether our table knows no node nearer `key` than the k-th of `targets` (any node, with fewer than k) that
  // `targets` lacks, not counting entries whose last request timed out (most likely gone: a lookup that asked
  // them left them out of its placement): a recent placement still names the key's neighbourhood as far as we
  // can tell.
  bool placement_current(const NodeId& key, const std::vector<Contact>& targets) const;

  // Answers a put once: ok with `acks` when error is empty.
  void put_done(const std::shared_ptr<PutState>& st, size_t acks, std::string error);

  // The node `id` as it answered a lookup of its id, or nullopt; at most find_timeout. With `named`, if `id`
  // does not answer within one attempt's time (rpc_timeout / rpc_attempts) of the first answer naming it,
  // the contact that answer gave: the caller's own request probes it (a NATed node may not answer strangers,
  // and its contact is still worth a request, which hole punching or a relay may carry, docs/protocol.md
  // 5.2); the lookup goes on to find `id`'s neighbourhood, the punch's rendezvous.
  void find_online(const NodeId& id, std::function<void(std::optional<Contact>)> cb, bool named = false);

  // every_owner: a full lookup (dht_get_all), every owner found; otherwise the lookup settles once its paths
  // agree, and the k closest answering nodes vote.
  // owner: only that publisher's values count (Dht::get with an owner).
  void get_all(const NodeId& key, bool every_owner, std::optional<NodeId> owner,
               std::function<void(GetAllResult, std::optional<StoredValue>)> cb);
};

}  // namespace storjnet
