#include <gtest/gtest.h>

#include "engine/engine.h"
#include "node/node_internals.h"
#include "sim/rng.h"
#include "storjnet/simulator.h"

using namespace storjnet;

namespace {
struct PingRun {
  uint64_t sent = 0, answered = 0, trace = 0;
};

// N nodes each ping P random others (by contact, as a DHT would after a lookup).
PingRun run_pings(size_t n, int pings, uint64_t seed, LinkModel link = {}) {
  SimConfig cfg;
  cfg.seed = seed;
  cfg.link = link;
  Simulator sim(cfg);
  for (size_t i = 0; i < n; ++i) sim.add_node();
  PingRun run;
  sim::Rng pick(seed);
  for (size_t i = 0; i < n; ++i) {
    for (int p = 0; p < pings; ++p) {
      size_t j = pick.below(n - 1);
      if (j >= i) ++j;
      ++run.sent;
      NodeId want = sim.contact(j).id;
      sim.node(i).ping(sim.contact(j), [&run, want](std::optional<NodeId> id) {
        if (id && *id == want) ++run.answered;
      });
    }
  }
  sim.run_until([&] { return run.answered == run.sent; }, 30s);
  run.trace = sim.trace_hash();
  return run;
}
}  // namespace

TEST(Simulator, TenThousandNodesEachPingThreeOthers) {
  auto run = run_pings(10000, 3, 1);
  EXPECT_EQ(run.sent, 30000u);
  EXPECT_EQ(run.answered, run.sent);
}

TEST(Simulator, SameSeedSameTraceDifferentSeedDifferentTrace) {
  LinkModel lossy;
  lossy.loss = 0.05;
  lossy.duplicate = 0.05;
  lossy.jitter = 20ms;
  auto a = run_pings(300, 3, 42, lossy), b = run_pings(300, 3, 42, lossy), c = run_pings(300, 3, 43, lossy);
  EXPECT_EQ(a.trace, b.trace);
  EXPECT_EQ(a.answered, b.answered);
  EXPECT_NE(a.trace, c.trace);
  // Retries cover most of the loss: an attempt fails with 5% loss each way about 10% of the time, so all three
  // attempts of a ping fail about 0.1% of the time (some pings of 900 may fail, by seed).
  EXPECT_GE(a.answered * 100, a.sent * 99);
}

TEST(Simulator, FragmentedMessagesSurviveLossDuplicationAndReordering) {
  SimConfig cfg;
  cfg.seed = 5;
  cfg.link.loss = 0.05;
  cfg.link.duplicate = 0.05;
  cfg.link.jitter = 30ms;
  cfg.node.engine.rpc_timeout = 6s;
  cfg.node.engine.rpc_attempts = 6;
  Simulator sim(cfg);
  sim.add_node();
  sim.add_node();
  Bytes big(64 * 1024);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 13 + (i >> 9));
  int handled = 0;
  NodeInternals::engine(sim.node(1)).set_handler(Method::kMessageNotify, [&](const IncomingRequest& req, const Reply& r) {
    ++handled;
    EXPECT_TRUE(std::equal(req.payload.begin(), req.payload.end(), big.begin(), big.end()));
    r.ok(as_bytes("ok"));
  });
  int ok = 0, done = 0, issued = 0;
  // 20 messages of 64 KiB, 4 in flight at a time (about 220 fragments in the air).
  std::function<void()> issue = [&] {
    ++issued;
    NodeInternals::engine(sim.node(0)).request(sim.contact(1), Method::kMessageNotify, big, [&](RpcResult&& r) {
      ++done;
      ok += r.ok();
      if (issued < 20) issue();
    });
  };
  for (int k = 0; k < 4; ++k) issue();
  sim.run_until([&] { return done == 20; }, 60s);
  EXPECT_EQ(done, 20);
  EXPECT_EQ(ok, 20);
  EXPECT_GE(handled, 20);
  EXPECT_GT(NodeInternals::engine(sim.node(1)).drops().get(DropReason::kReplay), 0u);  // duplicates were seen and dropped
  EXPECT_GT(sim.stats().lost, 0u);
}

TEST(Simulator, PartitionsAndKilledNodesStopTraffic) {
  Simulator sim;
  for (int i = 0; i < 4; ++i) sim.add_node();
  sim.partition({0, 0, 1, 1});
  std::optional<NodeId> same, across = NodeId();
  sim.node(0).ping(sim.contact(1), [&](auto id) { same = id; });
  sim.node(0).ping(sim.contact(2), [&](auto id) { across = id; });
  sim.run_for(5s);
  EXPECT_TRUE(same);
  EXPECT_FALSE(across);
  sim.heal();
  sim.kill(3);
  std::optional<NodeId> healed, dead = NodeId();
  sim.node(0).ping(sim.contact(2), [&](auto id) { healed = id; });
  sim.node(0).ping(sim.contact(3), [&](auto id) { dead = id; });
  sim.run_for(5s);
  EXPECT_TRUE(healed);
  EXPECT_FALSE(dead);
}

TEST(Simulator, RestartedSenderIsAcceptedAfterItsNewEpoch) {
  Simulator sim;
  sim.add_node();
  sim.add_node();
  std::optional<NodeId> first, second;
  sim.node(0).ping(sim.contact(1), [&](auto id) { first = id; });
  sim.run_for(1s);
  sim.restart(0, NodeConfig{});
  sim.node(0).ping(sim.contact(1), [&](auto id) { second = id; });
  sim.run_for(1s);
  EXPECT_TRUE(first);
  EXPECT_TRUE(second);
  EXPECT_EQ(NodeInternals::engine(sim.node(1)).drops().get(DropReason::kStaleSession), 0u);
}
