// sim::run_nat_scenario: a network where a fraction of the nodes sit behind home routers (sim::Nat), one node
// per router, with a mix of router kinds. Nodes join through open nodes (bootstrap nodes are public), the
// network ages, then DHT puts, gets from other nodes, and pubsub events to a set of subscribers are counted.
// It measures how well the protocol serves a NATed network; `storjnet-bench sim-nat` prints the report.
#pragma once
#include <cstdint>

#include "storjnet/simulator.h"

namespace storjnet::sim {

struct NatScenarioConfig {
  uint64_t seed = 1;
  size_t nodes = 1000;
  double natted = 0.6;  // fraction of the nodes behind a router (node 0, the first bootstrap node, never is)
  // Shares of the routers by kind (normalised). Field studies find most home routers endpoint-independent
  // in mapping and a tenth to a fifth symmetric (RFC 5128 section 3; libp2p's measurements).
  double full_cone = 0.2, restricted_cone = 0.15, port_restricted = 0.45, symmetric = 0.2;
  Duration mapping_timeout = std::chrono::seconds(60);
  Duration settle = std::chrono::minutes(2);  // virtual time between the join and the workload
  size_t puts = 200;                          // each read once by another node
  size_t subscribers = 100;                   // of one topic
  size_t events = 100;                        // published to it by random nodes
  // Direct messages between random ordered pairs of NATed nodes (sent at once, after the pubsub part): how
  // many arrive, and how many of those the sender reached through a hole it punched (src/dht/punch.h).
  size_t nat_pairs = 100;
  NodeConfig node;
};

struct NatScenarioReport {
  size_t joined = 0, natted = 0;
  size_t by_kind[4] = {};  // routers by NatModel::Type
  uint64_t puts = 0, puts_ok = 0, gets = 0, gets_ok = 0;
  uint64_t events_expected = 0, events_delivered = 0;
  std::vector<double> lookup_rounds, get_ms;  // gets that asked the network
  std::vector<double> put_ms;                 // every put, until its answer (virtual time)
  // Routing-table entries, over all nodes, that a stranger could not reach when the workload began.
  uint64_t contacts = 0, contacts_unreachable = 0;
  uint64_t unreachable_by_kind[5] = {};  // ... by the kind of router they sit behind (4: none, open nodes)
  // Contacts handed out in find_node answers (Dht::handed_out, 4 random targets per node) at the same time, and
  // how many of them a stranger could not reach.
  uint64_t handed_out = 0, handed_out_unreachable = 0;
  uint64_t confirmed = 0;  // routing-table entries confirmed by a dial-back
  // Messages between NATed pairs, by the pair's router kinds (PairClass). relayed: the sender reached the
  // receiver through a relay (a relayed path set, docs/protocol.md 5.3).
  enum PairClass : size_t {
    kNeitherSymmetric,            // a punch connects them (endpoint-independent mapping on both sides)
    kOneSymmetricPunchable,       // symmetric against full cone or restricted cone: a punch connects them
    kOneSymmetricPortRestricted,  // symmetric against port-restricted: a relay, then birthday punching
    kBothSymmetric,               // only a relay
    kPairClasses
  };
  static PairClass pair_class(NatModel::Type a, NatModel::Type b);
  uint64_t pairs[kPairClasses] = {}, pairs_ok[kPairClasses] = {}, pairs_punched[kPairClasses] = {},
           pairs_relayed[kPairClasses] = {};
  uint64_t pairs_direct[kPairClasses] = {};  // delivered, neither punched nor relayed (a full cone lets anyone in)
  // Of the pairs relayed when their message was delivered: those the upgrade made direct (punched, no relayed
  // path) kUpgradeWait later (docs/protocol.md 5.2, "Upgrade"), and those still relayed then.
  uint64_t pairs_upgraded[kPairClasses] = {}, pairs_still_relayed[kPairClasses] = {};
  static constexpr Duration kUpgradeWait = std::chrono::seconds(30);
  uint64_t upgrades_ok = 0, upgrades_failed = 0, upgrades_futile = 0, birthdays = 0;  // summed over all nodes
  // Summed over all nodes (DhtStats; punches also start for pubsub traffic).
  uint64_t punch_attempts = 0, punch_ok = 0, punch_failed = 0, punch_no_rendezvous = 0, punch_refused = 0;
  uint64_t keepalives_sent = 0;
  uint64_t relay_fallbacks = 0, relay_fallbacks_found = 0, relay_forwarded = 0, relay_refused = 0;
  uint64_t relay_reservations_held = 0;  // at the end, over all nodes
  uint64_t nat_filtered = 0, datagrams = 0, trace_hash = 0;
};

NatScenarioReport run_nat_scenario(const NatScenarioConfig& cfg);

}  // namespace storjnet::sim
