// A NATed node that joined early becomes known to the nodes that join later near its id (its self-lookup each
// maintenance round while dial-back has not found it reachable, src/dht/dht_upkeep.cc; docs/protocol.md 5.2):
// a lookup of its id ends at its punch rendezvous only if they know it.
#include <gtest/gtest.h>

#include <algorithm>

#include "storjnet/simulator.h"

using namespace storjnet;

namespace {

NodeConfig config() {
  NodeConfig c;
  c.dht.k = 8;
  c.dht.republish_interval = std::chrono::minutes(2);  // maintenance every 15 s
  return c;
}

void join_all(Simulator& sim, size_t from) {
  for (size_t i = from; i < sim.size(); ++i) {
    bool done = false;
    sim.node(i).dht().bootstrap({sim.endpoint(0)}, [&](bool) { done = true; });
    sim.run_until([&] { return done; }, std::chrono::seconds(30));
  }
}

}  // namespace

TEST(SimNatNeighbours, NodesJoiningNearAnEarlyNatedNodeLearnOfIt) {
  Simulator sim;
  for (int i = 0; i < 8; ++i) sim.add_node(config());
  size_t early = sim.add_node(config());
  sim.put_behind(early, sim.add_router({NatModel::Type::kPortRestricted}));
  join_all(sim, 1);
  sim.run_for(std::chrono::minutes(2));
  // Many more join later, among them the nodes that end up closest to the early node's id.
  size_t before = sim.size();
  for (int i = 0; i < 120; ++i) sim.add_node(config());
  join_all(sim, before);
  sim.run_for(std::chrono::minutes(3));

  NodeId target = sim.node(early).id();
  std::vector<size_t> order;
  for (size_t i = 0; i < sim.size(); ++i)
    if (i != early) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return (sim.node(a).id() ^ target) < (sim.node(b).id() ^ target);
  });
  // Its 4 closest nodes (where a lookup of its id ends, the rendezvous a punch asks) know it.
  size_t know = 0;
  for (size_t r = 0; r < 4; ++r) {
    auto peers = sim.node(order[r]).dht().peers();
    know += std::any_of(peers.begin(), peers.end(), [&](const Contact& c) { return c.id == target; });
  }
  EXPECT_GE(know, 3u);
}
