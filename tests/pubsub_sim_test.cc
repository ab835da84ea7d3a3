// Pubsub at scale in the simulator: 1,000 nodes, 50 ms median one-way latency, topics with 1, 10 and 100
// subscribers, 1,000 events in all: at least 99.9% delivered, no duplicates. The network is built by real
// DHT joins (sim::join_network), so neighbours and rendezvous routes are what a deployment would have.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "pubsub_test_util.h"
#include "sim/network_builder.h"
#include "sim/rng.h"
#include "storjnet/pubsub.h"

using namespace storjnet;
using storjnet::test::connect_pubsub;
using storjnet::test::event_json;
using storjnet::test::event_seq;

namespace {

struct Outcome {
  uint64_t expected = 0, delivered = 0, duplicates = 0, queued = 0;
};

Outcome run(size_t n, size_t events, uint64_t seed, PubsubConfig pc = {}) {
  SimConfig cfg;
  cfg.seed = seed;
  cfg.link.latency_min = 10ms;
  cfg.link.latency_max = 90ms;  // median 50 ms
  cfg.node.pubsub = pc;
  Simulator sim(cfg);
  for (size_t i = 0; i < n; ++i) sim.add_node();
  // Neighbours and routes come from real DHT joins (waves of 50, each through an earlier node).
  EXPECT_EQ(sim::join_network(sim, seed), n);
  sim.run_for(2s);

  sim::Rng rng(seed * 7 + 1);
  struct Topic {
    std::string name;
    std::vector<size_t> subs;
  };
  std::vector<Topic> topics;
  for (size_t count : {1, 10, 100})
    for (int r = 0; r < 2; ++r) {
      Topic t{"topic-" + std::to_string(count) + "-" + std::to_string(r), {}};
      std::set<size_t> chosen;
      while (chosen.size() < count) chosen.insert(rng.below(n));
      t.subs.assign(chosen.begin(), chosen.end());
      topics.push_back(t);
    }
  // seen[(node, seq)]: deliveries observed by the application callback.
  std::map<std::pair<size_t, uint64_t>, int> seen;
  for (size_t i = 0; i < n; ++i)
    sim.node(i).pubsub().set_on_event(
        [&seen, i](const std::string&, const std::string& ev) { ++seen[{i, event_seq(ev)}]; });
  for (const auto& t : topics)
    for (size_t s : t.subs) sim.node(s).pubsub().subscribe(t.name);
  sim.run_for(3s);

  Outcome o;
  for (size_t e = 0; e < events; ++e) {
    const auto& t = topics[e % topics.size()];
    size_t pub = rng.below(n);
    EXPECT_TRUE(sim.node(pub).pubsub().publish(t.name, event_json(e)));
    o.expected += t.subs.size();
    sim.run_for(5ms);
  }
  sim.run_until([&] { return seen.size() == o.expected; }, 20s);
  for (const auto& [k, c] : seen) {
    o.delivered += 1;
    o.duplicates += c - 1;
  }
  for (const auto& t : topics)
    for (size_t s : t.subs) o.queued += sim.node(s).pubsub().take_events(t.name).size();
  return o;
}

}  // namespace

TEST(PubsubSim, ThousandNodesThousandEventsDeliveredOnce) {
  auto o = run(1000, 1000, 11);
  EXPECT_GE(double(o.delivered), 0.999 * double(o.expected)) << o.delivered << "/" << o.expected;
  EXPECT_EQ(o.duplicates, 0u);
  EXPECT_EQ(o.queued, o.delivered);
}

// With the rendezvous on, Quasar only descends the filters towards subscribers and never walks; the
// rendezvous still delivers everything. Quasar alone keeps its random walks.
TEST(PubsubSim, WithRendezvousQuasarOnlyDescendsAndNeverWalks) {
  auto totals = [](bool rendezvous, uint64_t& delivered, uint64_t& walks, uint64_t& forwards) {
    SimConfig cfg;
    cfg.seed = 5;
    cfg.link.latency_min = 10ms;
    cfg.link.latency_max = 90ms;
    cfg.node.pubsub.rendezvous = rendezvous;
    Simulator sim(cfg);
    const size_t n = 300;
    for (size_t i = 0; i < n; ++i) sim.add_node();
    auto oracle = connect_pubsub(sim, 5, /*force_oracle=*/true);
    sim.run_for(2s);
    std::set<uint64_t> got;
    sim.node(7).pubsub().set_on_event([&](const std::string&, const std::string& ev) { got.insert(event_seq(ev)); });
    sim.node(7).pubsub().subscribe("lonely");
    sim.run_for(3s);
    sim::Rng rng(99);
    for (uint64_t e = 0; e < 50; ++e) {
      size_t pub = 8 + rng.below(n - 8);
      EXPECT_TRUE(sim.node(pub).pubsub().publish("lonely", event_json(e)));
      sim.run_for(20ms);
    }
    sim.run_for(5s);
    delivered = got.size();
    walks = forwards = 0;
    for (size_t i = 0; i < n; ++i) {
      auto s = sim.node(i).pubsub().stats();
      walks += s.walk_forwards;
      forwards += s.quasar_forwards;
    }
  };
  uint64_t delivered = 0, walks = 0, forwards = 0;
  totals(true, delivered, walks, forwards);
  EXPECT_EQ(delivered, 50u);
  EXPECT_EQ(walks, 0u);
  // Descending only: each Quasar copy moves strictly closer to the one subscriber (depth 3).
  EXPECT_LE(forwards, 50u * 3 * 8);
  uint64_t q_delivered = 0, q_walks = 0, q_forwards = 0;
  totals(false, q_delivered, q_walks, q_forwards);
  EXPECT_GT(q_walks, 0u);
  EXPECT_GT(q_forwards, forwards);
}

// The direct rendezvous does not make a publisher's first event to a topic wait for its holder lookup: the
// event takes the greedy route at once (its terminal, the closest holder, delivers), and goes to the holders
// found when the lookup ends. A second event finds the holders cached and goes to them alone.
TEST(PubsubSim, AFirstEventDoesNotWaitForTheHolderLookup) {
  SimConfig cfg;
  cfg.seed = 21;
  cfg.link.latency_min = 10ms;
  cfg.link.latency_max = 90ms;
  cfg.node.pubsub.quasar = false;  // the rendezvous alone delivers
  Simulator sim(cfg);
  const size_t n = 300, subscriber = 5, publisher = 250;
  for (size_t i = 0; i < n; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 21), n);
  sim.run_for(2s);
  std::vector<uint64_t> got;
  sim.node(subscriber).pubsub().set_on_event([&](const std::string&, const std::string& ev) { got.push_back(event_seq(ev)); });
  sim.node(subscriber).pubsub().subscribe("first");
  sim.run_for(5s);

  Pubsub& pub = sim.node(publisher).pubsub();
  const uint64_t sent_before = pub.stats().notifies_sent;
  ASSERT_TRUE(pub.publish("first", event_json(1)));
  EXPECT_EQ(pub.stats().events_routed_ahead, 1u);
  ASSERT_TRUE(sim.run_until([&] { return !got.empty(); }, 5s));
  // Delivered while the publisher has sent nothing but the route's first hop: the lookup had not ended.
  EXPECT_LE(pub.stats().notifies_sent, sent_before + 1);
  sim.run_for(5s);
  EXPECT_GE(pub.stats().notifies_sent, sent_before + 2);  // then the holders, directly
  EXPECT_EQ(pub.stats().holder_lookups, 1u);

  ASSERT_TRUE(pub.publish("first", event_json(2)));
  EXPECT_EQ(pub.stats().events_routed_ahead, 1u);  // holders cached: no route
  sim.run_for(5s);
  EXPECT_EQ(got, (std::vector<uint64_t>{1, 2}));  // each once
}

// Quiet when idle: without subscriptions nobody has a filter bit to push, so a joined network sends no Quasar
// traffic, and housekeeping runs once per refresh instead of every second. A subscription made after a long
// idle spell still reaches neighbours at once and is delivered.
TEST(PubsubSim, AnIdleNetworkSendsNoFiltersAndSleepsUntilItHasSomething) {
  SimConfig cfg;
  cfg.seed = 31;
  Simulator sim(cfg);
  const size_t n = 40;
  for (size_t i = 0; i < n; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 31), n);
  sim.run_for(10s);
  std::vector<uint64_t> runs(n);
  for (size_t i = 0; i < n; ++i) runs[i] = sim.node(i).pubsub().stats().maintenance_runs;
  sim.run_for(10min);
  for (size_t i = 0; i < n; ++i) {
    PubsubStats s = sim.node(i).pubsub().stats();
    EXPECT_EQ(s.updates_sent, 0u) << "node " << i;
    EXPECT_EQ(s.out_neighbours, 0u) << "node " << i;
    EXPECT_LE(s.maintenance_runs - runs[i], 12u) << "node " << i;  // 10 refreshes, not 600 ticks
  }

  const size_t subscriber = 7, publisher = 30;
  std::vector<uint64_t> got;
  Pubsub& sub = sim.node(subscriber).pubsub();
  sub.set_on_event([&](const std::string&, const std::string& ev) { got.push_back(event_seq(ev)); });
  ASSERT_TRUE(sub.subscribe("woken"));
  sim.run_for(200ms);  // the filter's update_delay and one hop, well inside a housekeeping tick
  EXPECT_GT(sub.stats().out_neighbours, 0u);
  EXPECT_GT(sub.stats().updates_sent, 0u);
  size_t holding = 0;
  for (size_t i = 0; i < n; ++i) holding += i != subscriber && sim.node(i).pubsub().filter_level("woken") == 1;
  EXPECT_GT(holding, 0u);  // a neighbour has it at level 1
  sim.run_for(3s);
  ASSERT_TRUE(sim.node(publisher).pubsub().publish("woken", event_json(1)));
  ASSERT_TRUE(sim.run_until([&] { return !got.empty(); }, 10s));
  EXPECT_EQ(got, (std::vector<uint64_t>{1}));
}
