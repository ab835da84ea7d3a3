// Pubsub user API semantics on a small simulated network.
#include <gtest/gtest.h>

#include "pubsub_test_util.h"
#include "storjnet/pubsub.h"

using namespace storjnet;
using storjnet::test::connect_pubsub;
using storjnet::test::event_json;
using storjnet::test::event_seq;

namespace {

struct Net {
  explicit Net(size_t n, uint64_t seed = 3, PubsubConfig pc = {}) : sim(make(seed, pc)) {
    for (size_t i = 0; i < n; ++i) sim.add_node();
    oracle = connect_pubsub(sim, seed);
    sim.run_for(2s);
  }
  static SimConfig make(uint64_t seed, PubsubConfig pc) {
    SimConfig c;
    c.seed = seed;
    c.node.pubsub = pc;
    return c;
  }
  Pubsub& ps(size_t i) { return sim.node(i).pubsub(); }
  Simulator sim;
  std::unique_ptr<pubsub::OracleTopology> oracle;
};

std::vector<uint64_t> seqs(const std::vector<std::string>& evs) {
  std::vector<uint64_t> out;
  for (const auto& e : evs) out.push_back(event_seq(e));
  return out;
}

}  // namespace

TEST(PubsubApi, SubscribeUnsubscribeAndSubscriptions) {
  Net net(5);
  auto& p = net.ps(1);
  EXPECT_TRUE(p.subscribe("b"));
  EXPECT_TRUE(p.subscribe("a"));
  EXPECT_TRUE(p.subscribe("a"));  // idempotent
  EXPECT_EQ(p.subscriptions(), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(p.unsubscribe("b"));
  EXPECT_TRUE(p.unsubscribe("never"));
  EXPECT_EQ(p.subscriptions(), (std::vector<std::string>{"a"}));
  EXPECT_FALSE(p.subscribe(std::string(kMaxTopic + 1, 'x')));
  EXPECT_TRUE(p.subscribe(std::string(kMaxTopic, 'x')));
  EXPECT_FALSE(p.subscribe(""));
  EXPECT_EQ(p.subscriptions().size(), 2u);
}

TEST(PubsubApi, PublishRejectsOversizedOrNonJson) {
  Net net(3);
  auto& p = net.ps(0);
  EXPECT_FALSE(p.publish("t", "{not json"));
  EXPECT_FALSE(p.publish(std::string(kMaxTopic + 1, 't'), "1"));
  std::string big = "\"" + std::string(kMaxEventJson - 2, 'a') + "\"";
  EXPECT_TRUE(p.publish("t", big));
  EXPECT_FALSE(p.publish("t", "\"" + std::string(kMaxEventJson, 'a') + "\""));
  EXPECT_TRUE(p.publish("t", "null"));
  EXPECT_TRUE(p.publish("t", R"({"any":[1,2,{"x":true}]})"));
}

TEST(PubsubApi, EventsArriveOnceInOrderThenQueueIsEmpty) {
  Net net(20);
  ASSERT_TRUE(net.ps(7).subscribe("news"));
  net.sim.run_for(1s);
  for (uint64_t s = 0; s < 5; ++s) {
    ASSERT_TRUE(net.ps(3).publish("news", event_json(s)));
    net.sim.run_for(200ms);  // spaced: arrival order is publish order
  }
  net.sim.run_for(2s);
  EXPECT_EQ(seqs(net.ps(7).take_events("news")), (std::vector<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(net.ps(7).take_events("news").empty());
  EXPECT_TRUE(net.ps(3).take_events("news").empty());  // not subscribed
  EXPECT_TRUE(net.ps(7).take_events("other").empty());
  EXPECT_EQ(net.ps(7).stats().delivered, 5u);
}

TEST(PubsubApi, SubscribedPublisherReceivesItsOwnEventOnce) {
  Net net(20);
  ASSERT_TRUE(net.ps(4).subscribe("self"));
  ASSERT_TRUE(net.ps(9).subscribe("self"));
  net.sim.run_for(1s);
  ASSERT_TRUE(net.ps(4).publish("self", event_json(42)));
  net.sim.run_for(3s);
  EXPECT_EQ(seqs(net.ps(4).take_events("self")), (std::vector<uint64_t>{42}));
  EXPECT_EQ(seqs(net.ps(9).take_events("self")), (std::vector<uint64_t>{42}));
}

TEST(PubsubApi, QueueIsBoundedPerTopicOldestDropped) {
  PubsubConfig pc;
  pc.max_events_per_topic = 4;
  Net net(10, 5, pc);
  ASSERT_TRUE(net.ps(2).subscribe("q"));
  net.sim.run_for(1s);
  for (uint64_t s = 0; s < 10; ++s) {
    net.ps(5).publish("q", event_json(s));
    net.sim.run_for(100ms);
  }
  net.sim.run_for(2s);
  EXPECT_EQ(seqs(net.ps(2).take_events("q")), (std::vector<uint64_t>{6, 7, 8, 9}));
  EXPECT_EQ(net.ps(2).stats().queue_overflow, 6u);
}

TEST(PubsubApi, UnsubscribeStopsDeliveryAndClearsFiltersOverTime) {
  PubsubConfig pc;
  pc.refresh = 5s;
  pc.filter_stale = 15s;
  Net net(30, 9, pc);
  ASSERT_TRUE(net.ps(11).subscribe("gone"));
  net.sim.run_for(2s);
  size_t matching = 0;
  for (size_t i = 0; i < 30; ++i) matching += net.ps(i).filter_level("gone") >= 0;
  EXPECT_GT(matching, 5u);  // the subscription spread through the filters
  ASSERT_TRUE(net.ps(11).unsubscribe("gone"));
  net.sim.run_for(2s);
  matching = 0;
  size_t held = 0;
  for (size_t i = 0; i < 30; ++i) {
    matching += net.ps(i).filter_level("gone") >= 0;
    held += net.ps(i).held_subscribers("gone");
  }
  EXPECT_EQ(matching, 0u);  // no bit stays: levels are recomputed from what neighbours currently push
  EXPECT_EQ(held, 0u);
  net.ps(0).publish("gone", event_json(1));
  net.sim.run_for(2s);
  EXPECT_TRUE(net.ps(11).take_events("gone").empty());
}

TEST(PubsubApi, SubscriptionsAreDeliveredOnlyToSubscribers) {
  Net net(25);
  ASSERT_TRUE(net.ps(1).subscribe("x"));
  ASSERT_TRUE(net.ps(2).subscribe("y"));
  net.sim.run_for(1s);
  net.ps(10).publish("x", event_json(1));
  net.ps(11).publish("y", event_json(2));
  net.sim.run_for(3s);
  EXPECT_EQ(seqs(net.ps(1).take_events("x")), (std::vector<uint64_t>{1}));
  EXPECT_EQ(seqs(net.ps(2).take_events("y")), (std::vector<uint64_t>{2}));
  EXPECT_TRUE(net.ps(1).take_events("y").empty());
}
