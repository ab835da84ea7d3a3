// Direct messages: semantics under the simulator (including loss, duplication and reordering) and over
// real sockets with several nodes in one RealDriver.
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "messages/codec.h"
#include "messages/inbox.h"
#include "sim/network_builder.h"
#include "storjnet/real_driver.h"
#include "storjnet/simulator.h"

using namespace storjnet;

namespace {
// Each node learns every other node's contact, as a DHT lookup would have told it.
void introduce(Simulator& sim) {
  for (size_t i = 0; i < sim.size(); ++i)
    for (size_t j = 0; j < sim.size(); ++j)
      if (i != j) sim.node(i).messages().remember(sim.contact(j));
}

std::optional<bool> send_sync(Simulator& sim, size_t from, const NodeId& to, std::string json,
                              Duration limit = 10s) {
  std::optional<bool> got;
  sim.node(from).messages().send(to, std::move(json), [&](bool ok) { got = ok; });
  sim.run_until([&] { return got.has_value(); }, limit);
  return got;
}
}  // namespace

TEST(MessagesCodec, BatchRoundTripAndRejectsGarbage) {
  std::string a = "{\"x\":1}", b = "[1,2,3]";
  Bytes body = messages::encode_batch(7, 9, {&a, &b});
  auto d = messages::decode_batch(body);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->epoch, 7u);
  EXPECT_EQ(d->batch, 9u);
  ASSERT_EQ(d->messages.size(), 2u);
  EXPECT_EQ(d->messages[0], a);
  EXPECT_EQ(d->messages[1], b);
  for (size_t cut = 0; cut < body.size(); ++cut)
    EXPECT_FALSE(messages::decode_batch(ByteView(body).first(cut))) << cut;
  Bytes trailing = body;
  trailing.push_back(0);
  EXPECT_FALSE(messages::decode_batch(trailing));
  EXPECT_EQ(messages::decode_ack(messages::encode_ack(42)), 42u);
  EXPECT_FALSE(messages::decode_ack(messages::encode_ack(100000)));
  EXPECT_FALSE(messages::valid_message("{"));
  EXPECT_FALSE(messages::valid_message(""));
  EXPECT_TRUE(messages::valid_message("\"hi\""));
}

TEST(MessagesInbox, DuplicateBatchIsAnsweredAgainButQueuedOnce) {
  MessagesConfig cfg;
  cfg.max_queue = 3;
  messages::Inbox inbox(cfg);
  const Endpoint::Prefix net = Endpoint::v4(0x0a000001u, 1).prefix();
  NodeId from = NodeId::hash_of(as_bytes("a"));
  messages::Batch b{1, 1, {"1", "2"}};
  EXPECT_EQ(inbox.deliver(from, net, b, {}).accepted, 2u);
  EXPECT_EQ(inbox.deliver(from, net, b, {}).accepted, 2u);  // retransmission
  EXPECT_EQ(inbox.queued(), 2u);
  messages::Batch b2{1, 2, {"3", "4"}};
  EXPECT_EQ(inbox.deliver(from, net, b2, {}).accepted, 1u);  // queue full after one
  EXPECT_EQ(inbox.deliver(from, net, b, {}).accepted, 0u);   // stale
  messages::Batch b3{1, 3, {"4"}};
  EXPECT_EQ(inbox.deliver(from, net, b3, {}).accepted, 0u);
  auto all = inbox.take_all();
  EXPECT_EQ(all[from], (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(inbox.deliver(from, net, messages::Batch{1, 4, {"4"}}, {}).accepted, 1u);
  messages::Batch restarted{2, 1, {"5"}};  // a restarted sender starts its batches over
  EXPECT_EQ(inbox.deliver(from, net, restarted, {}).accepted, 1u);
  EXPECT_EQ(inbox.deliver(from, net, messages::Batch{1, 9, {"old"}}, {}).accepted, 0u);
  EXPECT_EQ(inbox.take_all()[from], (std::vector<std::string>{"4", "5"}));
}

// A sender that skips its own JSON check: the bad message is acknowledged (the answer stays "the first n"),
// dropped, and counted; the valid ones around it are queued.
TEST(MessagesInbox, InvalidJsonIsAcknowledgedDroppedAndCounted) {
  messages::Inbox inbox(MessagesConfig{});
  const Endpoint::Prefix net = Endpoint::v4(0x0a000001u, 1).prefix();
  NodeId from = NodeId::hash_of(as_bytes("a"));
  EXPECT_EQ(inbox.deliver(from, net, messages::Batch{1, 1, {"1", "{not json", "[3]"}}, {}).accepted, 3u);
  EXPECT_EQ(inbox.stats().invalid_json, 1u);
  EXPECT_EQ(inbox.take_all()[from], (std::vector<std::string>{"1", "[3]"}));
}

TEST(MessagesInbox, SharesAreFairAcrossSendersAndNetworks) {
  MessagesConfig cfg;
  cfg.max_queue = 1000;
  cfg.max_queue_per_sender = 50;
  cfg.max_queue_bytes_per_sender = 1 << 20;
  cfg.max_queue_per_prefix = 200;
  messages::Inbox inbox(cfg);
  const Endpoint::Prefix hostile = Endpoint::v4(0xc6336401u, 1).prefix();  // 198.51.100.0/24
  std::vector<std::string_view> many(4000, "1");
  // One key flooding: held to its share, the rest refused (counted).
  NodeId flooder = NodeId::hash_of(as_bytes("flooder"));
  auto d = inbox.deliver(flooder, hostile, messages::Batch{1, 1, many}, {});
  EXPECT_EQ(d.accepted, 50u);
  EXPECT_EQ(d.refusal, messages::Refusal::kSenderQuota);
  // Its next batch, nothing fitting, is refused with the reason (answered as an error by the service).
  d = inbox.deliver(flooder, hostile, messages::Batch{1, 2, many}, {});
  EXPECT_EQ(d.accepted, 0u);
  EXPECT_EQ(messages::refusal_text(d.refusal), "inbox share of this sender full");
  // Many keys from the same /24: the network's share, then refused.
  size_t queued_hostile = 50;
  for (int k = 0; k < 100; ++k)
    queued_hostile += inbox.deliver(NodeId::hash_of(as_bytes("sybil" + std::to_string(k))), hostile,
                                    messages::Batch{1, 1, many}, {}).accepted;
  EXPECT_EQ(queued_hostile, 200u);
  EXPECT_EQ(inbox.queued(), 200u);
  // Honest senders from other networks still get all their messages queued.
  for (uint32_t h = 0; h < 4; ++h) {
    NodeId honest = NodeId::hash_of(as_bytes("honest" + std::to_string(h)));
    Endpoint::Prefix net = Endpoint::v4(0xcb007100u + (h << 8) + 1, 1).prefix();
    EXPECT_EQ(inbox.deliver(honest, net, messages::Batch{1, 1, {"\"hi\"", "2", "3"}}, {}).accepted, 3u);
  }
  auto st = inbox.stats();
  EXPECT_EQ(st.refused_sender_quota, 3950u + 4000 + 3 * 3950);  // the flooder's two batches, three sybils'
  EXPECT_EQ(st.refused_prefix_quota, 97u * 4000);                // the other 97 sybils
  // Shares are of what is queued: message_list frees them.
  inbox.take_all();
  EXPECT_EQ(inbox.deliver(flooder, hostile, messages::Batch{1, 3, {"1"}}, {}).accepted, 1u);
}

TEST(MessagesInbox, NotifyIsRateLimitedPerSender) {
  MessagesConfig cfg;
  cfg.notify_rate = 10;
  cfg.notify_burst = 20;
  messages::Inbox inbox(cfg);
  const Endpoint::Prefix net = Endpoint::v4(0xc6336401u, 1).prefix();
  NodeId flooder = NodeId::hash_of(as_bytes("flooder")), other = NodeId::hash_of(as_bytes("other"));
  TimePoint t{};
  uint64_t batch = 0;
  size_t ok = 0;
  for (int i = 0; i < 100; ++i)
    ok += inbox.deliver(flooder, net, messages::Batch{1, ++batch, {"1"}}, t).refusal == messages::Refusal::kNone;
  EXPECT_EQ(ok, 20u);  // the burst
  EXPECT_EQ(inbox.stats().rate_limited, 80u);
  // Another sender is not affected; the flooder gets 10 more per second.
  EXPECT_EQ(inbox.deliver(other, net, messages::Batch{1, 1, {"1"}}, t).accepted, 1u);
  t += 1s;
  ok = 0;
  for (int i = 0; i < 100; ++i)
    ok += inbox.deliver(flooder, net, messages::Batch{1, ++batch, {"1"}}, t).refusal == messages::Refusal::kNone;
  EXPECT_EQ(ok, 10u);
}

TEST(Messages, RefusedMessagesAnswerFalseAndAreCounted) {
  SimConfig cfg;
  cfg.node.messages.max_queue_per_sender = 3;
  Simulator sim(cfg);
  for (int i = 0; i < 3; ++i) sim.add_node();
  introduce(sim);
  NodeId rx = sim.contact(0).id;
  // Sender 1 fills its share; its next message is answered false (the receiver answered an error).
  for (int k = 0; k < 3; ++k) EXPECT_EQ(send_sync(sim, 1, rx, std::to_string(k)), true);
  EXPECT_EQ(send_sync(sim, 1, rx, "3"), false);
  // Sender 2 still gets through.
  EXPECT_EQ(send_sync(sim, 2, rx, "\"x\""), true);
  EXPECT_EQ(sim.node(0).messages().stats().refused_sender_quota, 1u);
  EXPECT_EQ(sim.node(0).messages().queued(), 4u);
}

TEST(Messages, SendListOrderSelfAndBadInput) {
  Simulator sim;
  for (int i = 0; i < 3; ++i) sim.add_node();
  introduce(sim);
  NodeId id1 = sim.contact(1).id;
  for (int k = 0; k < 5; ++k) EXPECT_EQ(send_sync(sim, 0, id1, std::to_string(k)), true);
  EXPECT_EQ(send_sync(sim, 2, id1, "{\"from\":2}"), true);
  EXPECT_EQ(send_sync(sim, 1, id1, "\"self\""), true);  // own id: queued locally
  EXPECT_EQ(send_sync(sim, 0, id1, "{not json"), false);
  EXPECT_EQ(send_sync(sim, 0, id1, "\"" + std::string(kMaxMessageJson, 'x') + "\""), false);
  std::string biggest = "\"" + std::string(kMaxMessageJson - 2, 'y') + "\"";
  EXPECT_EQ(send_sync(sim, 0, id1, biggest), true);
  EXPECT_EQ(sim.node(1).messages().queued(), 8u);
  auto all = sim.node(1).messages().take_all();
  EXPECT_EQ(all.size(), 3u);
  EXPECT_EQ(all[sim.contact(0).id], (std::vector<std::string>{"0", "1", "2", "3", "4", biggest}));
  EXPECT_EQ(all[sim.contact(2).id], (std::vector<std::string>{"{\"from\":2}"}));
  EXPECT_EQ(all[id1], (std::vector<std::string>{"\"self\""}));
  EXPECT_TRUE(sim.node(1).messages().take_all().empty());
  EXPECT_EQ(sim.node(1).messages().queued(), 0u);
}

TEST(Messages, UnknownDeadAndFullPeersAnswerFalseInBoundedTime) {
  SimConfig cfg;
  cfg.node.messages.max_queue = 4;
  Simulator sim(cfg);
  for (int i = 0; i < 3; ++i) sim.add_node();
  introduce(sim);
  TimePoint t0 = sim.now();
  EXPECT_EQ(send_sync(sim, 0, NodeId::hash_of(as_bytes("nobody")), "1"), false);  // cannot be found
  EXPECT_LE(sim.now() - t0, 6s);
  // Queue full: the fifth is refused, and the refusal does not disturb what follows.
  std::vector<std::optional<bool>> got(6);
  for (int k = 0; k < 6; ++k)
    sim.node(0).messages().send(sim.contact(1).id, std::to_string(k), [&got, k](bool ok) { got[k] = ok; });
  sim.run_until([&] { return got[5].has_value(); }, 10s);
  EXPECT_EQ(got, (std::vector<std::optional<bool>>{true, true, true, true, false, false}));
  EXPECT_EQ(sim.node(1).messages().take_all()[sim.contact(0).id], (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(send_sync(sim, 0, sim.contact(1).id, "\"after\""), true);
  EXPECT_EQ(sim.node(1).messages().take_all()[sim.contact(0).id], (std::vector<std::string>{"\"after\""}));
  // Dead peer.
  sim.kill(2);
  t0 = sim.now();
  EXPECT_EQ(send_sync(sim, 0, sim.contact(2).id, "1", 30s), false);
  EXPECT_LE(sim.now() - t0, 6s);
}

TEST(Messages, HundredSendersHundredMessagesEachSurviveLossDuplicationReordering) {
  SimConfig cfg;
  cfg.seed = 11;
  cfg.link.loss = 0.05;
  cfg.link.duplicate = 0.05;
  cfg.link.jitter = 30ms;
  cfg.node.messages.send_timeout = 20s;
  cfg.node.messages.max_queue_per_prefix = SIZE_MAX;  // the simulator puts every node in 10.0.0.0/24
  cfg.node.messages.max_queue_bytes_per_prefix = SIZE_MAX;
  Simulator sim(cfg);
  const size_t kSenders = 100, kEach = 100;
  size_t rx = sim.add_node();
  for (size_t i = 0; i < kSenders; ++i) sim.add_node();
  for (size_t i = 1; i <= kSenders; ++i) sim.node(i).messages().remember(sim.contact(rx));
  NodeId to = sim.contact(rx).id;
  size_t acked = 0, refused = 0;
  // Senders trickle their messages in over time, so batches of many sizes are in flight.
  for (size_t k = 0; k < kEach; ++k) {
    for (size_t i = 1; i <= kSenders; ++i) {
      nlohmann::json m = {{"from", i}, {"seq", k}};
      sim.node(i).messages().send(to, m.dump(), [&](bool ok) { ok ? ++acked : ++refused; });
    }
    sim.run_for(7ms);
  }
  std::map<NodeId, std::vector<std::string>> got;
  sim.run_until([&] {
    for (auto& [from, msgs] : sim.node(rx).messages().take_all())
      got[from].insert(got[from].end(), msgs.begin(), msgs.end());
    return acked + refused == kSenders * kEach;
  }, 120s);
  for (auto& [from, msgs] : sim.node(rx).messages().take_all())
    got[from].insert(got[from].end(), msgs.begin(), msgs.end());
  EXPECT_EQ(refused, 0u);
  EXPECT_EQ(acked, kSenders * kEach);
  ASSERT_EQ(got.size(), kSenders);
  for (size_t i = 1; i <= kSenders; ++i) {
    auto& msgs = got[sim.contact(i).id];
    ASSERT_EQ(msgs.size(), kEach) << i;
    for (size_t k = 0; k < kEach; ++k) {
      auto j = nlohmann::json::parse(msgs[k]);
      EXPECT_EQ(j["from"], i);
      EXPECT_EQ(j["seq"], k);
    }
  }
  EXPECT_GT(sim.stats().lost, 0u);
  EXPECT_GT(sim.stats().duplicated, 0u);
}

TEST(Messages, RestartedSenderIsNotMistakenForARetransmission) {
  Simulator sim;
  sim.add_node();
  sim.add_node();
  introduce(sim);
  NodeId to = sim.contact(1).id;
  EXPECT_EQ(send_sync(sim, 0, to, "1"), true);
  EXPECT_EQ(send_sync(sim, 0, to, "2"), true);
  sim.restart(0, NodeConfig{});
  sim.node(0).messages().remember(sim.contact(1));
  EXPECT_EQ(send_sync(sim, 0, to, "3"), true);
  EXPECT_EQ(sim.node(1).messages().take_all()[sim.contact(0).id], (std::vector<std::string>{"1", "2", "3"}));
}

TEST(Messages, RealSocketsSeveralNodes) {
  RealDriver driver;
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  NodeConfig cfg;
  cfg.messages.max_queue = 50;
  std::vector<Node*> nodes;
  for (int i = 0; i < 4; ++i) nodes.push_back(&driver.add_node(lo, Identity::generate(), cfg));
  driver.call([&] {
    for (size_t i = 0; i < nodes.size(); ++i)
      for (size_t j = 0; j < nodes.size(); ++j)
        if (i != j)
          nodes[i]->messages().remember(
              Contact{nodes[j]->id(), nodes[j]->public_key(), driver.local_endpoint(*nodes[j])});
  });
  auto send = [&](size_t from, const NodeId& to, std::string json) {
    std::promise<bool> p;
    driver.post([&] { nodes[from]->messages().send(to, json, [&p](bool ok) { p.set_value(ok); }); });
    return p.get_future().get();
  };
  // Everyone sends three to node 0, pipelined.
  std::vector<std::promise<bool>> results(9);
  driver.call([&] {
    for (size_t i = 1; i < 4; ++i)
      for (int k = 0; k < 3; ++k)
        nodes[i]->messages().send(nodes[0]->id(), nlohmann::json{{"i", i}, {"k", k}}.dump(),
                                  [&results, i, k](bool ok) { results[(i - 1) * 3 + k].set_value(ok); });
  });
  for (auto& r : results) EXPECT_TRUE(r.get_future().get());
  EXPECT_TRUE(send(0, nodes[0]->id(), "\"me\""));
  auto all = driver.call([&] { return nodes[0]->messages().take_all(); });
  ASSERT_EQ(all.size(), 4u);
  for (size_t i = 1; i < 4; ++i) {
    auto& msgs = all[nodes[i]->id()];
    ASSERT_EQ(msgs.size(), 3u);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(nlohmann::json::parse(msgs[k])["k"], k);
  }
  EXPECT_EQ(all[nodes[0]->id()], std::vector<std::string>{"\"me\""});
  // Queue full on node 1 (50 messages): the 51st is refused, then accepted after message_list.
  std::vector<std::promise<bool>> fill(51);
  driver.call([&] {
    for (int k = 0; k < 51; ++k)
      nodes[2]->messages().send(nodes[1]->id(), std::to_string(k), [&fill, k](bool ok) { fill[k].set_value(ok); });
  });
  for (int k = 0; k < 51; ++k) EXPECT_EQ(fill[k].get_future().get(), k < 50) << k;
  EXPECT_FALSE(send(3, nodes[1]->id(), "1"));
  EXPECT_EQ(driver.call([&] { return nodes[1]->messages().take_all()[nodes[2]->id()].size(); }), 50u);
  EXPECT_TRUE(send(3, nodes[1]->id(), "1"));
  // Unknown id: false, bounded.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(send(1, NodeId::hash_of(as_bytes("nobody")), "1"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(6));
}

// Through the DHT: no contact is primed; the sender finds the receiver by id (routing table, then lookup).
TEST(Messages, FindsTheReceiverByIdThroughTheDht) {
  SimConfig cfg;
  cfg.seed = 3;
  Simulator sim(cfg);
  const size_t n = 30;
  for (size_t i = 0; i < n; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 3), n);
  for (size_t from : {5, 17, 29}) {
    size_t to = (from * 7) % n;
    EXPECT_EQ(send_sync(sim, from, sim.contact(to).id, "{\"via\":\"dht\"}", 20s), true) << from << "->" << to;
    EXPECT_EQ(sim.node(to).messages().take_all()[sim.contact(from).id], std::vector<std::string>{"{\"via\":\"dht\"}"});
  }
  TimePoint t0 = sim.now();
  EXPECT_EQ(send_sync(sim, 3, NodeId::hash_of(as_bytes("absent")), "1", 20s), false);
  EXPECT_LE(sim.now() - t0, 6s);
}
