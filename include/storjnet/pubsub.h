// Pubsub: topic publish/subscribe routed by Quasar (Wong & Guha, IPTPS 2008): attenuated Bloom filters
// exchanged with routing-table neighbours; events follow matching filters, else random walks, bounded by
// a TTL, and are delivered at most once per node.
//
// Quasar alone is probabilistic. The rendezvous improvement (on by default) makes delivery reliable: a
// subscriber also registers at the `holders` nodes closest to the topic key BLAKE2b-160(topic) (found by a
// disjoint-path DHT lookup; `direct`), and a publisher sends each event there too; each holder delivers it
// to the held subscribers it serves for that event (`serving` per subscriber, chosen by a hash of the event
// id among the holders both found). Subscribers deliver each event once whichever path brings it first.
// docs/protocol.md section 8 gives the wire layouts and limits.
//
// Topics are strings up to kMaxTopic bytes; events are JSON values carried as JSON text up to
// kMaxEventJson bytes.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/environment.h"

namespace storjnet {

class Engine;
class Dht;

constexpr size_t kMaxTopic = 256;
constexpr size_t kMaxEventJson = 8 * 1024;

struct PubsubConfig {
  size_t filter_bits = 8192;       // Bloom filter size per level (rounded up to a multiple of 64)
  size_t filter_hashes = 4;        // hash functions
  size_t depth = 3;                // attenuation levels
  int ttl = 64;                    // hops an event may travel (incoming TTLs are clamped to this)
  size_t max_events_per_topic = 8192;
  Duration refresh = 60s;          // filters pushed to neighbours at least this often; registrations renewed
  Duration update_delay = 50ms;    // changes are coalesced for this long before pushing
  // --- Quasar ---
  bool quasar = true;              // route by attenuated filters and random walks
  size_t neighbours = 8;           // routing-table contacts (random, kept while present) we push filters to
  size_t max_in_filters = 64;      // neighbours' filters kept (others dropped and counted)
  size_t max_fanout = 8;           // matching neighbours an event is forwarded to by one node
  size_t max_publishers = 64;      // entries of an event's publishers list (oldest dropped)
  double max_fill = 0.5;           // a filter level with more bits set than this is saturated: no match
  Duration filter_stale = 180s;    // a neighbour's filter not refreshed for this long is dropped
  // --- rendezvous (the improvement) ---
  bool rendezvous = true;          // also send subscriptions and events to the topic key's closest nodes
  size_t replicas = 4;             // greedy: holders of a topic's subscriber list (the closest to the key)
  // How registrations and events reach the holders. true: straight from the subscriber or publisher to the
  // `holders` closest nodes a disjoint-path lookup finds (cached per topic for `refresh`), so a dropper
  // on the way or among the holders loses nothing while one holder is honest. false: greedy routing hop by
  // hop to the closest node, which copies to the others (one dropper on the route loses the message).
  bool direct = true;
  // direct: a subscriber registers at, and a publisher sends each event to, the `holders` closest nodes to
  // the topic key its own lookup finds (at most 32). Each subscriber is served by `serving` of the holders both
  // found, chosen anew for every event by a hash of (event id, subscriber, holder): an attacker that holds h of
  // the holders silences an event for a subscriber only when all `serving` chosen are its own, and each
  // subscriber is sent at most `serving` copies of an event (docs/protocol.md 8.3 and 10.8 give the
  // measured delivery under attack). Fewer than 2 x `serving` holders shared: every shared holder serves.
  size_t holders = 20;
  size_t serving = 8;
  // direct: a subscriber (or publisher) whose lookup found the topic's holders this many times denser near the
  // key than the network's density allows (pubsub/serving.h crowding(): ids placed near the key) names no
  // holders in its registration (or event), so every holder serves it (docs/protocol.md 10.8). 0: never.
  double crowded = 2.0;
  size_t route_candidates = 5;     // next hops tried, closest first, when one does not acknowledge
  Duration route_timeout = 600ms;  // per hop, retries included
  int route_attempts = 2;
  size_t max_held_topics = 100000;         // rendezvous state bound: topics
  size_t max_subscribers_per_topic = 4096; // rendezvous state bound: subscribers per topic (fair across /24s)
  // --- bounds ---
  Duration dedupe_window = 120s;   // event ids remembered for at-most-once delivery
  size_t dedupe_max = 65536;
  Duration maintenance = 1s;       // housekeeping tick while it has work (expiry, neighbours); else per refresh
};

struct PubsubStats {
  // sent / received
  uint64_t updates_sent = 0, updates_in = 0, notifies_sent = 0, notifies_in = 0;
  uint64_t published = 0, delivered = 0, duplicates = 0;
  uint64_t quasar_forwards = 0, walk_forwards = 0, route_forwards = 0, holder_deliveries = 0;
  uint64_t route_terminal = 0, route_hop_failures = 0, registrations_held = 0;
  // direct rendezvous: holder lookups made; registrations and events dropped because 4,096 already waited
  // on lookups (a publisher far faster than lookups of fresh topics)
  uint64_t holder_lookups = 0, holder_waits_refused = 0;
  // direct rendezvous: events also sent along the greedy route because their holders were not known yet
  uint64_t events_routed_ahead = 0;
  // direct rendezvous: held subscribers a holder left to the other holders chosen for an event
  uint64_t serve_skipped = 0;
  // direct rendezvous: registrations and events that asked every holder to serve (the holders found looked
  // crowded near the key)
  uint64_t crowded_registrations = 0, crowded_events = 0;
  // bad input and bounds (each drop reason counted)
  uint64_t malformed = 0, wrong_size_filters = 0, saturated_levels = 0, too_large = 0, bad_event_json = 0;
  uint64_t ttl_clamped = 0, publishers_truncated = 0, fanout_capped = 0, in_filters_rejected = 0;
  uint64_t stale_filters_dropped = 0, queue_overflow = 0, held_rejected = 0, dedupe_evicted = 0;
  uint64_t not_subscribed = 0;
  // Sybil resistance: registrations refused (forged, stale, id puzzle, endpoint not answering), subscribers
  // displaced by the per-block fairness rule, neighbours' filters refused by the id puzzle.
  uint64_t registrations_forged = 0, registrations_stale = 0, registrations_unverified = 0;
  uint64_t registrations_puzzle = 0, subscribers_displaced = 0, filters_puzzle = 0;
  // housekeeping ticks run: every second while there is state to expire or neighbours to find, else once
  // per refresh (an idle node does not wake every second)
  uint64_t maintenance_runs = 0;
  // current sizes
  size_t out_neighbours = 0, in_filters = 0, held_topics = 0, seen_ids = 0;
};

// Where neighbours come from. Default: the DHT's routing table (Dht::peers, Dht::closest_known). Tests and
// benches may substitute another table (e.g. one built from a global view of the simulated network).
// closest_in_network stands for a converged lookup (the direct rendezvous's holders): the n nodes of the
// network closest to target.
struct PubsubTopology {
  std::function<std::vector<Contact>()> peers;
  std::function<std::vector<Contact>(const NodeId& target, size_t n)> closest_known;
  std::function<std::vector<Contact>(const NodeId& target, size_t n)> closest_in_network;
};

class Pubsub {
 public:
  Pubsub(Engine& engine, Dht& dht, PubsubConfig config);
  ~Pubsub();

  // Return false (and do nothing) when the topic or event is too large (or the event is not JSON).
  bool subscribe(const std::string& topic);
  bool unsubscribe(const std::string& topic);
  std::vector<std::string> subscriptions() const;
  bool publish(const std::string& topic, std::string event_json);
  // Events received for the topic since the last call, each once, in arrival order; then emptied.
  std::vector<std::string> take_events(const std::string& topic);

  // Optional observer, called on each local delivery (before the event is queued for take_events).
  void set_on_event(std::function<void(const std::string& topic, const std::string& event_json)> f);
  // Replaces the neighbour source (see PubsubTopology); empty functions restore the DHT's.
  void set_topology(PubsubTopology topology);
  PubsubStats stats() const;
  const PubsubConfig& config() const;
  // Diagnostics: the lowest level of this node's attenuated filter that matches `topic`, or -1.
  int filter_level(const std::string& topic) const;
  // Diagnostics: how many subscribers this node holds (active, not unsubscribed) for `topic`.
  size_t held_subscribers(const std::string& topic) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace storjnet
