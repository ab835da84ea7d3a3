// The status page's data (docs/api.md, "Status page"): StatusHistory's ring and per-interval counts, the
// status JSON of simulated nodes (peers, routing buckets, subscriptions and their recent events, the
// network's edges), and the page's built-in files. The page itself, in a browser against a real daemon, is
// tests/browser (ctest Browser.StatusPage).
#include <gtest/gtest.h>

#include <set>

#include "api/status_board.h"
#include "api/status_history.h"
#include "api/ui_assets.h"
#include "node/node_internals.h"
#include "sim/network_builder.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using namespace storjnet::api;
using namespace std::chrono_literals;

namespace {

NodeStats node_stats(uint64_t dg_in, uint64_t dg_out, uint64_t auth_failed, uint64_t replay) {
  NodeStats s;
  s.datagrams_in = dg_in;
  s.datagrams_out = dg_out;
  s.drops = {{"truncated", 0}, {"auth_failed", auth_failed}, {"replay", replay}, {"rate_limited", 0}};
  return s;
}

DhtStats dht_stats(uint64_t completed, std::vector<int> latencies_ms) {
  DhtStats d;
  d.lookups = completed;
  d.lookups_completed = completed;
  for (int ms : latencies_ms) d.recent.push_back(LookupStats{1, 1, std::chrono::milliseconds(ms)});
  return d;
}

}  // namespace

TEST(StatusHistory, CountsEachIntervalAndKeepsOnlyTheNewest) {
  StatusHistory h(3);
  h.record(node_stats(100, 50, 7, 0), dht_stats(0, {}), 1'000, 0);  // the baseline: not a sample
  EXPECT_TRUE(h.samples().empty());
  EXPECT_EQ(h.last(), nullptr);
  for (int i = 1; i <= 5; ++i)
    h.record(node_stats(100 + 10 * i, 50 + i, 7, 0), dht_stats(0, {}), 1'000 + 1'000 * i, 1'000 * i);
  auto s = h.samples();
  ASSERT_EQ(s.size(), 3u);  // bounded: the three newest, oldest first
  EXPECT_EQ(s[0].unix_ms, 4'000);
  EXPECT_EQ(s[2].unix_ms, 6'000);
  EXPECT_EQ(s[2].interval_ms, 1'000u);
  EXPECT_EQ(s[2].datagrams_in, 10u);
  EXPECT_EQ(s[2].datagrams_out, 1u);
  EXPECT_EQ(s[2].drops, 0u);
  EXPECT_EQ(h.last()->unix_ms, 6'000);
  EXPECT_EQ(h.to_json()["samples"].size(), 3u);
}

TEST(StatusHistory, LatencyPercentilesOfTheLookupsCompletedInTheInterval) {
  StatusHistory h;
  h.record(node_stats(0, 0, 0, 0), dht_stats(2, {900, 900}), 0, 0);
  std::vector<int> recent = {900, 900};
  for (int ms = 1; ms <= 100; ++ms) recent.push_back(ms);  // 100 new lookups: 1..100 ms
  h.record(node_stats(0, 0, 0, 0), dht_stats(102, recent), 1'000, 1'000);
  const StatusSample& s = *h.last();
  EXPECT_EQ(s.lookups_completed, 100u);
  EXPECT_EQ(s.lookup_p50_us, 50'000u);  // the two older 900 ms lookups are not this interval's
  EXPECT_EQ(s.lookup_p90_us, 90'000u);
  EXPECT_EQ(s.lookup_p99_us, 99'000u);
  h.record(node_stats(0, 0, 0, 0), dht_stats(102, recent), 2'000, 2'000);
  EXPECT_EQ(h.last()->lookups_completed, 0u);
  EXPECT_EQ(h.last()->lookup_p99_us, 0u);
}

TEST(StatusHistory, DropsInTotalAndTheLargestReasonsFirst) {
  StatusHistory h;
  h.record(node_stats(0, 0, 5, 5), dht_stats(0, {}), 0, 0);
  h.record(node_stats(0, 0, 8, 25), dht_stats(0, {}), 1'000, 1'000);
  const StatusSample& s = *h.last();
  EXPECT_EQ(s.drops, 23u);
  ASSERT_EQ(h.drop_reasons().size(), 4u);
  EXPECT_EQ(h.drop_reasons()[s.top_drops[0].reason], "replay");
  EXPECT_EQ(s.top_drops[0].count, 20u);
  EXPECT_EQ(h.drop_reasons()[s.top_drops[1].reason], "auth_failed");
  EXPECT_EQ(s.top_drops[1].count, 3u);
  EXPECT_EQ(s.top_drops[2].count, 0u);
}

// Five simulated nodes on a board: what GET /api/status and GET /api/network would answer.
TEST(StatusBoard, StatusAndNetworkOfSimulatedNodes) {
  SimConfig cfg;
  cfg.seed = 7;
  Simulator sim(cfg);
  for (int i = 0; i < 5; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 7), 5u);
  StatusBoard board("9.9.9", 3);
  for (size_t i = 0; i < 5; ++i) board.add(sim.node(i), "http://127.0.0.1:" + std::to_string(5000 + i), sim.endpoint(i));
  ASSERT_TRUE(sim.node(2).pubsub().subscribe("news"));
  sim.run_for(3s);
  board.tick();
  ASSERT_TRUE(sim.node(0).pubsub().publish("news", R"({"n":1})"));
  ASSERT_TRUE(sim.run_until([&] { return !board.status(2)["subscriptions"][0]["recent"].empty(); }, 30s));
  sim.run_for(2s);  // stun answers
  board.tick();

  auto st = board.status(2);
  EXPECT_EQ(st["id"], sim.node(2).id().hex());
  EXPECT_EQ(st["version"], "9.9.9");
  EXPECT_EQ(st["node"]["index"], 2);
  EXPECT_EQ(st["node"]["of"], 5);
  EXPECT_EQ(st["peers"].size(), sim.node(2).dht().peers().size());
  size_t in_buckets = 0;
  for (const auto& b : st["routing"]["buckets"]) in_buckets += b.get<size_t>();
  EXPECT_EQ(in_buckets, st["peers"].size());
  EXPECT_EQ(st["routing"]["k"], sim.node(2).dht().config().k);
  EXPECT_EQ(st["subscriptions"][0]["topic"], "news");
  EXPECT_EQ(st["subscriptions"][0]["events"], 1);
  EXPECT_EQ(st["subscriptions"][0]["recent"][0]["event"], R"({"n":1})");
  EXPECT_EQ(st["history"]["samples"].size(), 2u);  // add() took the baseline; each tick, one sample
  EXPECT_EQ(st["addresses"]["reachability"], "direct");
  EXPECT_EQ(st["addresses"]["observed"], sim.endpoint(2).to_string());

  auto net = board.network()["nodes"];
  ASSERT_EQ(net.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(net[i]["id"], sim.node(i).id().hex());
    EXPECT_EQ(net[i]["links"].size() + net[i]["other_contacts"].get<size_t>(), sim.node(i).dht().peers().size());
    EXPECT_EQ(net[i]["other_contacts"], 0);  // every contact is one of the five
  }

  // Unsubscribed topics are forgotten at the next tick.
  ASSERT_TRUE(sim.node(2).pubsub().unsubscribe("news"));
  board.tick();
  EXPECT_TRUE(board.status(2)["subscriptions"].empty());
}

// peers[].path: "relayed" while the engine has a path to the peer through a relay (Engine::set_via), listed in
// relay.paths with its relay (also for a peer outside the routing table); "direct" again once it ends.
TEST(StatusBoard, PeerPathShowsARelayedPeer) {
  SimConfig cfg;
  cfg.seed = 11;
  Simulator sim(cfg);
  for (int i = 0; i < 4; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 11), 4u);
  StatusBoard board("9.9.9", 4);
  board.add(sim.node(0), "http://127.0.0.1:5000", sim.endpoint(0));
  const auto table = sim.node(0).dht().peers();
  ASSERT_GE(table.size(), 2u);
  const Contact& peer = table[0];
  const Contact& relay = table[1];
  auto path_of = [&](const NodeId& id) -> std::string {
    const auto st = board.status(0);  // kept: a range over a temporary's member would dangle
    for (const auto& p : st["peers"])
      if (p["id"] == id.hex()) return p["path"];
    return "absent";
  };
  ASSERT_EQ(path_of(peer.id), "direct");
  EXPECT_TRUE(board.status(0)["relay"]["paths"].empty());
  EXPECT_TRUE(sim.node(0).relayed_paths().empty());

  Engine& e0 = NodeInternals::engine(sim.node(0));
  e0.set_via(peer.key, relay);
  const Bytes seed(32, 7);
  Identity stranger = Identity::from_seed(seed);  // a peer the routing table does not hold
  e0.set_via(stranger.public_key(), relay);
  EXPECT_EQ(path_of(peer.id), "relayed");
  EXPECT_EQ(path_of(relay.id), "direct");
  auto paths = board.status(0)["relay"]["paths"];
  ASSERT_EQ(paths.size(), 2u);
  std::set<std::string> peers;
  for (const auto& p : paths) {
    peers.insert(p["peer"].get<std::string>());
    EXPECT_EQ(p["relay"], relay.id.hex());
    EXPECT_EQ(p["relay_address"], relay.endpoint.to_string());
  }
  EXPECT_EQ(peers, (std::set<std::string>{peer.id.hex(), stranger.id().hex()}));
  ASSERT_EQ(sim.node(0).relayed_paths().size(), 2u);

  e0.clear_via(peer.key);
  EXPECT_EQ(path_of(peer.id), "direct");
  // An idle path (nothing through it for Engine::kViaIdle) is no longer shown.
  sim.run_for(Engine::kViaIdle + std::chrono::seconds(1));
  EXPECT_TRUE(board.status(0)["relay"]["paths"].empty());
}

TEST(UiAssets, ThePagesAndTheirFilesAreBuiltIn) {
  for (const char* path : {"/ui", "/ui/", "/ui/network", "/ui/style.css", "/ui/common.js", "/ui/status.js", "/ui/network.js"}) {
    const UiAsset* a = find_ui_asset(path);
    ASSERT_NE(a, nullptr) << path;
    EXPECT_FALSE(a->body.empty()) << path;
  }
  EXPECT_EQ(find_ui_asset("/ui")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(find_ui_asset("/ui/status.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_ui_asset("/ui/../metrics"), nullptr);
  EXPECT_EQ(find_ui_asset("/uix"), nullptr);
  EXPECT_EQ(find_ui_asset("/ui/missing.js"), nullptr);
}
