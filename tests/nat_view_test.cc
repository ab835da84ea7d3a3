// NatView (src/dht/nat_view.h, docs/protocol.md 5.1 "Mapping"; issue 12, "Know where you stand"): a node
// compares kademlia_stun answers from several peers to learn its public address and whether its NAT maps a new
// port per destination; a lying peer cannot flip that with three answers.
#include <gtest/gtest.h>

#include <set>

#include "dht/nat_view.h"
#include "test_env.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using namespace std::chrono_literals;
using dht::NatView;
using Type = NatModel::Type;

namespace {
Endpoint ep(uint32_t ip, uint16_t port) { return Endpoint::v4(ip, port); }
constexpr uint32_t kIp = 0x01020304, kOther = 0x05060708;
}  // namespace

TEST(NatViewVerdict, TwoAgreeingAnswersMakeAnIndependentMappingAndAnOddOneOutCannotFlipIt) {
  auto v = NatView::verdict({ep(kIp, 4000), ep(kIp, 4000), ep(kIp, 4000)});
  EXPECT_EQ(v.mapping, NatMapping::kIndependent);
  EXPECT_EQ(v.address, ep(kIp, 4000));
  // A liar naming another port, or another address, among three.
  for (const auto& lie : {ep(kIp, 9999), ep(kOther, 4000)}) {
    v = NatView::verdict({ep(kIp, 4000), lie, ep(kIp, 4000)});
    EXPECT_EQ(v.mapping, NatMapping::kIndependent) << lie.to_string();
    EXPECT_EQ(v.address, ep(kIp, 4000));
  }
}

TEST(NatViewVerdict, EveryPortDifferentAtOneAddressIsADependentMapping) {
  auto v = NatView::verdict({ep(kIp, 31000), ep(kIp, 5123), ep(kIp, 60111)});
  EXPECT_EQ(v.mapping, NatMapping::kDependent);
  EXPECT_EQ(v.address, ep(kIp, 0)) << "the address alone: its port differs per destination";
  // A liar naming another address leaves two honest answers at one address, ports differing.
  v = NatView::verdict({ep(kIp, 31000), ep(kOther, 5123), ep(kIp, 60111)});
  EXPECT_EQ(v.mapping, NatMapping::kDependent);
}

TEST(NatViewVerdict, TooFewOrScatteredAnswersAreUnknown) {
  EXPECT_EQ(NatView::verdict({}).mapping, NatMapping::kUnknown);
  EXPECT_EQ(NatView::verdict({ep(kIp, 4000)}).mapping, NatMapping::kUnknown);
  EXPECT_EQ(NatView::verdict({ep(kIp, 4000), ep(kOther, 4000)}).mapping, NatMapping::kUnknown);
  EXPECT_FALSE(NatView::verdict({ep(kIp, 4000), ep(kOther, 4000), ep(0x09090909, 1)}).address);
}

// Open nodes, and nodes behind each kind of simulated router: each learns its router's address, and whether
// the router gives one port for every destination.
TEST(NatViewSim, EachNodeLearnsItsPublicAddressAndHowItsRouterMapsPorts) {
  Simulator sim;
  NodeConfig c;
  c.dht.k = 8;
  for (int i = 0; i < 12; ++i) sim.add_node(c);
  struct Behind {
    size_t node, router;
    Type type;
  };
  std::vector<Behind> behind;
  for (Type t : {Type::kFullCone, Type::kRestrictedCone, Type::kPortRestricted, Type::kSymmetric})
    for (int i = 0; i < 2; ++i) {
      size_t n = sim.add_node(c), r = sim.add_router({t});
      sim.put_behind(n, r);
      behind.push_back({n, r, t});
    }
  for (size_t i = 1; i < sim.size(); ++i) {
    bool done = false;
    sim.node(i).dht().bootstrap({sim.endpoint(0)}, [&](bool) { done = true; });
    sim.run_until([&] { return done; }, 30s);
  }
  sim.run_for(2min);

  for (size_t i = 0; i < 12; ++i) {
    DhtStats s = sim.node(i).dht().stats();
    EXPECT_EQ(s.nat_mapping_v4, NatMapping::kIndependent) << i;
    EXPECT_EQ(s.nat_address_v4, sim.endpoint(i)) << i;
    EXPECT_LE(s.nat_stun_asks, 2 * NatView::kPeers) << "one check, and at most one retry: " << i;
    EXPECT_EQ(s.nat_mapping_v6, NatMapping::kUnknown) << "no IPv6 socket: " << i;
  }
  for (const auto& b : behind) {
    DhtStats s = sim.node(b.node).dht().stats();
    uint32_t router_ip = 0xac100000u + static_cast<uint32_t>(b.router);  // include/storjnet/simulator.h
    ASSERT_TRUE(s.nat_address_v4) << b.node;
    EXPECT_EQ(s.nat_address_v4->addr, ep(router_ip, 0).addr) << b.node;
    if (b.type == Type::kSymmetric) {
      EXPECT_EQ(s.nat_mapping_v4, NatMapping::kDependent) << b.node;
    } else {
      EXPECT_EQ(s.nat_mapping_v4, NatMapping::kIndependent) << b.node;
      EXPECT_NE(s.nat_address_v4->port, 0) << b.node;
    }
  }
}

// The bound of docs/protocol.md 5.1 "Mapping": nothing is asked of loopback contacts (a network on one host) nor
// while fewer than two contacts sit at distinct addresses; then one ask per distinct address, at most kPeers.
TEST(NatViewBound, AsksOnlyContactsAtDistinctNonLoopbackAddresses) {
  test::ManualEnv env(3);
  Engine engine(env, test::test_identity(1, 0x46));
  dht::RoutingTable table(engine.id(), 20);
  NatView view(engine, table, 1s);
  auto add = [&](uint64_t n, Endpoint at) {
    table.seen(Contact::from_key(test::test_identity(n, 0x47).public_key(), at), engine.now());
  };
  for (uint64_t n = 2; n < 6; ++n) add(n, ep(0x7f000001, static_cast<uint16_t>(4000 + n)));  // this host
  for (uint64_t n = 6; n < 9; ++n) add(n, ep(kIp, static_cast<uint16_t>(4000 + n)));         // one address
  env.advance(NatView::kFirstCheck);
  engine.on_wake();
  EXPECT_TRUE(env.outbox.empty()) << "loopback contacts and one address: nothing to compare";

  for (uint64_t n = 9; n < 14; ++n) add(n, ep(kOther + static_cast<uint32_t>(n), 4000));  // five more addresses
  env.advance(NatView::kRetry);
  engine.on_wake();
  std::set<Endpoint> asked;
  for (const auto& s : env.outbox) {
    EXPECT_FALSE(s.to.is_loopback());
    Endpoint a = s.to;
    a.port = 0;
    asked.insert(a);
  }
  EXPECT_EQ(asked.size(), NatView::kPeers) << "one contact per address, three addresses";
  DhtStats st;
  view.fill(st);
  EXPECT_EQ(st.nat_stun_asks, NatView::kPeers);
}
