// Relays in a small network (docs/protocol.md 5.3, "Who relays"; issue 12's small netlab layouts): every
// helper a public node could be probed by is a peer it talked to lately, so dial-back never finds it
// reachable. A node whose route out has a public address (no NAT in front of it) offers to relay all the
// same, so two NATed nodes no punch connects still reach each other.
#include <gtest/gtest.h>

#include "node/node_internals.h"
#include "sim_send.h"
#include "storjnet/node.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using Type = NatModel::Type;

namespace {

// `publics` open nodes, then a behind a symmetric router and b behind a port-restricted one (30 s mappings);
// everyone joins through node 0, then 150 s pass (a and b reserve relays and publish their lists).
struct SmallNet {
  Simulator sim;
  size_t a = 0, b = 0;
  explicit SmallNet(size_t publics) : sim(config()) {
    for (size_t i = 0; i < publics; ++i) sim.add_node();
    a = sim.add_node();
    b = sim.add_node();
    sim.put_behind(a, sim.add_router({Type::kSymmetric, std::chrono::seconds(30), false}));
    sim.put_behind(b, sim.add_router({Type::kPortRestricted, std::chrono::seconds(30), false}));
    for (size_t i = 1; i < sim.size(); ++i) {
      bool done = false;
      sim.node(i).dht().bootstrap({sim.endpoint(0)}, [&](bool) { done = true; });
      sim.run_until([&] { return done; }, std::chrono::seconds(30));
    }
    sim.run_for(std::chrono::seconds(150));
  }
  static SimConfig config() {
    SimConfig c;
    c.seed = 7;
    c.node.dht.relay = true;
    return c;
  }
  Engine& engine(size_t i) { return NodeInternals::engine(sim.node(i)); }
};

}  // namespace

TEST(RelaySmallNetwork, PublicNodesRelayBeforeDialBackFindsThemReachable) {
  SmallNet net(3);
  size_t reachable = 0;
  uint64_t granted = 0;
  for (size_t i = 0; i < 3; ++i) {
    DhtStats st = net.sim.node(i).dht().stats();
    reachable += st.reachable;
    granted += st.relay_reservations_granted;
  }
  EXPECT_EQ(reachable, 0u) << "the case under test: no public node proven reachable";
  EXPECT_GT(granted, 0u) << "public nodes relay all the same";
  for (size_t n : {net.a, net.b}) {
    DhtStats st = net.sim.node(n).dht().stats();
    EXPECT_FALSE(st.reachable) << n;
    EXPECT_GE(st.relay_reservations_held, 1u) << n;
  }
  // Symmetric against port-restricted: no punch connects them, a relay does.
  EXPECT_TRUE(sim_send(net.sim, net.a, net.b));
  EXPECT_TRUE(net.engine(net.a).via(net.engine(net.b).identity().public_key()).has_value());
  EXPECT_TRUE(sim_send(net.sim, net.b, net.a));
}
