// The simulator's NAT routers (src/sim/nat.h): mapping and filtering as RFC 4787 describes them, expiry on
// virtual time, and nodes behind them talking through the simulator.
#include <gtest/gtest.h>

#include "sim/nat.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using Type = NatModel::Type;

namespace {
const Endpoint kInside = Endpoint::v4(0x0a000005, 4000);
const Endpoint kPeerA = Endpoint::v4(0x0a000001, 4000), kPeerA2 = Endpoint::v4(0x0a000001, 5000);
const Endpoint kPeerB = Endpoint::v4(0x0a000002, 4000);

sim::Nat nat(Type t, Duration timeout = 60s) { return sim::Nat(NatModel{t, timeout, false}, 0xac100007); }
TimePoint at(int seconds) { return TimePoint(std::chrono::seconds(seconds)); }
}  // namespace

TEST(Nat, ConeRoutersKeepOnePortPerInsideEndpointAndPreserveIt) {
  sim::Rng rng(1);
  for (Type t : {Type::kFullCone, Type::kRestrictedCone, Type::kPortRestricted}) {
    auto n = nat(t);
    auto a = n.outbound(kInside, kPeerA, at(0), rng);
    auto b = n.outbound(kInside, kPeerB, at(1), rng);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b);                       // endpoint-independent mapping
    EXPECT_EQ(*a, Endpoint::v4(0xac100007, 4000));  // the inside port, kept
    EXPECT_EQ(n.mappings(), 1u);
    // A second inside endpoint with the same port gets another one.
    auto c = n.outbound(Endpoint::v4(0x0a000006, 4000), kPeerA, at(2), rng);
    ASSERT_TRUE(c);
    EXPECT_NE(c->port, a->port);
  }
}

TEST(Nat, SymmetricRoutersTakeAPortPerDestination) {
  sim::Rng rng(2);
  auto n = nat(Type::kSymmetric);
  auto a = n.outbound(kInside, kPeerA, at(0), rng);
  auto a2 = n.outbound(kInside, kPeerA2, at(0), rng);
  auto b = n.outbound(kInside, kPeerB, at(0), rng);
  ASSERT_TRUE(a && a2 && b);
  EXPECT_NE(a->port, a2->port);
  EXPECT_NE(a->port, b->port);
  EXPECT_EQ(n.outbound(kInside, kPeerA, at(1), rng), a);  // the same destination keeps its port
  // Only the destination a port was made for answers through it.
  EXPECT_EQ(n.inbound(kPeerA, a->port, at(2)), kInside);
  EXPECT_FALSE(n.inbound(kPeerB, a->port, at(2)));
  EXPECT_FALSE(n.inbound(kPeerA2, a->port, at(2)));
}

TEST(Nat, FilteringByRouterType) {
  sim::Rng rng(3);
  struct Want {
    Type type;
    bool same_endpoint, same_address_other_port, stranger;
  };
  for (Want w : {Want{Type::kFullCone, true, true, true}, Want{Type::kRestrictedCone, true, true, false},
                 Want{Type::kPortRestricted, true, false, false}, Want{Type::kSymmetric, true, false, false}}) {
    auto n = nat(w.type);
    auto pub = n.outbound(kInside, kPeerA, at(0), rng);
    ASSERT_TRUE(pub);
    EXPECT_EQ(n.inbound(kPeerA, pub->port, at(1)).has_value(), w.same_endpoint) << int(w.type);
    EXPECT_EQ(n.inbound(kPeerA2, pub->port, at(1)).has_value(), w.same_address_other_port) << int(w.type);
    EXPECT_EQ(n.inbound(kPeerB, pub->port, at(1)).has_value(), w.stranger) << int(w.type);
    EXPECT_FALSE(n.inbound(kPeerA, static_cast<uint16_t>(pub->port + 1), at(1)));  // no mapping there
  }
}

TEST(Nat, MappingsExpireWhenUnusedAndTrafficEitherWayKeepsThemAlive) {
  sim::Rng rng(4);
  auto n = nat(Type::kPortRestricted, 30s);
  auto pub = n.outbound(kInside, kPeerA, at(0), rng);
  ASSERT_TRUE(pub);
  EXPECT_TRUE(n.inbound(kPeerA, pub->port, at(29)));   // answers keep it alive...
  EXPECT_TRUE(n.inbound(kPeerA, pub->port, at(58)));
  EXPECT_FALSE(n.inbound(kPeerA, pub->port, at(89)));  // ...until 30 s pass with nothing
  // A filter entry expires on its own while its mapping lives on through another peer's traffic.
  n.outbound(kInside, kPeerA, at(100), rng);
  for (int t = 101; t < 200; t += 10) n.outbound(kInside, kPeerB, at(t), rng);
  EXPECT_TRUE(n.inbound(kPeerB, pub->port, at(195)));
  EXPECT_FALSE(n.inbound(kPeerA, pub->port, at(195)));
}

TEST(Nat, StateStaysBoundedByRecentTraffic) {
  sim::Rng rng(5);
  auto n = nat(Type::kSymmetric, 10s);
  // One destination per second for an hour: at most about ten mappings are live at any time.
  size_t peak = 0;
  for (int t = 0; t < 3600; ++t) {
    ASSERT_TRUE(n.outbound(kInside, Endpoint::v4(0x0b000000u + static_cast<uint32_t>(t), 4000), at(t), rng));
    peak = std::max(peak, n.mappings() + n.filter_entries());
  }
  EXPECT_LE(peak, 200u);
}

namespace {
// Pings `to` from node `from`; whether the answer came back within 5 s of virtual time.
bool ping(Simulator& sim, size_t from, const Contact& to) {
  std::optional<bool> ok;
  sim.node(from).ping(to, [&](std::optional<NodeId> id) { ok = id && *id == to.id; });
  sim.run_until([&] { return ok.has_value(); }, 5s);
  return ok.value_or(false);
}
Contact at_router(Simulator& sim, size_t node, uint16_t port) {
  Contact c = sim.contact(node);
  c.endpoint = sim.router_address(*sim.router_of(node));
  c.endpoint.port = port;
  return c;
}
}  // namespace

TEST(SimNat, NodesBehindRoutersReachTheOpenNetworkAndOnlyThroughMappingsBack) {
  Simulator sim;
  size_t pub = sim.add_node(), cone = sim.add_node(), restricted = sim.add_node(), sym = sim.add_node();
  sim.put_behind(cone, sim.add_router({Type::kFullCone}));
  sim.put_behind(restricted, sim.add_router({Type::kPortRestricted}));
  sim.put_behind(sym, sim.add_router({Type::kSymmetric}));
  // Out to the open network: works from behind every router.
  for (size_t n : {cone, restricted, sym}) EXPECT_TRUE(ping(sim, n, sim.contact(pub))) << n;
  // A node's own address is private behind its router.
  uint64_t unroutable = sim.stats().unroutable;
  EXPECT_FALSE(ping(sim, pub, sim.contact(cone)));
  EXPECT_GT(sim.stats().unroutable, unroutable);
  // Through the router: the full cone lets a stranger in at the port it kept (4000), the others do not.
  EXPECT_TRUE(ping(sim, restricted, at_router(sim, cone, 4000)));
  uint64_t filtered = sim.stats().nat_filtered;
  EXPECT_FALSE(ping(sim, sym, at_router(sim, restricted, 4000)));
  EXPECT_GT(sim.stats().nat_filtered, filtered);
  // The public node's earlier exchange opened the port-restricted mapping for it alone.
  EXPECT_TRUE(ping(sim, pub, at_router(sim, restricted, 4000)));
}

TEST(SimNat, SimultaneousOpenPunchesPortRestrictedButNotSymmetric) {
  Simulator sim;
  size_t a = sim.add_node(), b = sim.add_node(), s = sim.add_node();
  sim.put_behind(a, sim.add_router({Type::kPortRestricted}));
  sim.put_behind(b, sim.add_router({Type::kPortRestricted}));
  sim.put_behind(s, sim.add_router({Type::kSymmetric}));
  // a and b each send first (the datagram to the other is filtered), then the other's gets through.
  Contact ca = at_router(sim, a, 4000), cb = at_router(sim, b, 4000);
  sim.node(a).ping(cb, [](auto) {});
  sim.run_for(1ms);
  EXPECT_TRUE(ping(sim, b, ca));
  // The symmetric node's port toward b is not the one b can guess: a fresh destination gets a fresh port.
  sim.node(s).ping(cb, [](auto) {});
  sim.run_for(1ms);
  EXPECT_FALSE(ping(sim, b, at_router(sim, s, 4000)));
}

TEST(SimNat, HairpinOnlyWhenTheRouterDoesIt) {
  for (bool hairpin : {false, true}) {
    Simulator sim;
    size_t r = sim.add_router({Type::kFullCone, 60s, hairpin});
    size_t a = sim.add_node(), b = sim.add_node(), pub = sim.add_node();
    sim.put_behind(a, r);
    sim.put_behind(b, r);
    EXPECT_TRUE(ping(sim, a, sim.contact(b)));  // the home network itself: private addresses work
    ASSERT_TRUE(ping(sim, a, sim.contact(pub)));
    ASSERT_TRUE(ping(sim, b, sim.contact(pub)));
    Contact b_public = at_router(sim, b, 4001);  // a took the router's port 4000 first
    EXPECT_EQ(ping(sim, a, b_public), hairpin);
  }
}

TEST(SimNat, RoutersDoNotChangeARunWithoutThem) {
  // The trace of a run that uses no router is the same whether routers exist or not.
  auto run = [](bool with_router) {
    SimConfig cfg;
    cfg.seed = 9;
    Simulator sim(cfg);
    for (int i = 0; i < 20; ++i) sim.add_node();
    if (with_router) sim.add_router({});
    for (size_t i = 1; i < 20; ++i) sim.node(i).ping(sim.contact(0), [](auto) {});
    sim.run_for(2s);
    return sim.trace_hash();
  };
  EXPECT_EQ(run(false), run(true));
}

#include "sim/nat_scenario.h"

TEST(SimNatDht, HalfTheNodesBehindRoutersJoinAndUseTheDhtAndASeedReplays) {
  sim::NatScenarioConfig c;
  c.seed = 3;
  c.nodes = 120;
  c.natted = 0.5;
  c.settle = 30s;
  c.puts = 30;
  c.subscribers = 0;
  c.events = 0;
  sim::NatScenarioReport r = sim::run_nat_scenario(c);
  EXPECT_EQ(r.joined, c.nodes);
  EXPECT_GT(r.by_kind[2] + r.by_kind[3], 20u);  // port-restricted and symmetric routers were there
  EXPECT_GT(r.nat_filtered, 0u);                // and they filtered
  EXPECT_EQ(r.puts_ok, r.puts);                 // NATed publishers included
  EXPECT_EQ(r.gets_ok, r.gets);                 // NATed getters included
  EXPECT_EQ(sim::run_nat_scenario(c).trace_hash, r.trace_hash);
}

TEST(SimNatDht, DialBackKeepsUnreachableNodesOutOfAnswers) {
  // Routing tables still hold NATed nodes (their peers reach them through the mappings they opened), but
  // find_node answers hand out the confirmed ones: the control run without dial-back hands them out.
  sim::NatScenarioConfig c;
  c.seed = 4;
  c.nodes = 150;
  c.natted = 0.6;
  c.settle = 60s;
  c.puts = 20;
  c.subscribers = 0;
  c.events = 0;
  sim::NatScenarioReport on = sim::run_nat_scenario(c);
  c.node.dht.dial_back = false;
  sim::NatScenarioReport off = sim::run_nat_scenario(c);
  auto ratio = [](uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 1.0; };
  double on_out = ratio(on.handed_out_unreachable, on.handed_out);
  double off_out = ratio(off.handed_out_unreachable, off.handed_out);
  EXPECT_GT(on.handed_out, 150u * 4 * 10);
  // 150 nodes: tables of about 70 entries, about 15 of them confirmed after one minute (sim-nat at 1,000
  // nodes: 16% handed out unreachable without dial-back, 0.5% with it).
  EXPECT_LT(on_out * 2, off_out) << on.handed_out_unreachable << " of " << on.handed_out << " vs "
                                 << off.handed_out_unreachable << " of " << off.handed_out;
  EXPECT_GT(off_out, 0.1);
  EXPECT_GT(on.confirmed * 6, on.contacts);
  EXPECT_EQ(off.confirmed, 0u);
  EXPECT_EQ(on.gets_ok, on.gets);
  EXPECT_EQ(on.puts_ok, on.puts);
}
