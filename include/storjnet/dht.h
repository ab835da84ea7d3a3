// Dht: Kademlia over the engine. 160-bit ids, k-buckets, iterative lookups with alpha requests in flight,
// replicated storage with republish and expiry.
//
// Keys: a user key (any string) maps to the DHT key BLAKE2b-160(key). Values: opaque bytes, at most
// kMaxValueSize, signed by their publisher's Ed25519 key (the owner) over (network id, key, value,
// version). While a value lives (expire_after since its version), only its owner can replace it, with a
// newer version (the owner's wall clock in microseconds, at most max_future_skew ahead of the storing
// node's; on a tie the larger BLAKE2b-256 of the value). A store signed by another key for a held key is
// refused: the first owner keeps the key until its value expires (docs/protocol.md section 5), except under a
// self-named key (a node's relay list, "storjnet-relay/" + hex(its id)), which its named owner always takes.
// Several owners: replicas may disagree (each keeps the first owner it saw). get() asks every node its
// disjoint-path lookup reaches and returns the owner held by the most of them (then the newest version,
// then the smallest key); get_all() returns every owner found; get() with an owner returns only that
// owner's value, whoever else wrote the key.
// All methods run on the node's thread (the driver's thread that hosts this node: RealDriver places each node
// on one io thread; the simulator has one); callbacks run there too, exactly once. A callback may run before
// the call returns when the answer is known at once (no peers or no seeds to ask, a routing-table hit in
// find_contact, put with a value too large); otherwise it runs from a later event. Destroying the Dht (with
// its Node) with operations in flight answers each of them during the destructor with its failure value:
// bootstrap false; find, find_contact, stun nullopt; get and get_all an empty result; closest an empty list;
// put !ok with error "cancelled: the node stopped". Such a callback must not call this Dht.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/dht_storage.h"
#include "storjnet/environment.h"

namespace storjnet {

class Engine;

constexpr size_t kMaxValueSize = 64 * 1024;

struct DhtConfig {
  size_t k = 20;                           // bucket size and replication factor
  size_t alpha = 3;                        // lookup parallelism
  Duration rpc_timeout = 1s;               // per lookup RPC, retries included
  int rpc_attempts = 2;
  int max_failures = 3;                    // consecutive timeouts before a contact is evicted
  Duration bucket_refresh = 1h;            // an idle bucket is refreshed by a lookup of a random id in it
  // A join refreshes each far bucket holding fewer than this many contacts, and that refresh ends once the bucket
  // holds them (at most k; 0: no refreshes at the join). The lookups of other nodes fill the buckets on; each
  // contact more is a session more on both sides (docs/protocol.md 5, "Join"; 5 until 2026-12-06).
  size_t join_bucket_fill = 3;
  Duration quiet_after = 15min;            // a full bucket pings its oldest entry for a newcomer only past this
  // A request sender with an unproven address is pinged before it enters the table this long after its request
  // (0: at once; at once too while its bucket holds fewer than k/2); in the wait our own exchanges with it often
  // prove it (docs/protocol.md 5, Routing table).
  Duration newcomer_wait = 1s;
  Duration republish_interval = 1h;        // holders push what they hold to the current k closest
  Duration original_republish = 24h;       // the publisher puts its own values again
  Duration expire_after = 25h;             // a value not republished for this long is dropped
  Duration find_timeout = 5s;              // dht_find gives up after this
  Duration put_timeout = 10s;              // dht_put retries until a replica acknowledged, then fails
  // A put of a key this node put this recently (and stored cleanly) stores on that put's placement at once,
  // without a lookup, unless our table knows a node nearer the key that the placement lacks (0: always looks up).
  Duration placement_reuse = 1min;
  // A put of another key whose neighbourhood recent puts' lookups found whole (their regions cover the smallest id
  // subtree around the key that holds k + k/4 of their nodes: its stores and their replacements) stores on the
  // key's closest of those nodes at once, without a lookup, under the same rules and for as long (placement_reuse;
  // docs/protocol.md 5, "Operations").
  bool neighbourhood_reuse = true;
  size_t disjoint_paths = 3;               // d: disjoint lookup paths (S/Kademlia), alpha in flight on each
  Duration max_future_skew = 30s;          // versions further ahead of our clock are refused
  size_t max_values = 1'000'000;           // storage bound: count
  size_t max_bytes = 64 * 1024 * 1024;     // storage bound: bytes
  size_t max_bytes_per_publisher = 4 * 1024 * 1024;  // storage bound per storing peer
  size_t max_bytes_per_prefix = 16 * 1024 * 1024;    // storage bound per storing peer's /24 or /48
  size_t min_value_charge = 256;           // bytes charged per stored value on top of its size (bounds above)
  double store_rate = 200;                 // kademlia_store requests/s accepted from one peer (burst 2x; 0: no limit)
  // --- Sybil resistance: who may enter the routing table (docs/protocol.md sections 1.1 and 5) ---
  // Id puzzle: BLAKE2b-160(network id | node id) must start with this many zero bits (Identity::generate
  // solves it). A network parameter: every node of one network id must use the same value; 0 accepts any id.
  // Contacts failing it are refused wherever they are learned (routing table, find_node answers, pubsub).
  int id_puzzle_bits = 0;
  // Contacts of one public address block (IPv4 /24, IPv6 /48) per bucket and in the whole table; private and
  // loopback addresses are not limited.
  size_t max_per_prefix_bucket = 2;
  size_t max_per_prefix_table = 10;
  // --- Reachability (dial-back, docs/protocol.md section 5.1) ---
  // Each node has itself probed by a stranger now and then (a self-check through two helpers) and tells its
  // verdict to the nodes that take it into their tables; find_node/find_value answers hand out the entries
  // whose verdict was "reachable" (unconfirmed only to fill what they cannot). Off: no self-checks, no verdicts
  // asked, no help to others (`unknown method`), answers as before.
  bool dial_back = true;
  double dial_back_rate = 5;         // helper requests/s served per asker, and verdicts/s per asker (burst 2x)
  double dial_back_total_rate = 50;  // helper requests/s served in all (burst the same)
  // --- How the network sees this node (docs/protocol.md section 5.1, "Mapping") ---
  // kademlia_stun asked of three contacts at distinct addresses now and then (every 10 minutes once answered),
  // their answers compared: the public address and whether the NAT maps a port per destination. Off: not asked.
  bool nat_view = true;
  // --- NAT traversal (docs/protocol.md section 5.2): hole punching through a common neighbour, keepalives ---
  // Off: no punches started, none served, no keepalives.
  bool punch = true;
  // While dial-back has not found this node reachable: one keepalive datagram to each of the keepalive_peers
  // contacts closest to its own id, and to each of the keepalive_peers closest confirmed ones (mostly the
  // same), this often (NAT mappings for unanswered UDP live 30 s on Linux). 0: none.
  Duration keepalive_interval = std::chrono::seconds(15);
  size_t keepalive_peers = 4;
  Duration punch_live = std::chrono::seconds(45);  // a rendezvous introduces only targets heard from this recently
  double punch_rate = 10;         // punch asks and introductions served per peer per second (burst 2x)
  double punch_total_rate = 100;  // ... in all (burst the same)
  // Upgrade of a working relayed path to a direct one (docs/protocol.md 5.2, "Upgrade"; src/dht/birthday.h):
  // the NAT mappings of both ends (nat_view) are exchanged over the relay, then a simultaneous punch or, with a
  // symmetric NAT on one side, birthday punching: birthday_ports fresh ports on the symmetric side, and
  // birthday_probes probes with an IP TTL of birthday_ttl (past this node's own router(s), not to the peer)
  // on the other. Needs punch and relay. Off: no upgrade (a relayed path stays until the peer is heard directly).
  bool upgrade = true;
  size_t birthday_ports = 128;
  size_t birthday_probes = 2048;
  uint8_t birthday_ttl = 4;
  // --- Relays (docs/protocol.md section 5.3): sealed datagrams relayed when punching fails ---
  // Off: no relaying for others, no reservations, no fallback to relays.
  bool relay = true;
  size_t relay_reservations = 2;       // reservations a node dial-back has not found reachable keeps
  size_t relay_max_reservations = 64;  // reservations a relay grants at once
  Duration relay_reservation_life = std::chrono::seconds(60);  // renewed every keepalive_interval
  Duration relay_circuit_life = std::chrono::seconds(120);     // a circuit lives this long after its last use
  double relay_pair_rate = 256 * 1024;   // bytes/s relayed per circuit (initiator, target), both ways together
  double relay_pair_burst = 256 * 1024;  // ... burst
  double relay_total_rate = 4 * 1024 * 1024;  // bytes/s a relay relays in all (burst the same)
};

struct LookupStats {
  int rounds = 0;      // longest chain of sequential RPCs
  int rpcs = 0;        // requests sent
  Duration elapsed{};  // from start to completion
};

struct PutResult {
  bool ok = false;
  std::string error;   // set when !ok
  size_t stored_on = 0;  // acknowledgements when answered (the local copy counts, but never alone)
  int attempts = 0;      // attempts made (retries after no acknowledgement); each a lookup, but a reused placement
  LookupStats lookup;    // the last attempt's lookup
  // The first attempt stored on a recent put's placement of the key (DhtConfig::placement_reuse), or of its
  // neighbourhood (DhtConfig::neighbourhood_reuse), without a lookup (`lookup` stays empty then, unless a retry
  // looked up).
  bool placement_reused = false;
};

// One owner's value for a key, as the nodes a lookup reached hold it.
struct OwnedValue {
  Bytes value;
  PublicKey owner{};    // Ed25519 key that signed it
  NodeId owner_id;      // BLAKE2b-160(owner): the publisher's node id
  uint64_t version = 0;
  size_t holders = 0;   // nodes that returned this owner's value (the local copy counts)
};

struct GetResult {
  std::optional<Bytes> value;  // nullopt: no node has it
  std::optional<NodeId> owner; // the publisher's node id, with value
  uint64_t version = 0;
  bool local = false;          // this node holds a copy
  LookupStats lookup;
};

struct GetAllResult {
  std::vector<OwnedValue> values;  // one per owner: most holders first, then newest, then smallest key
  bool local = false;
  LookupStats lookup;
};

// How this node's NAT maps ports, as kademlia_stun answers from several peers show it (src/dht/nat_view.h,
// docs/protocol.md 5.1, "Mapping"): one public port for every destination (independent: no NAT, or a cone or
// port-restricted one), a new one per destination (dependent: symmetric), or not known (unknown).
enum class NatMapping : uint8_t { kUnknown, kIndependent, kDependent };
const char* nat_mapping_name(NatMapping m);  // "unknown", "independent", "dependent"

struct DhtStats {
  uint64_t lookups = 0, lookup_rpcs = 0, puts = 0, gets = 0, gets_found = 0;
  uint64_t lookups_completed = 0;  // lookups finished: the newest that many entries of `recent` (up to its size)
  uint64_t stores_accepted = 0, stores_rejected = 0, contacts_evicted = 0;
  uint64_t stores_rate_limited = 0, storage_write_failures = 0;
  uint64_t verify_pings = 0;   // request senders pinged before entering the routing table
  uint64_t verify_spared = 0;  // ... not pinged: by the end of the wait our own exchange had proven them
  uint64_t verify_asked = 0;   // ... whose answer carried an address challenge: an echo proves them, no ping
  uint64_t contacts_refused_puzzle = 0, contacts_refused_prefix = 0;  // routing table and find_node answers
  // Looks at the own neighbourhood again after a join (docs/protocol.md 5, "Join"): by asking the closest
  // contacts (checks), and by a lookup of the own id (lookups: when a check found news, or the table is short).
  uint64_t rejoin_checks = 0, rejoin_lookups = 0;
  // A join's refreshes of its thin far buckets, one after another (docs/protocol.md 5, "Join"): the runs of them
  // started, and those ended (equal once the join's table is filled as far as its refreshes fill it).
  uint64_t join_refresh_runs = 0, join_refresh_runs_done = 0;
  uint64_t bad_signatures = 0;   // stores and find_value answers whose signature (or version) was invalid
  uint64_t put_retries = 0;      // put attempts repeated because no replica acknowledged
  uint64_t placements_reused = 0;  // puts that stored on a recent put's placement of their key, without a lookup
  uint64_t neighbourhoods_reused = 0;  // puts of other keys that stored on recent puts' regions, without a lookup
  // Self-named keys (a node's relay list; docs/protocol.md 5, "Ownership"): another owner's value held under a
  // key displaced by the value of the owner the key names; stores of another owner refused under such a key.
  uint64_t squats_displaced = 0, squats_refused = 0;
  size_t routing_contacts = 0, stored_values = 0, stored_bytes = 0;
  // Dial-back: reachable = an unsolicited probe (a stranger's) reached this node in the last hour, over IPv4
  // when it has IPv4 (else IPv6); reachable_v4 / reachable_v6: over that family (false: no socket of it).
  bool reachable = false, reachable_v4 = false, reachable_v6 = false;
  size_t routing_confirmed = 0;  // routing-table entries strangers reach
  // Self-check (this node, docs/protocol.md 5.1): rounds run, rounds a stranger's unsolicited probe ended,
  // asks sent to helpers, probes answered. Helper: self-check asks and probe-fors served; refused: every
  // refusal (unproven or over-the-rate askers, unexpected probes, verdict requests); declined: asks answered
  // "not probed" by a node behind a NAT it has not proven crossable (it serves none). Verifier: verdict requests
  // sent (re-asks included), entries confirmed by a "reachable" verdict; verdicts answered to others.
  uint64_t dial_back_self_checks = 0, dial_back_self_checks_ok = 0;
  uint64_t dial_back_asks_sent = 0, dial_back_asks_served = 0, dial_back_asks_refused = 0;
  uint64_t dial_back_asks_declined = 0;
  uint64_t dial_back_probes_answered = 0, dial_back_confirmed = 0;
  uint64_t dial_back_verdicts_asked = 0, dial_back_verdicts_answered = 0;
  uint64_t dial_back_verdicts_heard = 0;  // reachable verdicts carried by find_node answers (kFindNodeVerdict)
  // NAT traversal (src/dht/punch.h): punches this node started (attempts = ok + failed + in progress;
  // no_rendezvous: failed with no rendezvous introducing us), asks it served as a rendezvous, introductions it
  // followed as a target, HOLE datagrams sent, refusals (DropReason::kPunchRefused), keepalives, and peers
  // last reached through a punch of ours.
  uint64_t punch_attempts = 0, punch_ok = 0, punch_failed = 0, punch_no_rendezvous = 0, punch_asks_sent = 0;
  uint64_t punch_lookups = 0;  // lookups of a target run to find its rendezvous (no recent lookup noted)
  uint64_t punch_asks_served = 0, punch_intros_served = 0, punch_holes_sent = 0, punch_refused = 0;
  // Same router (docs/protocol.md 5.2): ASKs carrying our LAN address, INTROs we passed a LAN address on in (as a
  // rendezvous), HOLEs we sent to a LAN address (as a target), and LAN fields refused (either side).
  uint64_t punch_lan_asks_sent = 0, punch_lan_intros_sent = 0, punch_lan_holes_sent = 0, punch_lan_refused = 0;
  uint64_t keepalives_sent = 0, keepalives_received = 0;
  size_t punched_peers = 0;
  // Upgrades of relayed paths (src/dht/birthday.h): SYNCs sent (as the side that chose the relay) and answered,
  // attempts that heard the peer directly, those that did not, and those whose SYNC exchange showed that
  // nothing can connect the pair (futile: both symmetric, or one public address; neither ok nor failed),
  // birthdays run (fresh ports or probes), fresh ports opened, probes sent, refusals (DropReason::kPunchRefused).
  uint64_t upgrade_syncs_sent = 0, upgrade_syncs_served = 0, upgrades_ok = 0, upgrades_failed = 0;
  uint64_t upgrades_futile = 0;
  uint64_t birthdays = 0, birthday_ports = 0, birthday_probes = 0, upgrade_refused = 0;
  // Relays (src/dht/relay.h). As a relay: reservations granted (and held now), datagrams and bytes relayed,
  // open circuits. As a NATed node: reservations held now, made (new) and renewed (a relay's yes to a reservation
  // already held), relay lists published. As an initiator:
  // fallbacks to a relay started, and those that found a relay (a relayed path set). Refusals
  // (DropReason::kRelayRefused) on every side. relayed_out/in: datagrams this node sent through a relay and
  // had delivered by one (the engine's counts).
  uint64_t relay_reservations_granted = 0, relay_forwarded = 0, relay_forwarded_bytes = 0, relay_refused = 0;
  size_t relay_reservations_served = 0, relay_circuits = 0, relay_reservations_held = 0;
  uint64_t relay_reservations_made = 0, relay_lists_published = 0, relay_fallbacks = 0, relay_fallbacks_found = 0;
  uint64_t relayed_out = 0, relayed_in = 0;
  // As a NATed node: reservation renewals left unanswered (the reservation is kept until it lapses); as an
  // initiator: relayed paths moved to the next listed relay because nothing came through the first.
  uint64_t relay_reservations_renewed = 0, relay_renewals_unanswered = 0, relay_paths_switched = 0;
  // Dual-stack (src/dht/address_check.h): pings sent to check a claimed second address, and claims not checked
  // (over the rate or the in-flight bound).
  uint64_t address_checks = 0, address_checks_refused = 0;
  // NatView (docs/protocol.md 5.1, "Mapping"), per family: the mapping, and the public address the stun answers
  // agreed on (port 0 when the mapping is dependent: the address alone); stun asks sent for it.
  NatMapping nat_mapping_v4 = NatMapping::kUnknown, nat_mapping_v6 = NatMapping::kUnknown;
  std::optional<Endpoint> nat_address_v4, nat_address_v6;
  uint64_t nat_stun_asks = 0;
  std::vector<LookupStats> recent;  // the last lookups (bounded), for histograms
};

class Dht {
 public:
  // `storage` keeps values and the routing table; nullptr means in memory.
  Dht(Engine& engine, DhtConfig config, std::unique_ptr<DhtStorage> storage);
  ~Dht();

  // Joins the network through `seeds` (addresses only): learns their keys, then looks up our own id.
  // Also re-contacts the routing table saved in storage, so a restarted node rejoins without seeds. The lookup
  // starts once every seed and saved contact answered, failed or is overdue (a dead one is not waited out), provided
  // one answered. cb(true) once that lookup ended with a peer in the table.
  void bootstrap(const std::vector<Endpoint>& seeds, std::function<void(bool)> cb);

  // dht_put: signs the value with the node's key and stores it on the k closest nodes found over the
  // disjoint paths. ok once a remote node among them acknowledged (the node also keeps a copy when a
  // complete lookup puts it among the k closest, but that copy alone never makes ok). Without an
  // acknowledgement it looks up and stores again until put_timeout, then fails. Fails at once with a
  // clear error when the value is over kMaxValueSize or the replicas hold another owner's value.
  void put(std::string_view key, ByteView value, std::function<void(const PutResult&)> cb);
  // dht_get: a find_value lookup over disjoint paths that collects every node's verified value (the local
  // copy included) and returns the one chosen as in the header comment; nullopt when no node has it.
  // The winner is then cached on the closest node seen that had no value.
  void get(std::string_view key, std::function<void(GetResult)> cb);
  // dht_get with an owner (a publisher's node id): only values that owner signed count; a node answering
  // with anyone else's value counts as holding none. So no number of other publishers or colluding nodes
  // can make it return another value: it returns the owner's newest value found, or nullopt. This is the
  // get to use when the reader knows whose key it reads (docs/protocol.md 10.8).
  void get(std::string_view key, std::optional<NodeId> owner, std::function<void(GetResult)> cb);
  // dht_get_all: the same lookup, every owner's value.
  void get_all(std::string_view key, std::function<void(GetAllResult)> cb);
  // dht_find: the node's address if it answered during the lookup, else nullopt, within find_timeout.
  // With our own id: our external address as stun gives it.
  void find(const NodeId& id, std::function<void(std::optional<Endpoint>)> cb);
  // Like find, but the whole contact (key included): used by messages and streams. With punching on
  // (DhtConfig::punch), a target that did not answer the lookup but that an answer named is returned too: a
  // NATed node does not answer strangers, and the request that follows may get through a punched hole.
  // With relays on (DhtConfig::relay), a target no answer named is reached through the relays it published,
  // when its own key signed the list: the contact returned then has the target's key and a relay's address,
  // and what is sent to it goes through that relay (docs/protocol.md 5.3, "Found by its relay list").
  void find_contact(const NodeId& id, std::function<void(std::optional<Contact>)> cb);
  // dht_stun: our address as a random neighbour sees it (nullopt without neighbours).
  void stun(std::function<void(std::optional<Endpoint>)> cb);
  // dht_peers: the routing table.
  std::vector<Contact> peers() const;
  // How many contacts the routing table holds: peers().size() without copying them.
  size_t peer_count() const;
  // The k closest nodes to `target` that answered a find_node lookup over the disjoint paths, closest first
  // (this node excluded): where a key's replicas live. Pubsub sends registrations and events there.
  void closest(const NodeId& target, std::function<void(std::vector<Contact>)> cb);
  // Up to n contacts from the routing table, closest to target first.
  std::vector<Contact> closest_known(const NodeId& target, size_t n) const;
  // The contacts a find_node answer for `target` hands out (dial_back: confirmed ones first, see DhtConfig).
  std::vector<Contact> handed_out(const NodeId& target) const;
  // Whether the routing-table entry `id` was confirmed reachable by a dial-back.
  bool confirmed(const NodeId& id) const;
  // How this node last reached `id`: true when through a hole it punched (src/dht/punch.h), or one an upgrade
  // of a relayed path punched (either side's, src/dht/birthday.h), false when directly (or not at all, or
  // punching is off).
  bool punched(const NodeId& id) const;
  // ... and whether that punch reached it at its LAN address (two nodes behind one router; protocol.md 5.2).
  bool lan_path(const NodeId& id) const;
  // Every id punched() is true for, whether or not it is in the routing table (bounded: Punch::kMaxPunched plus
  // Birthday::kMaxAttempts).
  std::vector<NodeId> punched_ids() const;
  const NodeId& id() const;
  DhtStats stats() const;
  const DhtConfig& config() const;
  // Flushes storage (values and routing table); called on clean shutdown.
  void flush();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The DHT key of a user key: BLAKE2b-160.
NodeId dht_key(std::string_view user_key);

}  // namespace storjnet
