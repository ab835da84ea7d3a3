// Cancellation owned by the engine (src/engine/engine.h, Engine::Scope): a service's RPCs, timers and bound
// continuations end with its scope, no callback of it runs afterwards, and every user callback of the public
// API runs exactly once, with its failure value when the service is destroyed first. LeakSanitizer (the ASan
// build) checks that nothing held through the engine leaks.
#include <gtest/gtest.h>

#include "common/callback_scope.h"
#include "common/once.h"
#include "engine/engine.h"
#include "sim/network_builder.h"
#include "storjnet/dht.h"
#include "storjnet/messages.h"
#include "storjnet/node.h"
#include "storjnet/pubsub.h"
#include "storjnet/streams.h"
#include "storjnet/simulator.h"
#include "test_env.h"

using namespace storjnet;
using storjnet::test::ManualEnv;
using storjnet::test::test_identity;

namespace {

struct Solo : ::testing::Test {
  ManualEnv env{3};
  // Idle-session sweeping off: the engine then keeps no timer of its own, so timer_count() counts the scopes'.
  static EngineConfig config() {
    EngineConfig c;
    c.session_idle = Duration::zero();
    return c;
  }
  Engine engine{env, test_identity(1), config()};
  // Nobody answers at this address: requests and hellos to it stay pending until they time out.
  Contact silent = Contact::from_key(test_identity(2).public_key(), *Endpoint::parse("10.0.0.2:4000"));

  void run_for(Duration d) {
    TimePoint end = env.now() + d;
    while (env.wake <= end) {
      env.advance(env.wake - env.now());
      env.wake = TimePoint::max();
      engine.on_wake();
    }
    env.advance(end - env.now());
  }
};

}  // namespace

TEST_F(Solo, EndingAScopeDropsItsTimersRpcsAndHellosAndNoneOfItsCallbacksRuns) {
  int ran = 0;
  auto s = std::make_unique<Engine::Scope>(engine.scope());
  engine.schedule(*s, 1s, [&] { ++ran; });
  engine.request(*s, silent, Method::kMessageNotify, as_bytes("x"), [&](RpcResult&&) { ++ran; });
  engine.ping(*s, silent, [&](std::optional<NodeId>) { ++ran; });
  engine.stun(*s, silent, [&](std::optional<Endpoint>) { ++ran; });
  engine.hello(*s, silent.endpoint, [&](std::optional<Contact>) { ++ran; });
  auto bound = s->bind<int>([&](int) { ++ran; });
  // Work of the engine itself (no scope) is not touched.
  int own = 0;
  engine.request(silent, Method::kMessageNotify, as_bytes("y"), [&](RpcResult&& r) {
    EXPECT_EQ(r.status, RpcStatus::kTimeout);
    ++own;
  });
  EXPECT_EQ(engine.pending_rpcs(), 4u);
  s.reset();
  EXPECT_EQ(engine.pending_rpcs(), 1u);
  bound(1);
  run_for(1min);
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(own, 1);
  EXPECT_EQ(engine.pending_rpcs(), 0u);
  EXPECT_EQ(engine.timer_count(), 0u);
}

TEST_F(Solo, AnEndedScopeStartsNothing) {
  Engine::Scope s = engine.scope();
  s.end();
  EXPECT_FALSE(s.active());
  int ran = 0;
  EXPECT_FALSE(engine.schedule(s, 1s, [&] { ++ran; }));
  engine.request(s, silent, Method::kMessageNotify, {}, [&](RpcResult&&) { ++ran; });
  s.bind<>([&] { ++ran; })();
  run_for(1min);
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(engine.pending_rpcs(), 0u);
  EXPECT_EQ(engine.timer_count(), 0u);
  // A moved-from scope is ended; the moved-to one carries on.
  Engine::Scope a = engine.scope();
  engine.schedule(a, 1s, [&] { ++ran; });
  Engine::Scope b = std::move(a);
  EXPECT_FALSE(a.active());
  run_for(2s);
  EXPECT_EQ(ran, 1);
}

TEST_F(Solo, AScopeOfAnotherEngineIsRefusedLoudly) {
  ManualEnv other_env{4};
  Engine other{other_env, test_identity(5), config()};
  Engine::Scope theirs = other.scope();
  int ran = 0;
  EXPECT_THROW(engine.schedule(theirs, 1s, [&] { ++ran; }), std::invalid_argument);
  EXPECT_THROW(engine.request(theirs, silent, Method::kMessageNotify, {}, [&](RpcResult&&) { ++ran; }),
               std::invalid_argument);
  EXPECT_THROW(engine.hello(theirs, silent.endpoint, [&](std::optional<Contact>) { ++ran; }), std::invalid_argument);
  EXPECT_THROW(engine.ping(theirs, silent, [&](std::optional<NodeId>) { ++ran; }), std::invalid_argument);
  EXPECT_THROW(engine.stun(theirs, silent, [&](std::optional<Endpoint>) { ++ran; }), std::invalid_argument);
  EXPECT_EQ(engine.pending_rpcs(), 0u);
  EXPECT_EQ(engine.timer_count(), 0u);
  theirs.end();  // an ended scope is no one's: it starts nothing, quietly, on any engine
  EXPECT_FALSE(engine.schedule(theirs, 1s, [&] { ++ran; }));
  run_for(1min);
  EXPECT_EQ(ran, 0);
}

TEST_F(Solo, OnceRunsItsCancelledValueWhenTheScopeDropsItsHolderAndTheEngineMayBeCalledThen) {
  std::vector<std::optional<int>> got;
  auto s = std::make_unique<Engine::Scope>(engine.scope());
  Once<std::optional<int>> done([&](std::optional<int> v) {
    got.push_back(v);
    // The engine is consistent when the cancelled callback runs: it may start more work.
    engine.request(silent, Method::kMessageNotify, {}, [](RpcResult&&) {});
  }, std::nullopt);
  engine.request(*s, silent, Method::kMessageNotify, {}, [done](RpcResult&&) { done(1); });
  engine.schedule(*s, 1s, [done] { done(2); });
  done = {};  // only the engine holds it now
  EXPECT_TRUE(got.empty());
  s.reset();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], std::nullopt);
  EXPECT_EQ(engine.pending_rpcs(), 1u);  // the one the callback started
  run_for(1min);
  EXPECT_EQ(got.size(), 1u);
}

TEST(Once, RunsExactlyOnceWhicheverWayItEnds) {
  int calls = 0, last = 0;
  {
    Once<int> a([&](int v) { ++calls, last = v; }, -1);
    Once<int> copy = a;
    a(5);
    copy(6);
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(last, 5);
  { Once<int> b([&](int v) { ++calls, last = v; }, -1); }
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(last, -1);
}

TEST(CallbackScope, BoundFunctionsDieWithTheScopeOrTheirLastCopy) {
  int calls = 0;
  auto scope = std::make_unique<CallbackScope>();
  auto once = scope->bind<int>([&](int v) { calls += v; });
  auto each = scope->bind_each<int>([&](int v) { calls += v; });
  {
    auto dropped = scope->bind<>([&] { ++calls; });
  }
  EXPECT_EQ(scope->size(), 2u);  // a bound function whose every copy died is forgotten
  once(1);
  once(10);  // one-shot
  each(100);
  each(100);
  EXPECT_EQ(calls, 201);
  EXPECT_EQ(scope->size(), 1u);
  scope.reset();
  each(1000);
  EXPECT_EQ(calls, 201);
}

// A Dht destroyed while its engine lives on: nothing of it stays in the engine, and each user callback ran
// exactly once with its failure value.
TEST_F(Solo, ADestroyedDhtLeavesNothingInTheEngineAndAnswersEveryCallbackOnce) {
  DhtConfig cfg;
  cfg.dial_back = false;
  auto dht = std::make_unique<Dht>(engine, cfg, make_memory_storage());
  int boots = 0, puts = 0;
  bool boot_ok = true;
  PutResult put;
  dht->bootstrap({silent.endpoint}, [&](bool ok) { ++boots, boot_ok = ok; });  // a hello in flight
  dht->put("k", as_bytes("v"), [&](const PutResult& r) { ++puts, put = r; });  // no peers: a retry timer
  EXPECT_GT(engine.timer_count(), 0u);
  EXPECT_EQ(boots + puts, 0);
  dht.reset();
  EXPECT_EQ(boots, 1);
  EXPECT_FALSE(boot_ok);
  EXPECT_EQ(puts, 1);
  EXPECT_FALSE(put.ok);
  EXPECT_NE(put.error.find("cancelled"), std::string::npos);
  EXPECT_EQ(engine.pending_rpcs(), 0u);
  EXPECT_EQ(engine.timer_count(), 0u);  // maintenance, keepalive, hello retries, put retry: all gone
  run_for(1h);
  EXPECT_EQ(boots + puts, 2);
}

namespace {
NodeConfig sim_config() {
  NodeConfig c;
  c.dht.republish_interval = 60s;
  c.dht.bucket_refresh = 10min;
  c.dht.expire_after = 1h;
  return c;
}

// A network of n joined nodes.
std::unique_ptr<Simulator> joined(uint64_t seed, size_t n) {
  SimConfig cfg;
  cfg.seed = seed;
  cfg.node = sim_config();
  auto sim = std::make_unique<Simulator>(cfg);
  for (size_t i = 0; i < n; ++i) sim->add_node(cfg.node);
  EXPECT_EQ(sim::join_network(*sim, seed), n);
  return sim;
}
}  // namespace

// A node restarted (destroyed) with every kind of DHT operation in flight, a stun walk among them: each
// callback runs exactly once, with its failure value, during the destruction, and nothing leaks.
TEST(CancelSim, NodeDestroyedWithDhtOperationsAndAStunWalkInFlight) {
  auto owned = joined(21, 40);
  Simulator& sim = *owned;
  Dht& d = sim.node(3).dht();
  int stuns = 0, finds = 0, contacts = 0, gets = 0, alls = 0, puts = 0, closest = 0, boots = 0;
  std::optional<Endpoint> stun_got = Endpoint();
  GetResult get;
  get.value = Bytes{1};
  PutResult put;
  put.ok = true;
  d.stun([&](std::optional<Endpoint> e) { ++stuns, stun_got = e; });
  d.find(sim.contact(30).id, [&](std::optional<Endpoint>) { ++finds; });
  d.find_contact(NodeId::hash_of(as_bytes("nobody")), [&](std::optional<Contact>) { ++contacts; });
  d.get("key", [&](GetResult r) { ++gets, get = r; });
  d.get_all("key", [&](GetAllResult) { ++alls; });
  d.put("key", as_bytes("value"), [&](const PutResult& r) { ++puts, put = r; });
  d.closest(sim.contact(31).id, [&](std::vector<Contact>) { ++closest; });
  d.bootstrap({sim.endpoint(7)}, [&](bool) { ++boots; });
  sim.node(3).messages().send(sim.contact(9).id, "\"hi\"", [](bool) {});
  sim.node(3).pubsub().subscribe("topic");
  sim.node(3).pubsub().publish("topic", "\"event\"");
  EXPECT_EQ(stuns + finds + contacts + gets + alls + puts + closest + boots, 0);  // all in flight
  sim.restart(3, sim_config());
  EXPECT_EQ(stuns, 1);
  EXPECT_FALSE(stun_got);
  EXPECT_EQ(finds, 1);
  EXPECT_EQ(contacts, 1);
  EXPECT_EQ(gets, 1);
  EXPECT_FALSE(get.value);
  EXPECT_EQ(alls, 1);
  EXPECT_EQ(puts, 1);
  EXPECT_FALSE(put.ok);
  EXPECT_EQ(closest, 1);
  EXPECT_EQ(boots, 1);
  sim.run_for(2min);  // the old node's work is gone: nothing of it runs against the new one
  EXPECT_EQ(stuns + finds + contacts + gets + alls + puts + closest + boots, 8);
}

// message_send to a node that does not answer: the batch is in flight when the sender is destroyed.
TEST(CancelSim, NodeDestroyedWithMessagesInFlightAnswersEachFalseOnce) {
  auto owned = joined(22, 20);
  Simulator& sim = *owned;
  sim.kill(9);
  int calls = 0, trues = 0;
  for (int i = 0; i < 5; ++i)
    sim.node(3).messages().send(sim.contact(9).id, "\"m" + std::to_string(i) + "\"", [&](bool ok) { ++calls, trues += ok; });
  sim.run_for(100ms);
  EXPECT_EQ(calls, 0);
  sim.restart(3, sim_config());
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(trues, 0);
  sim.run_for(1min);
  EXPECT_EQ(calls, 5);
}

// Streams (src/streams): a node destroyed with an open in flight, a write waiting for its acknowledgement, a
// writer and a reader waiting for the stream, and a close waiting for the peer: each callback runs exactly
// once, with its failure value, and nothing of the old node runs afterwards.
TEST(CancelSim, NodeDestroyedWithStreamOperationsInFlightAnswersEachOnce) {
  auto owned = joined(23, 20);
  Simulator& sim = *owned;
  Streams& st = sim.node(3).streams();
  auto open_to = [&](size_t peer) {
    std::optional<StreamId> id;
    bool done = false;
    st.open(sim.contact(peer).id, [&](std::optional<StreamId> r) { id = r, done = true; });
    sim.run_until([&] { return done; }, 30s);
    return id;
  };
  auto a = open_to(4), b = open_to(5);
  ASSERT_TRUE(a && b);
  sim.kill(9);
  int opens = 0, writes = 0, writables = 0, readables = 0, closes = 0;
  std::optional<StreamId> opened = StreamId{};
  std::optional<size_t> written = 0;
  bool closed = true;
  st.open(sim.contact(9).id, [&](std::optional<StreamId> r) { ++opens, opened = r; });  // nobody answers
  Bytes big(st.writable(*a) + 1, 7);  // fills the peer's window: the writer waits for credit
  st.write(*a, big, [&](std::optional<size_t> n) { ++writes, written = n; });
  st.on_writable(*a, [&] { ++writables; });
  st.on_readable(*a, [&] { ++readables; });  // the peer sends nothing
  st.close(*b, [&](bool ok) { ++closes, closed = ok; });
  EXPECT_EQ(opens + writes + writables + readables + closes, 0);  // all in flight
  sim.restart(3, sim_config());
  EXPECT_EQ(opens, 1);
  EXPECT_FALSE(opened);
  EXPECT_EQ(writes, 1);
  EXPECT_FALSE(written);
  EXPECT_EQ(writables, 1);
  EXPECT_EQ(readables, 1);
  EXPECT_EQ(closes, 1);
  EXPECT_FALSE(closed);
  sim.run_for(1min);
  EXPECT_EQ(opens + writes + writables + readables + closes, 5);
}
