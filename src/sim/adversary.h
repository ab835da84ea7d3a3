// Adversary simulation (issue 11): one simulated network in which a fraction of the nodes are attackers that
// run the real node code with their behaviour replaced (engine handlers overridden, forged requests sent
// through their engines), share what they learn (one coalition state), and attack while honest nodes put,
// get, subscribe and publish. It measures what the Sybil protections (docs/protocol.md 10.8) leave to honest
// users. The same config replays bit for bit (the result carries the simulator's trace hash).
//
// Setup: `nodes` nodes, round(malicious * nodes) of them attackers at random indices. Attackers choose their
// ids: they search 2^(puzzle_bits + placement_bits) key generations in all (an id puzzle of difficulty
// puzzle_bits makes 2^placement_bits of them valid ids) and give each target (the honest keys, the pubsub
// topic keys, the victim's id) the valid ids closest to it, up to k per target; the rest keep random ids. The
// network joins with every node behaving (attackers are sleepers, so they enter routing tables like anyone),
// then the attack starts, then a victim node joins through an honest node, then the honest workload runs.
//
// Attacks (each a set of behaviours; `all` is their union at every attacker):
//  - eclipse: find_node and find_value are answered only with the attackers closest to the target (never a
//    value). Stores and pubsub are handled by the real code.
//  - overwrite: a store is refused (`false`: "another owner's value is held") and its value remembered; every
//    attack round, for every honest key learned, the attackers store at the key's k closest honest nodes a
//    value signed by the coalition's own key, a copy of the honest value with altered bytes (bad signature) and
//    the honest value with a future version under the honest owner's key and old signature; find_value for a
//    learned key answers the coalition's own (validly signed) value, so the attackers vote together.
//  - drop: stores are acknowledged (`true`) and nothing is kept; find_node / find_value answer attackers only;
//    pubsub registrations, replicas and events are acknowledged and dropped; filters ignored.
//  - forge-subscribe: every round, registrations naming honest subscribers signed by an attacker's key
//    (subscribe to another topic, unsubscribe from theirs) go to the topic keys' closest nodes (as replicas)
//    and to random honest nodes (as routed registrations); an all-ones filter goes to honest nodes.
//    Attackers know every subscriber and endpoint (the strongest attacker).
//  - none: attackers placed but behaving (a baseline).
//
// Honest workload: `puts` puts of fresh keys by random honest nodes (the attacker knows the keys in advance,
// to place its ids, but only overwrites values once it has seen them: squatting a key before its owner's first
// put is a documented limit, not measured here); `attack_time` of attack rounds; then one get per key from a
// random honest node other than the putter. `topics` topics with `subscribers_per_topic` honest subscribers
// each, subscribed after the attack started; `events_per_topic` events from random honest publishers.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storjnet/config.h"
#include "storjnet/node.h"

namespace storjnet::sim {

enum class Attack { kNone, kEclipse, kOverwrite, kDrop, kForgeSubscribe, kAll };

std::optional<Attack> parse_attack(std::string_view name);  // none, eclipse, overwrite, drop, forge-subscribe, all
std::string attack_name(Attack a);

struct AdversaryConfig {
  uint64_t seed = 1;
  size_t nodes = 1000;
  double malicious = 0.2;  // fraction of the nodes that are attackers
  Attack attack = Attack::kAll;
  int puzzle_bits = 0;      // the network's id puzzle (DhtConfig::id_puzzle_bits); 0 as in the simulator
  int placement_bits = 16;  // the attacker's id search: 2^(puzzle_bits + placement_bits) key generations
  size_t puts = 200;
  size_t putters = 0;      // honest nodes the puts come from, round robin (0: a random honest node per put)
  size_t topics = 10;
  size_t subscribers_per_topic = 20;
  size_t events_per_topic = 5;
  Duration attack_round = 2s;  // active attacks (overwrite stores, forged registrations, filters) this often
  Duration attack_time = 20s;  // rounds between the puts and the gets
  NodeConfig node;             // every node's configuration (id_puzzle_bits is set from puzzle_bits)
};

struct GetCounts {
  size_t gets = 0, ok = 0, forged = 0, missing = 0;
  double ok_ratio = 0;
};

struct AdversaryResult {
  uint64_t seed = 0, trace_hash = 0;
  size_t nodes = 0, attackers = 0, joined = 0;
  size_t ids_per_target = 0;       // placed attacker ids per target
  double placed_prefix_bits = 0;   // mean leading bits a placed id shares with its target
  double honest_prefix_bits = 0;   // mean leading bits the closest honest node shares with a target
  // DHT
  size_t puts = 0, puts_ok = 0;
  size_t puts_reused = 0;  // puts that stored on a recent placement or neighbourhood, without a lookup
  double put_ok_ratio = 0;
  // Gets, one per acked put, each counted as: the honest owner's value returned (ok), another value (forged:
  // another owner's, or a stale one), or nothing (missing).
  GetCounts owned_gets;  // Dht::get naming the owner
  GetCounts gets;        // Dht::get without an owner: the vote among the k closest answering nodes
  double rounds_p50 = 0, rounds_p99 = 0;      // honest put and get lookups
  // pubsub
  size_t events_expected = 0, events_delivered = 0;
  double pubsub_delivery = 0;
  // the victim's routing table at the end
  size_t victim_contacts = 0, victim_honest_contacts = 0;
  double honest_contacts_ratio = 0;
  // what the attackers did, and what honest nodes counted
  uint64_t attacker_stores = 0, forged_registrations_sent = 0, filters_sent = 0, lies_told = 0;
  uint64_t honest_bad_signatures = 0, honest_registrations_forged = 0, honest_saturated_levels = 0;
  // honest nodes' pubsub: registrations whose endpoint did not answer the proof; registrations and events
  // refused by the holder and lookup-wait bounds
  uint64_t honest_registrations_unverified = 0, honest_held_rejected = 0;
  // honest subscribers' registrations and publishers' events that found their holders crowded near the key
  // and asked all to serve
  uint64_t honest_crowded_registrations = 0, honest_crowded_events = 0;
  // After the measurement, each subscriber looks up its topic's k closest again (Dht::closest, as pubsub does):
  // the share of attackers in what it found, the same share among the network's true k closest, and the share
  // of the true k closest it found.
  double holder_lookup_attacker_ratio = 0, true_closest_attacker_ratio = 0, holder_lookup_recall = 0;
};

AdversaryResult run_adversary(const AdversaryConfig& config);

}  // namespace storjnet::sim
