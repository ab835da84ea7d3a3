// Helpers for the pubsub tests: connecting a simulated network, counting deliveries.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testing/oracle_topology.h"
#include "sim/network_builder.h"
#include "storjnet/simulator.h"

namespace storjnet::test {

// Connects the simulated network's pubsub neighbours. Through the DHT when it works (sim::join_network joins
// every node and each ends with a non-empty routing table); otherwise (DHT not available) through an oracle
// Kademlia-shaped table. Returns the oracle, or nullptr when the DHT is used; keep it alive.
inline std::unique_ptr<pubsub::OracleTopology> connect_pubsub(Simulator& sim, uint64_t seed, bool force_oracle = false) {
  const size_t n = sim.size();
  if (!force_oracle && n > 1) {
    bool all = sim::join_network(sim, seed) == n;
    for (size_t i = 0; all && i < n; ++i) all = !sim.node(i).dht().peers().empty();
    if (all) {
      sim.run_for(2s);
      return nullptr;
    }
  }
  std::vector<Contact> contacts;
  for (size_t i = 0; i < n; ++i) contacts.push_back(sim.contact(i));
  auto oracle = std::make_unique<pubsub::OracleTopology>(std::move(contacts), 20, seed);
  for (size_t i = 0; i < n; ++i) sim.node(i).pubsub().set_topology(oracle->for_node(i));
  return oracle;
}

inline std::string event_json(uint64_t seq) { return nlohmann::json{{"seq", seq}}.dump(); }
inline uint64_t event_seq(const std::string& json) { return nlohmann::json::parse(json).at("seq").get<uint64_t>(); }

}  // namespace storjnet::test
