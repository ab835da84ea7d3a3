// Hole punching through a common neighbour and NAT keepalives (src/dht/punch.h), on the simulator's NAT
// routers (src/sim/nat.h) and virtual time: pairs that could not talk now do, symmetric pairs fail and are
// counted, and floods of punch requests stay within their bounds.
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

// kPublic open nodes, then a behind a router of kind `ka` and b behind one of kind `kb` (30 s mappings, as
// Linux conntrack keeps an unanswered flow). Everyone joins through node 0; then 150 s pass. a and b also
// exchange a datagram each at the same moment every minute (pubsub upkeep: a simultaneous open, which keeps
// their routers open towards each other): the last, at 120 s, is 30 s old by then and its holes have closed.
struct Net {
  Simulator sim;
  size_t a = 0, b = 0;
  Net(Type ka, Type kb, bool punch, uint64_t seed = 1) : sim(config(seed, punch)) {
    for (size_t i = 0; i < kPublic; ++i) sim.add_node();
    a = sim.add_node();
    b = sim.add_node();
    sim.put_behind(a, sim.add_router({ka, std::chrono::seconds(30), false}));
    sim.put_behind(b, sim.add_router({kb, std::chrono::seconds(30), false}));
    size_t waiting = 0;
    for (size_t i = 1; i < sim.size(); ++i) {
      ++waiting;
      sim.node(i).dht().bootstrap({sim.endpoint(0)}, [&](bool) { --waiting; });
      sim.run_until([&] { return waiting == 0; }, 30s);
    }
    sim.run_for(std::chrono::seconds(150));
  }
  static SimConfig config(uint64_t seed, bool punch) {
    SimConfig c;
    c.seed = seed;
    c.node.dht.punch = punch;
    c.node.dht.relay = false;  // punching alone: relays connect what it cannot (tests/sim_relay_test.cc)
    // Keepalives go to the closest contacts (dial-back confirms none in a network this small): with 3 of 9,
    // a and b (seed 1) are not each other's, whose keepalives would keep a hole open between them.
    c.node.dht.keepalive_peers = 3;
    return c;
  }
  // message_send from -> to; whether it was acknowledged.
  bool send(size_t from, size_t to) { return sim_send(sim, from, to); }
  DhtStats stats(size_t i) { return sim.node(i).dht().stats(); }
};

const char* name(Type t) {
  switch (t) {
    case Type::kFullCone: return "full_cone";
    case Type::kRestrictedCone: return "restricted_cone";
    case Type::kPortRestricted: return "port_restricted";
    case Type::kSymmetric: return "symmetric";
  }
  return "?";
}

}  // namespace

TEST(Punch, CodecRoundTripsAndRefusesMalformedBodies) {
  dht::PunchMessage ask{dht::PunchKind::kAsk, Identity::generate().id(), {}, {}};
  EXPECT_EQ(dht::decode_punch(dht::encode_punch(ask)), ask);
  EXPECT_EQ(dht::encode_punch(ask).size(), 21u);
  dht::PunchMessage intro{dht::PunchKind::kIntro, {}, Identity::generate().public_key(),
                          Endpoint::v4(0xc6120101, 4000)};
  Bytes b = dht::encode_punch(intro);
  EXPECT_EQ(b.size(), 1u + 32 + 7);
  EXPECT_EQ(dht::decode_punch(b), intro);
  b.push_back(0);
  EXPECT_FALSE(dht::decode_punch(b));  // trailing byte
  EXPECT_FALSE(dht::decode_punch(Bytes{3, 0}));
  EXPECT_FALSE(dht::decode_punch(Bytes{9}));
  EXPECT_FALSE(dht::decode_punch_endpoint(Bytes{4, 1, 2, 3, 4, 0, 0}));  // port 0
  EXPECT_FALSE(dht::decode_punch_endpoint(Bytes{4, 0, 0, 0, 0, 0, 1}));  // unspecified address
  EXPECT_EQ(dht::decode_punch_endpoint(Bytes{4, 1, 2, 3, 4, 0x0f, 0xa0}), Endpoint::v4(0x01020304, 4000));
}

TEST(Punch, ConeAndPortRestrictedPairsTalkOnlyThroughAPunchedHole) {
  struct Case {
    Type a, b;
  };
  for (Case c : {Case{Type::kPortRestricted, Type::kPortRestricted}, Case{Type::kRestrictedCone, Type::kPortRestricted},
                 Case{Type::kPortRestricted, Type::kRestrictedCone}, Case{Type::kRestrictedCone, Type::kRestrictedCone}}) {
    SCOPED_TRACE(std::string(name(c.a)) + " -> " + name(c.b));
    {
      Net off(c.a, c.b, false);
      EXPECT_FALSE(off.send(off.a, off.b));  // without punching the pair cannot talk
      EXPECT_EQ(off.stats(off.a).keepalives_sent, 0u);
    }
    Net on(c.a, c.b, true);
    DhtStats before = on.stats(on.a);
    EXPECT_GT(before.keepalives_sent, 0u);  // NATed, unreachable: it keeps its rendezvous mappings
    EXPECT_TRUE(on.send(on.a, on.b));
    DhtStats s = on.stats(on.a);
    EXPECT_EQ(s.punch_attempts, before.punch_attempts + 1);
    EXPECT_EQ(s.punch_ok, before.punch_ok + 1);
    EXPECT_EQ(s.punch_failed, before.punch_failed);
    EXPECT_TRUE(on.sim.node(on.a).dht().punched(on.sim.node(on.b).id()));
    EXPECT_GE(on.stats(on.b).punch_intros_served, 1u);
    // And back, through the same hole (no new punch).
    EXPECT_TRUE(on.send(on.b, on.a));
  }
}

TEST(Punch, SymmetricOnBothSidesFailsCleanlyAndIsCounted) {
  Net net(Type::kSymmetric, Type::kSymmetric, true);
  DhtStats before = net.stats(net.a);
  EXPECT_FALSE(net.send(net.a, net.b));
  net.sim.run_for(dht::Punch::kWindow);
  DhtStats s = net.stats(net.a);
  EXPECT_EQ(s.punch_attempts, before.punch_attempts + 1);
  EXPECT_EQ(s.punch_ok, before.punch_ok);
  EXPECT_EQ(s.punch_failed, before.punch_failed + 1);
  EXPECT_FALSE(net.sim.node(net.a).dht().punched(net.sim.node(net.b).id()));
  // The target still sent only its few holes towards the one address it was told.
  EXPECT_LE(net.stats(net.b).punch_holes_sent, static_cast<uint64_t>(dht::Punch::kHoles * dht::Punch::kTargetBurst));
}

TEST(Punch, SymmetricMeetsAnAddressFilteringConeAtItsNewPort) {
  // The cone side hears the symmetric side's HOLE from a port nobody announced and sends there (the engine
  // redirects the waiting request); with a port-restricted router on the other side nothing gets in.
  struct Case {
    Type a, b;
    bool works;
  };
  for (Case c : {Case{Type::kFullCone, Type::kSymmetric, true}, Case{Type::kRestrictedCone, Type::kSymmetric, true},
                 Case{Type::kSymmetric, Type::kRestrictedCone, true}, Case{Type::kSymmetric, Type::kFullCone, true},
                 Case{Type::kPortRestricted, Type::kSymmetric, false}, Case{Type::kSymmetric, Type::kPortRestricted, false}}) {
    SCOPED_TRACE(std::string(name(c.a)) + " -> " + name(c.b));
    Net net(c.a, c.b, true);
    DhtStats before = net.stats(net.a);
    EXPECT_EQ(net.send(net.a, net.b), c.works);
    net.sim.run_for(dht::Punch::kWindow);
    DhtStats s = net.stats(net.a);
    if (c.works) {
      EXPECT_EQ(s.punch_failed, before.punch_failed);
      EXPECT_TRUE(net.send(net.b, net.a));
    } else {
      EXPECT_EQ(s.punch_failed, before.punch_failed + 1);
      EXPECT_EQ(s.punch_ok, before.punch_ok);
    }
  }
}

TEST(Punch, TheRendezvousAskedAreTheTargetsNeighboursAsALookupFoundThem) {
  // 40 open nodes and k = 4: a's routing table holds none of b's 3 closest contacts, so the rendezvous a's
  // table would name have not heard from b lately. The lookup that resolves b for the message hands b's
  // contact out at the first answer naming it and goes on to b's neighbourhood; the punch that starts
  // meanwhile asks a's table's rendezvous, then those nodes once the lookup notes them (no second lookup,
  // docs/protocol.md 5.2): one of them serves the ask, and b's
  // mapping towards it is open (b keeps alive its plain closest contacts as well as its confirmed ones), so
  // the punch succeeds. Before, b kept alive only the confirmed-first set: the INTRO was filtered.
  SimConfig c;
  // A seed where the scenario holds (most seeds give a a table that knows one of b's 3 closest, or rendezvous
  // that heard from b: the assertion below on the premise, and the one on who served, catch either).
  // Seed 8 since find_node answers carry dial-back verdicts (seed 5 before: its a then knew one of b's
  // closest; seed 1 before the join's bucket refreshes stopped at half a bucket); of seeds 1-40, 13 give it.
  c.seed = 8;
  c.node.dht.k = 4;
  c.node.dht.keepalive_peers = 3;
  // The seed's premise was found with newcomers pinged at once, the default before the newcomer wait
  // (97907c9); the subject here is the punch's rendezvous, not the newcomer check.
  c.node.dht.newcomer_wait = std::chrono::seconds(0);
  // Likewise without the mapping check's stun asks (NatView, added later): b's asks open its NAT towards three
  // more nodes, so the rendezvous of a's table would have heard from b.
  c.node.dht.nat_view = false;
  // And with the join's refreshes ending at half of k (2 here), as they did before join_bucket_fill (3).
  c.node.dht.join_bucket_fill = 2;
  Simulator sim(c);
  for (int i = 0; i < 40; ++i) sim.add_node();
  size_t a = sim.add_node(), b = sim.add_node();
  sim.put_behind(a, sim.add_router({Type::kPortRestricted, std::chrono::seconds(30), false}));
  sim.put_behind(b, sim.add_router({Type::kPortRestricted, std::chrono::seconds(30), false}));
  for (size_t i = 1; i < sim.size(); ++i) {
    bool done = false;
    sim.node(i).dht().bootstrap({sim.endpoint(0)}, [&](bool) { done = true; });
    sim.run_until([&] { return done; }, 30s);
  }
  sim.run_for(std::chrono::seconds(150));
  NodeId bid = sim.node(b).id();
  auto near_b = sim.node(b).dht().closest_known(bid, 3);
  std::vector<size_t> near_b_nodes;
  for (size_t i = 0; i < sim.size(); ++i)
    for (const Contact& k : near_b)
      if (sim.node(i).id() == k.id) near_b_nodes.push_back(i);
  ASSERT_EQ(near_b_nodes.size(), near_b.size());
  auto served = [&](const std::vector<size_t>& nodes) {
    uint64_t n = 0;
    for (size_t i : nodes) n += sim.node(i).dht().stats().punch_asks_served;
    return n;
  };
  for (const Contact& k : near_b)
    for (const Contact& p : sim.node(a).dht().peers()) ASSERT_NE(k.id, p.id) << "the scenario needs a to know none of them";
  for (const Contact& p : sim.node(a).dht().peers())
    ASSERT_NE(p.id, bid) << "the scenario needs a lookup to resolve b";
  DhtStats before = sim.node(a).dht().stats();
  uint64_t served_before = served(near_b_nodes);
  std::optional<bool> ok;
  sim.node(a).messages().send(bid, "{\"hi\":1}", [&](bool r) { ok = r; });
  sim.run_until([&] { return ok.has_value(); }, 30s);
  DhtStats s = sim.node(a).dht().stats();
  EXPECT_EQ(s.punch_attempts, before.punch_attempts + 1);
  EXPECT_EQ(s.punch_lookups, before.punch_lookups);  // the resolving lookup's neighbourhood was used
  EXPECT_LE(s.punch_asks_sent, before.punch_asks_sent + 2 * dht::Punch::kAsks);  // the table's, the lookup's
  EXPECT_GE(served(near_b_nodes), served_before + 1);
  EXPECT_EQ(s.punch_ok, before.punch_ok + 1);
  EXPECT_TRUE(ok.value_or(false));
}

TEST(Punch, NoKeepalivesWhenOff) {
  SimConfig c;
  c.node.dht.keepalive_interval = Duration::zero();
  Simulator sim(c);
  for (int i = 0; i < 3; ++i) sim.add_node();
  sim.put_behind(2, sim.add_router({Type::kPortRestricted}));
  for (size_t i = 1; i < 3; ++i) sim.node(i).dht().bootstrap({sim.endpoint(0)}, [](bool) {});
  sim.run_for(std::chrono::minutes(1));
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(sim.node(i).dht().stats().keepalives_sent, 0u);
}

// A node behind a full cone is reachable (dial-back proved it) only while its router keeps the mapping, which
// it forgets after 30 s without traffic either way: it keeps sending keepalives though reachable, so strangers
// reach it whenever they try. Without them its mapping lapsed between its other traffic, and the scenario of
// SimRelay.PunchablePairs... lost every message to such a target (docs/protocol.md 5.2, "Who is the
// rendezvous").
TEST(Punch, AReachableNodeBehindANatKeepsItsMappingOpen) {
  Simulator sim(Net::config(1, true));
  const size_t open = 24;
  for (size_t i = 0; i < open; ++i) sim.add_node();
  size_t a = sim.add_node();
  sim.put_behind(a, sim.add_router({Type::kFullCone, std::chrono::seconds(30), false}));
  for (size_t i = 1; i < sim.size(); ++i) sim.node(i).dht().bootstrap({sim.endpoint(0)}, [](bool) {});
  sim.run_for(std::chrono::minutes(3));
  ASSERT_TRUE(sim.node(a).dht().stats().reachable);
  std::optional<Endpoint> seen;
  for (const auto& c : sim.node(0).dht().peers())
    if (c.id == sim.node(a).id()) seen = c.endpoint;
  ASSERT_TRUE(seen.has_value());
  uint64_t sent = sim.node(a).dht().stats().keepalives_sent;
  size_t closed = 0;
  for (int s = 0; s < 300; ++s) {
    sim.run_for(1s);
    closed += !sim.reachable(sim.endpoint(open - 1), *seen);
  }
  EXPECT_EQ(closed, 0u) << "seconds of 300 its mapping was gone";
  EXPECT_GE(sim.node(a).dht().stats().keepalives_sent, sent + 300 / 15 - 1);
}

TEST(Punch, KeepalivesHoldARendezvousMappingOpen) {
  // b behind a port-restricted router with 30 s mappings: its rendezvous still reach it after 150 s.
  Net net(Type::kPortRestricted, Type::kPortRestricted, true);
  size_t reached = 0;
  for (size_t r = 0; r < kPublic; ++r) {
    std::optional<bool> ok;
    Contact cb = net.sim.contact(net.b);
    for (const auto& c : net.sim.node(r).dht().peers())
      if (c.id == cb.id) cb = c;
    net.sim.node(r).ping(cb, [&](std::optional<NodeId> id) { ok = id.has_value(); });
    net.sim.run_until([&] { return ok.has_value(); }, 5s);
    reached += ok.value_or(false);
  }
  EXPECT_GE(reached, 2u);  // its keepalive_peers (3) closest contacts; a NATed one among them may miss
  DhtStats s = net.stats(net.b);
  // One round per 15 s over the join and the 150 s, 3 datagrams each.
  EXPECT_GE(s.keepalives_sent, 10u * 3 - 6);
  EXPECT_LE(s.keepalives_sent, 11u * 3);
}

namespace {
// A flood of hand-made kademlia_punch messages from `attackers` (node indexes) to node `to`.
void flood(Simulator& sim, const std::vector<size_t>& attackers, size_t to, const Bytes& body, bool oneway, int n) {
  for (int i = 0; i < n; ++i)
    for (size_t m : attackers) {
      Engine& e = NodeInternals::engine(sim.node(m));
      if (oneway) e.notify(sim.contact(to), Method::kPunch, body);
      else e.request(sim.contact(to), Method::kPunch, body, [](RpcResult&&) {});
    }
}
}  // namespace

TEST(Punch, FloodsOfIntroductionsAreBoundedPerTargetAddress) {
  // Lying rendezvous (one, then many) tell node 0 to punch towards a victim address: node 0 sends at most
  // kTargetBurst punches' worth of HOLEs there, the rest is refused and counted.
  Simulator sim;
  for (int i = 0; i < 22; ++i) sim.add_node();
  size_t target = 0;
  const Endpoint victim = Endpoint::v4(0xc6330001, 9999);
  uint64_t to_victim = 0;
  sim.set_send_tap([&](size_t from, const Endpoint& to, size_t) {
    if (from == target && to.addr == victim.addr) ++to_victim;
  });
  // Each introduction names another (valid) initiator key, so only the per-address budget stops them.
  auto intro = [&] {
    return dht::encode_punch({dht::PunchKind::kIntro, {}, Identity::generate().public_key(), victim});
  };
  for (int i = 0; i < 200; ++i) flood(sim, {1}, target, intro(), true, 1);
  sim.run_for(10s);
  DhtStats s = sim.node(target).dht().stats();
  const auto burst = static_cast<uint64_t>(dht::Punch::kTargetBurst);
  EXPECT_LE(s.punch_intros_served, burst + 1);
  EXPECT_GE(s.punch_refused, 190u);
  std::vector<size_t> many;
  for (size_t i = 2; i < 22; ++i) many.push_back(i);
  for (int i = 0; i < 20; ++i) flood(sim, many, target, intro(), true, 1);  // 400 introductions from 20 peers
  sim.run_for(10s);
  s = sim.node(target).dht().stats();
  // The burst, then kTargetRate a second, over these 20 s.
  EXPECT_LE(s.punch_intros_served, burst + static_cast<uint64_t>(dht::Punch::kTargetRate * 20) + 1);
  EXPECT_LE(to_victim, s.punch_intros_served * dht::Punch::kHoles);
  EXPECT_GE(s.punch_refused, 570u);
  auto drops = sim.node(target).stats().drop_count(kDropReasonNames[static_cast<size_t>(DropReason::kPunchRefused)]);
  EXPECT_EQ(drops, s.punch_refused);
}

TEST(Punch, FloodsOfIntroductionsToManyAddressesHitTheHoleBound) {
  // Many distinct victim addresses at once, rates opened wide: at most kMaxHoles introductions are served
  // at once (each takes kHoles x kHoleGap).
  SimConfig c;
  c.node.dht.punch_rate = 1000;
  c.node.dht.punch_total_rate = 1000;
  Simulator sim(c);
  for (int i = 0; i < 12; ++i) sim.add_node();
  uint64_t sent = 0;
  sim.set_send_tap([&](size_t from, const Endpoint& to, size_t) { sent += from == 0 && (to.addr[0] == 0xc6); });
  for (uint32_t v = 0; v < 100; ++v) {
    dht::PunchMessage intro{dht::PunchKind::kIntro, {}, Identity::generate().public_key(),
                            Endpoint::v4(0xc6400000 + (v << 8), 4000)};
    flood(sim, {1 + v % 11}, 0, dht::encode_punch(intro), true, 1);
  }
  sim.run_for(1ms * 100);
  DhtStats s = sim.node(0).dht().stats();
  EXPECT_EQ(s.punch_intros_served, dht::Punch::kMaxHoles);
  EXPECT_GE(s.punch_refused, 100u - dht::Punch::kMaxHoles);
  EXPECT_LE(sent, s.punch_intros_served * dht::Punch::kHoles);
  EXPECT_GT(s.punch_refused, 0u);
}

TEST(Punch, FloodsOfAsksAreRateLimitedAtTheRendezvous) {
  // One asker floods a rendezvous with asks for a live target: it introduces at most the asker's burst
  // (2 x punch_rate) plus its rate; the target follows within its own budget.
  Simulator sim;
  for (int i = 0; i < 6; ++i) sim.add_node();
  for (size_t i = 1; i < 6; ++i) sim.node(i).dht().bootstrap({sim.endpoint(0)}, [](bool) {});
  sim.run_for(10s);
  dht::PunchMessage ask{dht::PunchKind::kAsk, sim.node(2).id(), {}, {}};
  DhtStats before = sim.node(0).dht().stats();
  flood(sim, {1}, 0, dht::encode_punch(ask), false, 300);
  sim.run_for(5s);
  DhtStats s = sim.node(0).dht().stats();
  uint64_t served = s.punch_asks_served - before.punch_asks_served;
  const DhtConfig& dc = sim.node(0).dht().config();
  EXPECT_GE(served, 1u);
  // The asker's burst (2x punch_rate) and its rate over the requests' retransmissions (2 s).
  EXPECT_LE(served, static_cast<uint64_t>(2 * dc.punch_rate + 3 * dc.punch_rate));
  EXPECT_GE(s.punch_refused - before.punch_refused, 200u);
  // The target follows one introduction of this initiator at a time, within its per-address budget.
  EXPECT_LE(sim.node(2).dht().stats().punch_intros_served, static_cast<uint64_t>(dht::Punch::kTargetBurst) + 6);
  // A malformed body is refused and counted.
  flood(sim, {1}, 0, Bytes{1, 2, 3}, true, 1);
  sim.run_for(1s);
  EXPECT_EQ(sim.node(0).dht().stats().punch_refused, s.punch_refused + 1);
}

// A message queued while another to the same peer is in flight goes, once that one is acknowledged, where the
// peer answered from. Behind a symmetric router that is the port the punch found (the engine moved the waiting
// request there), not the one its contact names, which the router filters: the second message used to go to
// the contact's address until its timeout and fail (1 of ~150 punchable pairs of seed 45 of SimRelay's punch
// scenario, where two messages from one node to another were sent at once).
TEST(Punch, AMessageQueuedBehindAPunchedOneGoesWhereThePeerAnswered) {
  Net net(Type::kFullCone, Type::kSymmetric, true);
  NodeId bid = net.sim.node(net.b).id();
  auto notifies = [&] {
    uint64_t out = 0;
    for (auto& m : net.sim.node(net.a).stats().requests)
      if (m.method == "message_notify") out += m.out;
    return out;
  };
  const uint64_t before = notifies();
  std::optional<bool> first, second;
  net.sim.node(net.a).messages().send(bid, "{\"n\":1}", [&](bool r) { first = r; });
  ASSERT_TRUE(net.sim.run_until([&] { return notifies() > before; }, 5s));  // resolved, its batch in flight
  net.sim.node(net.a).messages().send(bid, "{\"n\":2}", [&](bool r) { second = r; });
  net.sim.run_until([&] { return first && second; }, 10s);
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(*first);
  EXPECT_TRUE(*second);
  EXPECT_TRUE(net.sim.node(net.a).dht().punched(bid));
}

// Likewise a stream: its open is the request the punch moves to the port the peer answers from, and its data
// must follow, not go to the address the peer's contact names.
TEST(Punch, AStreamOpenedThroughAPunchSendsItsDataWhereThePeerAnswered) {
  Net net(Type::kFullCone, Type::kSymmetric, true);
  std::optional<StreamId> id;
  bool opened = false;
  net.sim.node(net.a).streams().open(net.sim.node(net.b).id(), [&](std::optional<StreamId> s) {
    id = s;
    opened = true;
  });
  ASSERT_TRUE(net.sim.run_until([&] { return opened; }, 10s));
  ASSERT_TRUE(id);
  std::optional<size_t> wrote;
  net.sim.node(net.a).streams().write(*id, Bytes{'h', 'e', 'l', 'l', 'o'}, [&](std::optional<size_t> n) { wrote = n; });
  ASSERT_TRUE(net.sim.run_until([&] { return wrote.has_value(); }, 10s));
  EXPECT_EQ(wrote, 5u);
  Bytes got;
  net.sim.run_until([&] {
    if (auto r = net.sim.node(net.b).streams().read(*id, std::nullopt)) got.insert(got.end(), r->begin(), r->end());
    return got.size() >= 5;
  }, 10s);
  EXPECT_EQ(got, (Bytes{'h', 'e', 'l', 'l', 'o'}));
  EXPECT_TRUE(net.sim.node(net.a).dht().punched(net.sim.node(net.b).id()));  // the path under test was a punch's
}
