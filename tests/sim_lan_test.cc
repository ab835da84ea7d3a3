// Two or more nodes behind one home router that does not hairpin (docs/protocol.md 5.2, "Same router"): they
// reach each other at their LAN addresses, which a punch's rendezvous passes on only between askers and
// targets it sees at one public address. Also the codec of the ASK / INTRO LAN field and the bounds that keep a
// lying peer from aiming a node at private addresses.
#include <gtest/gtest.h>

#include "dht/punch.h"
#include "dht/punch_codec.h"
#include "node/node_internals.h"
#include "sim_send.h"
#include "storjnet/messages.h"
#include "storjnet/node.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using Type = NatModel::Type;

namespace {

constexpr size_t kPublic = 8;

// Every node joins through node 0, one after another; then 150 s pass (the routers' mappings between NATed
// nodes have closed by then: 30 s mappings).
void join_all(Simulator& sim) {
  for (size_t i = 1; i < sim.size(); ++i) {
    bool done = false;
    sim.node(i).dht().bootstrap({sim.endpoint(0)}, [&](bool) { done = true; });
    sim.run_until([&] { return done; }, 30s);
  }
  sim.run_for(std::chrono::seconds(150));
}

// kPublic open nodes, then `homes` nodes behind one non-hairpinning router of kind `kind` (30 s mappings),
// all joined (join_all).
struct Home {
  Simulator sim;
  std::vector<size_t> home;
  size_t router = 0;
  Home(Type kind, size_t homes, bool relay = true, uint64_t seed = 1) : sim(config(seed, relay)) {
    for (size_t i = 0; i < kPublic; ++i) sim.add_node();
    router = sim.add_router({kind, std::chrono::seconds(30), false});
    for (size_t i = 0; i < homes; ++i) {
      home.push_back(sim.add_node());
      sim.put_behind(home.back(), router);
    }
    join_all(sim);
  }
  static SimConfig config(uint64_t seed, bool relay) {
    SimConfig c;
    c.seed = seed;
    c.node.dht.relay = relay;
    c.node.dht.keepalive_peers = 3;
    return c;
  }
  // message_send from -> to; whether it was acknowledged.
  bool send(size_t from, size_t to) { return sim_send(sim, from, to); }
  DhtStats stats(size_t i) { return sim.node(i).dht().stats(); }
};

}  // namespace

TEST(Lan, CodecCarriesAnOptionalLanEndpointAndRefusesMalformedOnes) {
  NodeId target = Identity::generate().id();
  dht::PunchMessage ask{dht::PunchKind::kAsk, target, {}, {}};
  EXPECT_EQ(dht::encode_punch(ask).size(), 21u);  // unchanged without one
  ask.lan = Endpoint::v4(0xc0a80105, 4000);      // 192.168.1.5
  Bytes b = dht::encode_punch(ask);
  EXPECT_EQ(b.size(), 21u + 7);
  EXPECT_EQ(dht::decode_punch(b), ask);
  dht::PunchMessage intro{dht::PunchKind::kIntro, {}, Identity::generate().public_key(), Endpoint::v4(0xc6120101, 4000)};
  intro.lan = *Endpoint::from_ip("fd00::7", 4001);
  b = dht::encode_punch(intro);
  EXPECT_EQ(b.size(), 1u + 32 + 7 + 19);
  EXPECT_EQ(dht::decode_punch(b), intro);
  b.push_back(0);
  EXPECT_FALSE(dht::decode_punch(b));  // trailing byte after the LAN endpoint
  b.resize(b.size() - 2);
  EXPECT_FALSE(dht::decode_punch(b));  // truncated LAN endpoint
  // A LAN endpoint must be private and not loopback: a public or loopback one is malformed.
  ask.lan = Endpoint::v4(0xc6120101, 4000);
  EXPECT_FALSE(dht::decode_punch(dht::encode_punch(ask)));
  ask.lan = Endpoint::v4(0x7f000001, 4000);
  EXPECT_FALSE(dht::decode_punch(dht::encode_punch(ask)));
  // HOLE and KEEPALIVE carry none.
  EXPECT_FALSE(dht::decode_punch(Bytes{3, 4, 10, 0, 0, 1, 0x0f, 0xa0}));
}

TEST(Lan, TwoNodesBehindOneRouterTalkOverTheLan) {
  for (Type kind : {Type::kPortRestricted, Type::kSymmetric, Type::kFullCone}) {
    SCOPED_TRACE(static_cast<int>(kind));
    Home net(kind, 2, /*relay=*/false);
    size_t a = net.home[0], b = net.home[1];
    uint64_t a_to_b_lan = 0;
    net.sim.set_send_tap([&](size_t from, const Endpoint& to, size_t) {
      a_to_b_lan += from == a && to == net.sim.endpoint(b);
    });
    DhtStats before = net.stats(a);
    EXPECT_TRUE(net.send(a, b));
    DhtStats s = net.stats(a);
    EXPECT_EQ(s.punch_ok, before.punch_ok + 1);
    EXPECT_GE(net.stats(b).punch_lan_holes_sent, 1u);  // b was told a's LAN address and sent there
    EXPECT_GT(a_to_b_lan, 0u);                         // and a answered on b's LAN address
    EXPECT_TRUE(net.sim.node(a).dht().punched(net.sim.node(b).id()));
    EXPECT_TRUE(net.send(b, a));
  }
}

TEST(Lan, ThreeNodesBehindOneRouterAllTalkOverTheLanWithRelaysOn) {
  // With relays on, a relay would carry them (that is how they talked before); the LAN path wins: no pair
  // ends relayed.
  Home net(Type::kPortRestricted, 3);
  for (size_t x : net.home)
    for (size_t y : net.home) {
      if (x != y) {
        EXPECT_TRUE(net.send(x, y)) << x << " -> " << y;
      }
    }
  for (size_t x : net.home)
    for (const auto& p : net.sim.node(x).relayed_paths())
      for (size_t y : net.home) EXPECT_NE(p.peer, net.sim.node(y).id()) << x << " relays to " << y;
  size_t lan = 0;
  for (size_t x : net.home)
    for (size_t y : net.home) lan += x != y && net.sim.node(x).dht().lan_path(net.sim.node(y).id());
  EXPECT_GE(lan, 2u);  // the first sender of each pair punched over the LAN; the other answers there directly
}

TEST(Lan, ARendezvousNeverPassesALanAddressToATargetAtAnotherPublicAddress) {
  // a and b sit behind two routers: a's ASKs name its LAN address, but no INTRO b gets carries it, and b
  // sends nothing to a private address of another home.
  SimConfig c = Home::config(1, false);
  Simulator sim(c);
  for (size_t i = 0; i < kPublic; ++i) sim.add_node();
  size_t a = sim.add_node(), b = sim.add_node();
  sim.put_behind(a, sim.add_router({Type::kPortRestricted, std::chrono::seconds(30), false}));
  sim.put_behind(b, sim.add_router({Type::kPortRestricted, std::chrono::seconds(30), false}));
  join_all(sim);
  uint64_t b_to_a_lan = 0;
  sim.set_send_tap([&](size_t from, const Endpoint& to, size_t) { b_to_a_lan += from == b && to == sim.endpoint(a); });
  EXPECT_TRUE(sim_send(sim, a, b));  // punched through the two routers
  EXPECT_GE(sim.node(a).dht().stats().punch_asks_sent, 1u);
  EXPECT_EQ(sim.node(b).dht().stats().punch_lan_holes_sent, 0u);
  EXPECT_EQ(b_to_a_lan, 0u);
}

TEST(Lan, LyingIntroductionsAimFewHolesAtPrivateAddresses) {
  // A peer on t's LAN (any peer may send INTROs) floods t with introductions whose LAN field names ever other
  // private addresses. Those outside t's own network (another /16) get nothing; those inside get HOLEs for at
  // most kLanBurst introductions, then kLanRate a second, in all; the rest is refused and counted.
  SimConfig c;
  c.node.dht.punch_rate = 1000;
  c.node.dht.punch_total_rate = 1000;
  Simulator sim(c);
  for (int i = 0; i < 4; ++i) sim.add_node();
  size_t t = sim.add_node(), liar = sim.add_node();
  size_t r = sim.add_router({Type::kFullCone, std::chrono::seconds(30), false});
  sim.put_behind(t, r);
  sim.put_behind(liar, r);
  for (size_t i = 1; i < sim.size(); ++i) sim.node(i).dht().bootstrap({sim.endpoint(0)}, [](bool) {});
  sim.run_for(10s);
  Endpoint own = sim.endpoint(t);
  ASSERT_EQ(own.addr[0], 10);
  uint64_t inside = 0, outside = 0;
  sim.set_send_tap([&](size_t from, const Endpoint& to, size_t) {
    if (from != t || to.addr[0] != 10 || to.port != 4000) return;
    if (to.addr[1] == own.addr[1] && to.addr[2] == 0x77) ++inside;  // 10.x.0x77.v
    if (to.addr[1] == 0x63) ++outside;                              // 10.99.0.v
  });
  DhtStats before = sim.node(t).dht().stats();
  Engine& e = NodeInternals::engine(sim.node(liar));
  Endpoint pub = sim.router_address(r);
  pub.port = 5000;
  for (uint8_t v = 1; v <= 200; ++v) {
    dht::PunchMessage intro{dht::PunchKind::kIntro, {}, Identity::generate().public_key(), pub};
    intro.lan = Endpoint::v4(v % 2 ? (0x0a630000u | v) : (0x0a007700u | (uint32_t(own.addr[1]) << 16) | v), 4000);
    e.notify(sim.contact(t), Method::kPunch, dht::encode_punch(intro));
    sim.run_for(50ms);
  }
  sim.run_for(5s);
  DhtStats s = sim.node(t).dht().stats();
  EXPECT_EQ(outside, 0u);
  uint64_t lan_intros = (s.punch_lan_holes_sent - before.punch_lan_holes_sent) / dht::Punch::kHoles;
  EXPECT_GE(lan_intros, 1u);
  // 15 s from the first: the burst and the rate.
  EXPECT_LE(lan_intros, static_cast<uint64_t>(dht::Punch::kLanBurst + dht::Punch::kLanRate * 15) + 1);
  EXPECT_EQ(inside, s.punch_lan_holes_sent - before.punch_lan_holes_sent);
  EXPECT_GE(s.punch_lan_refused - before.punch_lan_refused, 190u);
  auto drops = sim.node(t).stats().drop_count(kDropReasonNames[static_cast<size_t>(DropReason::kPunchRefused)]);
  EXPECT_GE(drops, s.punch_lan_refused);
}
