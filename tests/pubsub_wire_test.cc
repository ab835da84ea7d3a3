// Pubsub building blocks (Bloom filter, wire codecs, dedupe set) and bad input from the network.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "common/msgpack_util.h"
#include "node/node_internals.h"
#include "engine/engine.h"
#include "pubsub/bloom.h"
#include "pubsub/seen_set.h"
#include "pubsub/serving.h"
#include "pubsub/wire.h"
#include "pubsub_test_util.h"
#include "storjnet/pubsub.h"

using namespace storjnet;
using namespace storjnet::pubsub;
using storjnet::test::connect_pubsub;
using storjnet::test::event_json;

TEST(PubsubBloom, AddContainsAndFalsePositiveRateMatchesTheory) {
  BloomFilter f(8192, 4);
  EXPECT_EQ(f.bits(), 8192u);
  for (int i = 0; i < 500; ++i) f.add(TopicHash::of("topic-" + std::to_string(i)));
  for (int i = 0; i < 500; ++i) EXPECT_TRUE(f.contains(TopicHash::of("topic-" + std::to_string(i))));
  int fp = 0, trials = 20000;
  for (int i = 0; i < trials; ++i) fp += f.contains(TopicHash::of("other-" + std::to_string(i)));
  double expect = BloomFilter::false_positive_rate(8192, 4, 500);  // about 0.0024
  EXPECT_NEAR(double(fp) / trials, expect, 0.003);
  BloomFilter g(8192, 4);
  g.add(TopicHash::of("x"));
  EXPECT_TRUE(f.merge(g));
  EXPECT_TRUE(f.contains(TopicHash::of("x")));
  EXPECT_FALSE(f.merge(BloomFilter(1024, 4)));
  EXPECT_EQ(BloomFilter(100, 4).bits(), 128u);
}

TEST(PubsubBloom, AFilterWithNoBitSetHoldsNoBitmap) {
  BloomFilter f(8192, 4), zero(8192, 4);
  EXPECT_EQ(f.heap_bytes(), 0u);
  EXPECT_TRUE(f.merge(zero));  // merging nothing allocates nothing
  f.set_word(3, 0);
  EXPECT_EQ(f.heap_bytes(), 0u);
  EXPECT_FALSE(f.contains(TopicHash::of("x")));
  EXPECT_TRUE(f.empty());
  f.add(TopicHash::of("x"));
  EXPECT_EQ(f.heap_bytes(), 1024u);
  EXPECT_TRUE(f.contains(TopicHash::of("x")));
  BloomFilter g(8192, 4);
  EXPECT_TRUE(g.merge(f));  // a union into an empty filter copies the bitmap
  EXPECT_EQ(g, f);
  EXPECT_TRUE(g.contains(TopicHash::of("x")));
  f.clear();
  EXPECT_EQ(f.heap_bytes(), 0u);
  EXPECT_EQ(f, zero);
  BloomFilter h(8192, 4);
  h.set_word(0, 1);
  h.set_word(0, 0);  // allocated but all zero: equal to one never allocated
  EXPECT_EQ(h, zero);
  EXPECT_NE(g, zero);
}

TEST(PubsubWire, FilterRoundTripsDenseAndSparse) {
  WireLimits lim;
  FilterBody f;
  f.levels.assign(3, BloomFilter(8192, 4));
  f.levels[0].add(TopicHash::of("a"));                                                 // sparse
  for (int i = 0; i < 2000; ++i) f.levels[2].add(TopicHash::of(std::to_string(i)));  // dense
  Bytes b = encode_filter(f);
  EXPECT_LT(b.size(), 1200u + 8192 / 8);
  FilterBody g;
  ASSERT_EQ(decode_filter(b, lim, g), DecodeStatus::kOk);
  EXPECT_EQ(g.levels, f.levels);
  EXPECT_EQ(peek_update_kind(b), UpdateKind::kFilter);
}

TEST(PubsubWire, WrongFilterSizeHashesOrDepthAreRejected) {
  WireLimits lim;
  FilterBody f;
  f.levels.assign(3, BloomFilter(4096, 4));
  FilterBody g;
  EXPECT_EQ(decode_filter(encode_filter(f), lim, g), DecodeStatus::kWrongSize);
  f.levels.assign(2, BloomFilter(8192, 4));
  EXPECT_EQ(decode_filter(encode_filter(f), lim, g), DecodeStatus::kWrongSize);
  f.levels.assign(3, BloomFilter(8192, 5));
  EXPECT_EQ(decode_filter(encode_filter(f), lim, g), DecodeStatus::kWrongSize);
  Bytes junk = {0x94, 0x00, 0x01};
  EXPECT_EQ(decode_filter(junk, lim, g), DecodeStatus::kMalformed);
}

TEST(PubsubWire, NotifyRoundTripClampsTtlAndTruncatesPublishers) {
  WireLimits lim;
  NotifyBody n;
  n.kind = NotifyKind::kQuasar;
  n.id.fill(7);
  n.topic = "t";
  n.event = R"({"a":1})";
  n.ttl = 1'000'000;
  for (int i = 0; i < 500; ++i) {
    std::array<uint8_t, 20> a{};
    a[0] = i & 0xff, a[1] = i >> 8;
    n.publishers.push_back(NodeId(a));
  }
  NotifyBody m;
  DecodeNotes notes;
  ASSERT_EQ(decode_notify(encode_notify(n), lim, m, &notes), DecodeStatus::kOk);
  EXPECT_EQ(m.ttl, lim.max_ttl);
  EXPECT_TRUE(notes.ttl_clamped);
  EXPECT_TRUE(notes.publishers_truncated);
  ASSERT_EQ(m.publishers.size(), lim.max_publishers);
  EXPECT_EQ(m.publishers.back(), n.publishers.back());  // the most recent kept
  n.event = "{bad";
  EXPECT_EQ(decode_notify(encode_notify(n), lim, m), DecodeStatus::kBadEvent);
  n.event = std::string(kMaxEventJson + 1, '1');
  EXPECT_EQ(decode_notify(encode_notify(n), lim, m), DecodeStatus::kTooLarge);
  n.event = "1";
  n.topic = std::string(kMaxTopic + 1, 't');
  EXPECT_EQ(decode_notify(encode_notify(n), lim, m), DecodeStatus::kTooLarge);
}

TEST(PubsubWire, RegisterRoundTrip) {
  RegisterBody r;
  r.kind = UpdateKind::kReplica;
  r.topic_key = dht_key("t");
  r.subscribe = false;
  r.hops = 3;
  r.subscriber[0] = 9;
  r.endpoint = *Endpoint::from_ip("10.0.0.1", 4000);
  r.issued_us = 1'700'000'000'123'456ull;
  r.signature[63] = 7;
  RegisterBody s;
  ASSERT_EQ(decode_register(encode_register(r), s), DecodeStatus::kOk);
  EXPECT_EQ(s.kind, r.kind);
  EXPECT_EQ(s.topic_key, r.topic_key);
  EXPECT_EQ(s.subscribe, false);
  EXPECT_EQ(s.hops, 3u);
  EXPECT_EQ(s.subscriber, r.subscriber);
  ASSERT_TRUE(s.endpoint);
  EXPECT_EQ(*s.endpoint, *r.endpoint);
  EXPECT_EQ(s.issued_us, r.issued_us);
  EXPECT_EQ(s.signature, r.signature);
  r.endpoint.reset();  // first hop: no endpoint
  ASSERT_EQ(decode_register(encode_register(r), s), DecodeStatus::kOk);
  EXPECT_FALSE(s.endpoint);
  // The signed statement binds network, topic, direction and time.
  RegisterBody t = r;
  t.subscribe = true;
  EXPECT_NE(register_statement(1, r), register_statement(1, t));
  EXPECT_NE(register_statement(1, r), register_statement(2, r));
  t = r;
  t.issued_us += 1;
  EXPECT_NE(register_statement(1, r), register_statement(1, t));
  // The holders the subscriber names travel and are signed: a forwarder cannot change whom it is served by.
  for (int i = 0; i < 20; ++i) r.holders.push_back(dht_key("h" + std::to_string(i)));
  ASSERT_EQ(decode_register(encode_register(r), s), DecodeStatus::kOk);
  EXPECT_EQ(s.holders, r.holders);
  t = r;
  t.holders.back() = dht_key("attacker");
  EXPECT_NE(register_statement(1, r), register_statement(1, t));
  t.holders.pop_back();
  EXPECT_NE(register_statement(1, r), register_statement(1, t));
  while (r.holders.size() <= kMaxRegisterHolders) r.holders.push_back(dht_key("more" + std::to_string(r.holders.size())));
  EXPECT_EQ(decode_register(encode_register(r), s), DecodeStatus::kMalformed);
}

TEST(PubsubWire, ServeCarriesThePublishersHoldersBounded) {
  WireLimits lim;
  NotifyBody n;
  n.kind = NotifyKind::kServe;
  n.id.fill(3);
  n.topic = "t";
  n.event = "1";
  for (int i = 0; i < 20; ++i) n.publishers.push_back(dht_key("h" + std::to_string(i)));
  NotifyBody m;
  ASSERT_EQ(decode_notify(encode_notify(n), lim, m), DecodeStatus::kOk);
  EXPECT_EQ(m.kind, NotifyKind::kServe);
  EXPECT_EQ(m.publishers, n.publishers);
  for (int i = 0; i < 100; ++i) n.publishers.push_back(dht_key("x" + std::to_string(i)));
  DecodeNotes notes;
  ASSERT_EQ(decode_notify(encode_notify(n), lim, m, &notes), DecodeStatus::kOk);
  EXPECT_EQ(m.publishers.size(), kMaxRegisterHolders);
  EXPECT_TRUE(notes.publishers_truncated);
}

// The serving rule (pubsub/serving.h): of the holders both the subscriber and the publisher named, exactly
// `serving` deliver each event, every holder agrees which, and the choice changes from event to event.
TEST(PubsubServing, ExactlyServingOfTheSharedHoldersDeliverAndTheChoiceVariesPerEvent) {
  std::vector<NodeId> sub_holders, pub_holders;
  for (int i = 0; i < 20; ++i) sub_holders.push_back(dht_key("h" + std::to_string(i)));
  // The publisher's lookup found 16 of the same and 4 others.
  for (int i = 4; i < 24; ++i) pub_holders.push_back(dht_key("h" + std::to_string(i)));
  const HolderSet named(pub_holders.begin(), pub_holders.end());
  const NodeId subscriber = dht_key("subscriber");
  std::map<NodeId, int> chosen;
  for (int e = 0; e < 400; ++e) {
    EventId id{};
    id[0] = static_cast<uint8_t>(e), id[1] = static_cast<uint8_t>(e >> 8);
    size_t serving = 0;
    for (const auto& h : pub_holders) {
      const bool s = serves(id, h, subscriber, sub_holders, named, 8);
      serving += s;
      if (s) ++chosen[h];
      // A holder the subscriber did not name serves only through another's entry, never here.
      if (std::find(sub_holders.begin(), sub_holders.end(), h) == sub_holders.end()) {
        EXPECT_FALSE(s);
      }
    }
    EXPECT_EQ(serving, 8u);
  }
  // Every shared holder is chosen for some events and not for others (16 shared, 8 chosen: about half).
  EXPECT_EQ(chosen.size(), 16u);
  for (const auto& [h, n] : chosen) {
    EXPECT_GT(n, 120);
    EXPECT_LT(n, 280);
  }
  // Fewer than 2 x `serving` shared holders (lookups that disagree): all of them serve.
  const HolderSet few(sub_holders.begin(), sub_holders.begin() + 15);
  EventId id{};
  for (int i = 0; i < 15; ++i) EXPECT_TRUE(serves(id, sub_holders[i], subscriber, sub_holders, few, 8));
  EXPECT_FALSE(serves(id, sub_holders[15], subscriber, sub_holders, few, 8));  // not named by the publisher
  // Nobody shared (a registration from an older holder set) or nobody named (greedy): the holder serves.
  const HolderSet others{dht_key("o1"), dht_key("o2")};
  EXPECT_TRUE(serves(id, dht_key("o1"), subscriber, sub_holders, others, 8));
  EXPECT_TRUE(serves(id, dht_key("o1"), subscriber, {}, others, 8));
}

// Crowding (pubsub/serving.h): the holders a lookup finds near a key, against the density a node sees where it
// stands. About 1 in an honest network, rarely 2; large with ids placed near the key, whether packed on it or
// spread at a density that merely doubles the region's.
namespace {
NodeId placed_near(const NodeId& key, const NodeId& random, int shared_bits) {
  auto d = random.bytes();
  for (int i = 0; i < shared_bits; ++i) d[static_cast<size_t>(i / 8)] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
  return key ^ NodeId(d);
}
// The n ids of `ids` closest to `target`, `target` itself left out.
std::vector<NodeId> closest_of(const std::vector<NodeId>& ids, const NodeId& target, size_t n) {
  std::vector<NodeId> out;
  for (const auto& id : ids)
    if (id != target) out.push_back(id);
  std::sort(out.begin(), out.end(), [&](const NodeId& a, const NodeId& b) { return (a ^ target) < (b ^ target); });
  out.resize(std::min(n, out.size()));
  return out;
}
}  // namespace

TEST(PubsubServing, CrowdingTellsIdsPlacedNearAKeyFromTheNetworksDensity) {
  std::vector<NodeId> net;
  for (int i = 0; i < 5000; ++i) net.push_back(dht_key("node" + std::to_string(i)));
  const size_t k = 20;
  // Honest: over 200 keys seen from 200 nodes, crowding stays near 1 and reaches 2 rarely.
  size_t crowded = 0;
  std::vector<double> seen;
  for (int t = 0; t < 200; ++t) {
    const NodeId key = dht_key("topic" + std::to_string(t));
    const NodeId& self = net[static_cast<size_t>(t) * 25];
    const NodeId radius = closest_of(net, self, k).back() ^ self;
    seen.push_back(crowding(key, closest_of(net, key, k), radius, k));
    crowded += seen.back() >= 2.0;
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_GT(seen[100], 0.8);
  EXPECT_LT(seen[100], 1.25);
  EXPECT_LE(crowded, 6u);  // at most 3%
  // Attacked keys, judged by 50 observers each (each sees the density where it stands; that estimate's spread
  // is what lets a few miss): the farthest of the 20 found tells how many of them are extra.
  const NodeId key = dht_key("news");
  const auto detected = [&](const std::vector<NodeId>& ids) {
    const auto found = closest_of(ids, key, k);
    size_t n = 0;
    for (size_t o = 0; o < 50; ++o) n += crowding(key, found, closest_of(net, net[o], k).back() ^ net[o], k) >= 2.0;
    return n;
  };
  EXPECT_LE(detected(net), 5u);
  // 15 ids placed on the key (16 bits shared, where 5,000 nodes leave nobody): 15 of the 20 holders.
  std::vector<NodeId> attacked = net;
  for (int j = 0; j < 15; ++j) attacked.push_back(placed_near(key, dht_key("p" + std::to_string(j)), 16));
  EXPECT_GE(detected(attacked), 40u);
  // 40 ids spread evenly over the region that holds the key's 20 honest closest (its first 8 bits): nothing
  // stands out among the 20 found but their number, which the density seen elsewhere gives away.
  attacked = net;
  for (int j = 0; j < 40; ++j) attacked.push_back(placed_near(key, dht_key("q" + std::to_string(j)), 8));
  EXPECT_GE(detected(attacked), 45u);
  // Too few found to judge, or no density known: 0.
  const NodeId radius = closest_of(net, net[7], k).back() ^ net[7];
  EXPECT_EQ(crowding(key, closest_of(net, key, 9), radius, k), 0.0);
  EXPECT_EQ(crowding(key, closest_of(net, key, k), NodeId{}, k), 0.0);
}

// Dedupe keys: a delivery is keyed by its content, a holder's copy by its sender.
TEST(PubsubServing, DedupeKeysBindContentAndSender) {
  NotifyBody a;
  a.id.fill(1);
  a.topic = "t";
  a.event = "1";
  NotifyBody b = a;
  b.event = "2";
  EXPECT_NE(content_key(a), content_key(b));
  EXPECT_EQ(content_key(a), content_key(NotifyBody(a)));
  b = a;
  b.topic = "u";
  EXPECT_NE(content_key(a), content_key(b));
  EXPECT_NE(per_sender(a.id, dht_key("p")), per_sender(a.id, dht_key("q")));
  EXPECT_EQ(per_sender(a.id, dht_key("p")), per_sender(a.id, dht_key("p")));
}

TEST(PubsubSeenSet, BoundedInTimeAndCount) {
  SeenSet s(10s, 3);
  EventId a{}, b{}, c{}, d{};
  a[0] = 1, b[0] = 2, c[0] = 3, d[0] = 4;
  TimePoint t{0};
  EXPECT_TRUE(s.test_and_set(a, 1, t));
  EXPECT_FALSE(s.test_and_set(a, 1, t));
  EXPECT_TRUE(s.test_and_set(a, 2, t));
  s.test_and_set(b, 1, t);
  s.test_and_set(c, 1, t);
  s.test_and_set(d, 1, t);  // evicts a
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.evicted(), 1u);
  EXPECT_FALSE(s.has(a, 1));
  s.expire(t + 11s);
  EXPECT_EQ(s.size(), 0u);
}

namespace {
struct BadNet {
  BadNet() {
    SimConfig c;
    c.seed = 21;
    sim = std::make_unique<Simulator>(c);
    for (int i = 0; i < 40; ++i) sim->add_node();
    oracle = connect_pubsub(*sim, 21);
    sim->run_for(2s);
  }
  Pubsub& ps(size_t i) { return sim->node(i).pubsub(); }
  Engine& eng(size_t i) { return NodeInternals::engine(sim->node(i)); }
  uint64_t total_forwards() {
    uint64_t n = 0;
    for (size_t i = 0; i < sim->size(); ++i) {
      auto s = ps(i).stats();
      n += s.quasar_forwards + s.walk_forwards;
    }
    return n;
  }
  std::unique_ptr<Simulator> sim;
  std::unique_ptr<OracleTopology> oracle;
};
}  // namespace

TEST(PubsubBadInput, WrongSizeAndAllOnesFiltersAreCountedAndAttractNothing) {
  BadNet net;
  FilterBody small;
  small.levels.assign(3, BloomFilter(1024, 4));
  net.eng(0).notify(net.sim->contact(1), Method::kQuasarUpdate, encode_filter(small));
  FilterBody ones;
  ones.levels.assign(3, BloomFilter(8192, 4));
  for (auto& l : ones.levels)
    for (size_t w = 0; w < l.word_count(); ++w) l.set_word(w, ~uint64_t{0});
  net.eng(0).notify(net.sim->contact(1), Method::kQuasarUpdate, encode_filter(ones));
  net.sim->run_for(1s);
  auto s = net.ps(1).stats();
  EXPECT_EQ(s.wrong_size_filters, 1u);
  EXPECT_EQ(s.saturated_levels, 3u);
  EXPECT_LT(net.ps(1).filter_level("anything-at-all"), 0);  // saturation does not spread
  for (size_t i = 0; i < 40; ++i) EXPECT_LT(net.ps(i).filter_level("some-topic"), 0);
  // An event on a topic nobody subscribes to is not sent to the all-ones neighbour by filter match.
  net.ps(1).publish("nobody", event_json(1));
  net.sim->run_for(1s);
  EXPECT_EQ(net.ps(1).stats().quasar_forwards, 0u);
}

TEST(PubsubBadInput, HugeTtlForgedPublishersAndFloodsAreBounded) {
  BadNet net;
  for (size_t i = 0; i < 40; i += 4) net.ps(i).subscribe("flood");
  net.sim->run_for(2s);
  NotifyBody ev;
  ev.kind = NotifyKind::kQuasar;
  ev.topic = "flood";
  ev.event = "1";
  ev.ttl = 0xffffffff;
  for (int i = 0; i < 1000; ++i) ev.publishers.push_back(dht_key(std::to_string(i)));
  // The same event 500 times, then 200 distinct events: each node forwards an event id at most once, to at
  // most max_fanout neighbours, and the TTL is clamped.
  ev.id.fill(1);
  Bytes same = encode_notify(ev);
  // The flooder first proves node 5's address (a ping answered from there), or its own engine would hold all
  // but 3x of what node 5 sent it (docs/protocol.md 10.1): the flood must reach node 5 to test node 5.
  bool pinged = false;
  net.eng(0).ping(net.sim->contact(5), [&](std::optional<NodeId> id) { pinged = id.has_value(); });
  net.sim->run_until([&] { return pinged; }, 2s);
  ASSERT_TRUE(pinged);
  for (int i = 0; i < 500; ++i) net.eng(0).notify(net.sim->contact(5), Method::kQuasarNotify, same);
  net.sim->run_for(2s);
  auto s5 = net.ps(5).stats();
  EXPECT_EQ(s5.ttl_clamped, 500u);
  EXPECT_EQ(s5.publishers_truncated, 500u);
  uint64_t after_same = net.total_forwards();
  EXPECT_LE(after_same, 40u * 8);
  for (int e = 0; e < 200; ++e) {
    ev.id.fill(static_cast<uint8_t>(e + 2));
    ev.id[15] = 0xee;
    net.eng(0).notify(net.sim->contact(5), Method::kQuasarNotify, encode_notify(ev));
  }
  net.sim->run_for(3s);
  uint64_t per_event = (net.total_forwards() - after_same) / 200;
  EXPECT_LE(per_event, 40u * 8);
  uint64_t delivered = 0, dups = 0;
  for (size_t i = 0; i < 40; ++i) {
    delivered += net.ps(i).stats().delivered;
    dups += net.ps(i).take_events("flood").size();
  }
  EXPECT_EQ(delivered, dups);  // each delivered event was queued exactly once
  EXPECT_LE(delivered, 201u * 10);
  // Garbage bodies are counted, not crashing anything.
  Bytes junk = {0x96, 0x00, 0xc4, 0x01, 0x00};
  net.eng(0).notify(net.sim->contact(6), Method::kQuasarNotify, junk);
  net.eng(0).notify(net.sim->contact(6), Method::kQuasarUpdate, junk);
  net.sim->run_for(1s);
  EXPECT_EQ(net.ps(6).stats().malformed, 2u);
}
