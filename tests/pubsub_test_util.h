// Helpers for the pubsub tests: connecting a simulated network, counting deliveries.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testing/oracle_topology.h"
#include "sim/network_builder.h"
#include "storjnet/simulator.h"

namespace storjnet::test {

// Connects the simulated network's pubsub neighbours through the DHT (sim::join_network joins every node, and
// each must end with a non-empty routing table: a join that fails fails the test, with no fallback), or, with
// `force_oracle`, through an oracle Kademlia-shaped table. Returns the oracle (keep it alive), else nullptr.
inline std::unique_ptr<pubsub::OracleTopology> connect_pubsub(Simulator& sim, uint64_t seed, bool force_oracle = false) {
  const size_t n = sim.size();
  if (!force_oracle) {
    size_t joined = n > 1 ? sim::join_network(sim, seed) : n;
    EXPECT_EQ(joined, n) << "DHT join failed: the pubsub test would measure a broken topology";
    for (size_t i = 0; n > 1 && i < n; ++i)
      EXPECT_FALSE(sim.node(i).dht().peers().empty()) << "node " << i << " joined with an empty routing table";
    sim.run_for(2s);
    return nullptr;
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
