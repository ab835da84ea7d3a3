// A node no lookup finds is reached through the relay list it published (Relay::reach, docs/protocol.md 5.3
// "Found by its relay list"), on the simulator's NAT routers and virtual time. b sits behind a symmetric router
// and holds relay reservations; a does not punch (DhtConfig::punch off), so find_contact returns only a target
// that answered the lookup itself, which b, answering no stranger, never does: before, a's message_send to b
// failed whatever b published.
#include <gtest/gtest.h>

#include <algorithm>

#include "dht/codec.h"
#include "dht/relay.h"
#include "dht/signed_value.h"
#include "node/node_internals.h"
#include "sim_send.h"
#include "storjnet/node.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using Type = NatModel::Type;

namespace {

constexpr size_t kPublic = 12;

// kPublic open nodes join through node 0; `before_b(sim)` runs; b joins from behind a symmetric router (30 s
// mappings) and 150 s pass (it reserves relays and publishes its list); then a joins from behind a
// port-restricted router (b cannot reach it first, so a's table never holds b), a node that does not punch, and
// 20 s pass.
struct Net {
  Simulator sim;
  size_t a = 0, b = 0;
  explicit Net(const std::function<void(Simulator&, const NodeId& b)>& before_b = nullptr) : sim(config()) {
    for (size_t i = 0; i < kPublic; ++i) sim.add_node();
    b = sim.add_node();
    join(1, kPublic);
    if (before_b) before_b(sim, sim.node(b).id());
    sim.put_behind(b, sim.add_router({Type::kSymmetric, std::chrono::seconds(30), false}));
    join(b, b + 1);
    sim.run_for(std::chrono::seconds(150));
    NodeConfig no_punch = config().node;
    no_punch.dht.punch = false;
    a = sim.add_node(no_punch);
    sim.put_behind(a, sim.add_router({Type::kPortRestricted, std::chrono::seconds(30), false}));
    join(a, a + 1);
    sim.run_for(std::chrono::seconds(20));
  }
  void join(size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      bool done = false;
      sim.node(i).dht().bootstrap({sim.endpoint(0)}, [&](bool) { done = true; });
      sim.run_until([&] { return done; }, std::chrono::seconds(30));
    }
  }
  static SimConfig config() {
    SimConfig c;
    c.seed = 3;
    return c;
  }
  Engine& engine(size_t i) { return NodeInternals::engine(sim.node(i)); }
  const PublicKey& key(size_t i) { return engine(i).identity().public_key(); }
  bool knows(size_t i, size_t j) {
    auto peers = sim.node(i).dht().peers();
    return std::any_of(peers.begin(), peers.end(), [&](const Contact& c) { return c.id == sim.node(j).id(); });
  }
  uint64_t forwarded() {
    uint64_t n = 0;
    for (size_t i = 0; i < kPublic; ++i) n += sim.node(i).dht().stats().relay_forwarded;
    return n;
  }
};

}  // namespace

TEST(SimRelayList, ATargetNoLookupFindsIsReachedThroughItsRelays) {
  Net net;
  ASSERT_GE(net.sim.node(net.b).dht().stats().relay_reservations_held, 1u);
  ASSERT_FALSE(net.knows(net.a, net.b));  // a learns b from no table of its own
  // Without the relay list: the lookup ends without b, and message_send fails.
  EXPECT_TRUE(sim_send(net.sim, net.a, net.b));
  auto via = net.engine(net.a).via(net.key(net.b));
  ASSERT_TRUE(via);
  auto relays = net.sim.node(net.b).dht().stats().relay_reservations_held;
  EXPECT_GE(relays, 1u);
  EXPECT_GE(net.forwarded(), 2u);  // the message and its answer
  EXPECT_EQ(net.sim.node(net.a).dht().stats().relay_fallbacks_found, 1u);
  EXPECT_TRUE(net.engine(net.b).via(net.key(net.a)));  // b answers through the relay a came by
  EXPECT_TRUE(sim_send(net.sim, net.b, net.a));         // and sends through it
  // Later messages go through at once (the resolver keeps the contact, the engine the relayed path).
  TimePoint start = net.sim.now();
  EXPECT_TRUE(sim_send(net.sim, net.a, net.b));
  EXPECT_LT(net.sim.now() - start, std::chrono::seconds(1));
}

// Anyone can put under b's key name. Here m put a list naming x (a relay of its choice) before b joined: a
// squat. Before self-named keys, the replicas kept m's value and refused b's (the first owner keeps a key while it
// lives), so a, reading only what b's own key signed, found no list and message_send failed. Now b's list
// displaces m's at every replica it reaches (the key is b's own name), a reaches b through b's relays, never
// through m's list, and m cannot take the key back.
TEST(SimRelayList, ASquattersListUnderTheTargetsNameGivesWayToTheTargets) {
  const size_t m = 1, x = 2;
  std::optional<PutResult> forged;
  Net net([&](Simulator& sim, const NodeId& b) {
    Bytes list = dht::encode_relay_list({sim.contact(x)});
    sim.node(m).dht().put(dht::relay_list_key(b), list, [&](const PutResult& r) { forged = r; });
    sim.run_until([&] { return forged.has_value(); }, std::chrono::seconds(30));
  });
  ASSERT_TRUE(forged && forged->ok);
  ASSERT_FALSE(net.knows(net.a, net.b));
  auto total = [&](uint64_t DhtStats::*field) {
    uint64_t n = 0;
    for (size_t i = 0; i < net.sim.size(); ++i) n += net.sim.node(i).dht().stats().*field;
    return n;
  };
  EXPECT_GE(total(&DhtStats::squats_displaced), 1u);
  // a reads b's list and sends through one of b's relays.
  EXPECT_TRUE(sim_send(net.sim, net.a, net.b));
  auto via = net.engine(net.a).via(net.key(net.b));
  ASSERT_TRUE(via);
  std::optional<GetResult> got;
  net.sim.node(net.a).dht().get(dht::relay_list_key(net.sim.node(net.b).id()), net.sim.node(net.b).id(),
                                [&](GetResult r) { got = std::move(r); });
  net.sim.run_until([&] { return got.has_value(); }, std::chrono::seconds(30));
  ASSERT_TRUE(got && got->value);
  auto listed = dht::decode_relay_list(*got->value);
  ASSERT_TRUE(listed);
  EXPECT_TRUE(std::any_of(listed->begin(), listed->end(), [&](const Contact& c) { return c.id == via->id; }));
  EXPECT_FALSE(net.engine(net.a).via(net.key(m)));
  EXPECT_EQ(net.sim.node(net.a).dht().stats().relay_fallbacks_found, 1u);
  // m stores its list again, newer, at every other node: each one holding b's list refuses it.
  Engine& attacker = net.engine(m);
  StoredValue again;
  again.key = dht_key(dht::relay_list_key(net.sim.node(net.b).id()));
  again.value = dht::encode_relay_list({net.sim.contact(x)});
  again.version = attacker.env().unix_us();
  dht::sign_value(again, attacker.identity(), attacker.config().network_id);
  uint64_t refused_before = total(&DhtStats::squats_refused);
  size_t answered = 0, refused = 0;
  for (size_t i = 0; i < kPublic; ++i) {
    if (i == m) continue;
    attacker.request(net.sim.contact(i), Method::kStore, dht::encode_store(again), [&](RpcResult&& r) {
      ++answered;
      if (r.ok() && !dht::decode_bool(r.payload).value_or(true)) ++refused;
    }, RpcOptions{std::chrono::seconds(2), 1});
  }
  net.sim.run_until([&] { return answered == kPublic - 1; }, std::chrono::seconds(10));
  EXPECT_GE(refused, kPublic / 2);
  EXPECT_EQ(total(&DhtStats::squats_refused) - refused_before, refused);
  got.reset();
  net.sim.node(net.a).dht().get(dht::relay_list_key(net.sim.node(net.b).id()), net.sim.node(net.b).id(),
                                [&](GetResult r) { got = std::move(r); });
  net.sim.run_until([&] { return got.has_value(); }, std::chrono::seconds(30));
  ASSERT_TRUE(got && got->value);
  EXPECT_EQ(got->owner, net.sim.node(net.b).id());
}
