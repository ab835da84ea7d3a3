// Relays (src/dht/relay.h, docs/protocol.md 5.3) on the simulator's NAT routers and virtual time: pairs that
// no punch can connect (symmetric routers) exchange messages and streams through a public relay.
#include <gtest/gtest.h>

#include "node/node_internals.h"
#include "sim_nat_pair.h"
#include "sim/nat_scenario.h"
#include "storjnet/messages.h"
#include "storjnet/node.h"
#include "storjnet/simulator.h"
#include "storjnet/streams.h"

using namespace storjnet;
using Type = NatModel::Type;

namespace {

constexpr size_t kPublic = NatPair::kPublic;

// The relays' own tests: the upgrade of relayed paths (tests/sim_upgrade_test.cc) is off, so a relayed pair
// stays relayed.
struct Net : NatPair {
  Net(Type ka, Type kb, bool relay, const std::optional<NodeConfig>& a_config = std::nullopt)
      : NatPair(ka, kb, config(relay), a_config) {}
  static SimConfig config(bool relay) {
    SimConfig c;
    c.seed = 5;
    c.node.dht.relay = relay;
    c.node.dht.upgrade = false;
    return c;
  }
};

}  // namespace

TEST(SimRelay, SymmetricPairsTalkThroughARelay) {
  {
    Net off(Type::kSymmetric, Type::kSymmetric, false);
    EXPECT_FALSE(off.send(off.a, off.b));  // no punch can connect them, and no relay is offered
  }
  Net net(Type::kSymmetric, Type::kSymmetric, true);
  for (size_t i : {net.a, net.b}) EXPECT_GE(net.sim.node(i).dht().stats().relay_reservations_held, 1u) << i;
  EXPECT_TRUE(net.send(net.a, net.b));
  EXPECT_TRUE(net.relayed(net.a, net.b));
  EXPECT_TRUE(net.relayed(net.b, net.a));  // b answers through the relay a came by
  EXPECT_TRUE(net.send(net.b, net.a));     // and sends through it
  EXPECT_EQ(net.sim.node(net.a).dht().stats().relay_fallbacks_found, 1u);
  uint64_t forwarded = 0, refused = 0;
  for (size_t i = 0; i < kPublic; ++i) {
    forwarded += net.sim.node(i).dht().stats().relay_forwarded;
    refused += net.sim.node(i).dht().stats().relay_refused;
  }
  EXPECT_GE(forwarded, 4u);
  // Messages after the first go through at once.
  TimePoint start = net.sim.now();
  EXPECT_TRUE(net.send(net.a, net.b));
  EXPECT_LT(net.sim.now() - start, std::chrono::seconds(1));
}

TEST(SimRelay, StreamThroughARelayIsBitExact) {
  Net net(Type::kSymmetric, Type::kPortRestricted, true);
  ASSERT_TRUE(net.send(net.a, net.b));  // the relayed path is set up by the first exchange
  ASSERT_TRUE(net.relayed(net.a, net.b));
  Streams& sa = net.sim.node(net.a).streams();
  Streams& sb = net.sim.node(net.b).streams();
  auto stream = net.open_stream(net.a, net.b);
  ASSERT_TRUE(stream);
  auto [id, in] = *stream;
  Bytes data(2048 * 1024);  // past the circuit's burst (256 KiB): the steady rate
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
  size_t sent = 0;
  Bytes got;
  TimePoint start = net.sim.now();
  std::function<void()> pump = [&] {
    while (sent < data.size()) {
      size_t n = std::min(sa.writable(id), data.size() - sent);
      if (n == 0) return sa.on_writable(id, pump);
      size_t at = sent;
      sent += n;
      sa.write(id, ByteView(data).subspan(at, n), [](std::optional<size_t>) {});
    }
  };
  pump();
  net.sim.run_until([&] {
    if (auto r = sb.read(in, std::nullopt)) got.insert(got.end(), r->begin(), r->end());
    return got.size() >= data.size();
  }, std::chrono::seconds(120));
  EXPECT_EQ(got, data);
  double secs = std::chrono::duration<double>(net.sim.now() - start).count();
  double kib_per_s = 2048 / std::max(secs, 1e-3);
  RecordProperty("relayed_stream_kib_per_s", std::to_string(static_cast<int>(kib_per_s)));
  // The relay passes 256 KiB/s of the circuit's datagrams, both ways (relay_pair_rate); the data's share of
  // that, with headers and acknowledgements, is about 200 KiB/s. Paced in one-datagram chunks the stream gets
  // 197 (32 KiB chunks: 117, most of each loss spent resending whole chunks).
  EXPECT_GT(kib_per_s, 170);
}

TEST(SimRelay, NatScenarioSymmetricPairsDeliverThroughRelays) {
  sim::NatScenarioConfig c;
  c.seed = 2;
  c.nodes = 150;
  c.natted = 0.6;
  c.full_cone = 0;
  c.restricted_cone = 0;
  c.port_restricted = 0.5;
  c.symmetric = 0.5;
  c.settle = std::chrono::seconds(60);
  c.puts = 10;
  c.subscribers = 10;
  c.events = 10;
  c.nat_pairs = 40;
  sim::NatScenarioReport r = sim::run_nat_scenario(c);
  using R = sim::NatScenarioReport;
  EXPECT_GT(r.pairs[R::kBothSymmetric], 5u);
  // Without relays no both-symmetric pair gets through (sim-nat: 0/9). With them, every pair, all sent at once,
  // within message_send's 5 s (docs/protocol.md 5.2 "Finding B": the resolver no longer waits for the end of
  // a lookup that crosses NATed neighbourhoods).
  for (size_t cls = 0; cls < R::kPairClasses; ++cls) EXPECT_EQ(r.pairs_ok[cls], r.pairs[cls]) << "class " << cls;
  EXPECT_EQ(r.pairs_relayed[R::kBothSymmetric], r.pairs_ok[R::kBothSymmetric]);
  EXPECT_GT(r.relay_forwarded, 0u);
  EXPECT_EQ(r.gets_ok, r.gets);
  EXPECT_EQ(r.events_delivered, r.events_expected);
}

// Issue 12: every pair a punch can connect (endpoint-independent mapping on both sides, or a symmetric router
// against a full or restricted cone) is punched or reached directly, never relayed; a relay serves only the pairs
// nothing else connects. In a few-hundred-node network a NATed target's true neighbours, which a lookup of it
// finds, often never heard from it (it joined before them, and answers hand out confirmed nodes first), so no
// rendezvous asked could introduce the initiator and the fallback relayed the pair: here 8 of 114 pairs with no
// symmetric router and 1 of 24 symmetric-against-cone pairs before. The target's relays, which it renews its
// reservations with, are rendezvous too (docs/protocol.md 5.2, "B's relays are rendezvous too").
static sim::NatScenarioConfig punch_scenario(uint64_t seed, double symmetric, size_t workload) {
  sim::NatScenarioConfig c;
  c.seed = seed;
  c.nodes = 300;
  c.natted = 0.6;
  c.symmetric = symmetric;  // full cone 0.2, restricted cone 0.15, port-restricted 0.45 (the defaults)
  c.puts = c.subscribers = c.events = workload;
  c.nat_pairs = 200;
  return c;
}

// Every pair of the punchable classes delivered, none relayed.
static void expect_punchable_pairs_punched(const sim::NatScenarioReport& r) {
  using R = sim::NatScenarioReport;
  for (R::PairClass cls : {R::kNeitherSymmetric, R::kOneSymmetricPunchable}) {
    SCOPED_TRACE(cls);
    if (cls == R::kNeitherSymmetric) {
      EXPECT_GT(r.pairs[cls], 20u);
    }
    EXPECT_EQ(r.pairs_ok[cls], r.pairs[cls]);
    EXPECT_EQ(r.pairs_relayed[cls], 0u);
    EXPECT_EQ(r.pairs_punched[cls] + r.pairs_direct[cls], r.pairs[cls]);
  }
}

// Not yet true of every network: over seeds 1-46 of this scenario, one (42) leaves 1 of its ~150 punchable pairs
// relayed (with a join_bucket_fill of 5: 3 seeds, 7, 38 and 40). Seed 45 lost a pair until a message queued
// behind a punched one went where the peer answered from
// (Punch.AMessageQueuedBehindAPunchedOneGoesWhereThePeerAnswered). Before, 8 seeds failed: in the two traced, a
// target behind a full cone, reachable but idle, whose router had forgotten its mapping, lost every message sent
// to it. Such a node now sends keepalives (Punch.AReachableNodeBehindANatKeepsItsMappingOpen).
TEST(SimRelay, PunchablePairsArePunchedNeverRelayed) {
  using R = sim::NatScenarioReport;
  R r = sim::run_nat_scenario(punch_scenario(2, 0.25, 10));
  EXPECT_GT(r.pairs[R::kOneSymmetricPunchable], 20u);
  expect_punchable_pairs_punched(r);
  // Symmetric against port-restricted: only a relay connects them, and one does.
  EXPECT_GT(r.pairs[R::kOneSymmetricPortRestricted], 20u);
  EXPECT_EQ(r.pairs_relayed[R::kOneSymmetricPortRestricted], r.pairs[R::kOneSymmetricPortRestricted]);
}

// The target's relay list is read by a DHT get, which can end after the fallback was due (1 s, and the hold
// while the punch was pending): the listed relays are asked as rendezvous then, and the punch connects the pair
// a round trip later. Relayed at once, the message's answer came back through the relay and set the relayed
// path again after the punch's first direct datagram had ended it: 3 of 200 pairs here stayed relayed. The
// fallback now waits while those asks are pending (Relay::kListHold).
TEST(SimRelay, ALateRelayListHoldsTheFallbackWhileItsRelaysAreAsked) {
  expect_punchable_pairs_punched(sim::run_nat_scenario(punch_scenario(1, 0, 20)));
}

// A punch connects a full cone with a symmetric router. Here the symmetric side b already reaches a through a
// relay (as when a's request came that way first and b answers by it): b's HOLE datagrams must still go
// directly, else they go wrapped to the relay, the hole never opens, and the pair stays relayed although a
// punch works (seen on the netlab with the slower ASan daemons). a runs no dial-back: a full cone proves itself
// reachable, and b's keepalives (which go to the confirmed contacts nearest its id too) may then keep b's
// mapping towards a open, so that a reaches b without any punch; this test needs b's router closed to a.
TEST(SimRelay, HolesBypassARelayedPath) {
  NodeConfig a_config = Net::config(true).node;
  a_config.dht.dial_back = false;
  Net net(Type::kFullCone, Type::kSymmetric, true, a_config);
  net.engine(net.b).set_via(net.sim.node(net.a).public_key(), net.sim.contact(0));
  ASSERT_TRUE(net.relayed(net.b, net.a));
  EXPECT_TRUE(net.send(net.a, net.b));
  EXPECT_TRUE(net.sim.node(net.a).dht().punched(net.sim.node(net.b).id()));
  EXPECT_FALSE(net.relayed(net.a, net.b));
  EXPECT_FALSE(net.relayed(net.b, net.a));  // a's first direct datagram ended b's relayed path
}
