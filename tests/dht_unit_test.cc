// DHT building blocks in isolation: routing table, codec, value store, lookup.
#include <gtest/gtest.h>

#include <map>

#include "dht/codec.h"
#include "dht/lookup.h"
#include "dht/routing_table.h"
#include "dht/value_store.h"
#include "sim/rng.h"

using namespace storjnet;
using namespace storjnet::dht;

namespace {
Contact contact_n(uint32_t n) {
  std::array<uint8_t, 32> seed{};
  std::memcpy(seed.data(), &n, 4);
  seed[31] = 0x5a;
  auto id = Identity::from_seed(seed);
  return Contact::from_key(id.public_key(), Endpoint::v4(0x0a000000u + n, 4000));
}
}  // namespace

TEST(RoutingTable, KeepsAtMostKPerBucketAndCachesNewcomers) {
  NodeId self = NodeId::hash_of(as_bytes("self"));
  RoutingTable t(self, 4);
  std::map<int, int> per_bucket;
  int full = 0;
  for (uint32_t i = 0; i < 400; ++i) {
    Contact c = contact_n(i);
    int b = t.bucket_of(c.id);
    auto r = t.seen(c, TimePoint(i));
    if (per_bucket[b] < 4) {
      EXPECT_EQ(r, RoutingTable::Seen::kAdded);
      ++per_bucket[b];
    } else {
      EXPECT_EQ(r, RoutingTable::Seen::kFull);
      ++full;
    }
  }
  EXPECT_GT(full, 0);
  for (size_t b = 0; b < RoutingTable::kBuckets; ++b) EXPECT_LE(t.bucket(b).size(), 4u);
  // Seeing a known contact again moves it to the tail (most recently seen).
  Contact first = t.bucket(0).front().contact;
  EXPECT_EQ(t.seen(first, TimePoint(1000)), RoutingTable::Seen::kUpdated);
  EXPECT_EQ(t.bucket(0).back().contact.id, first.id);
  EXPECT_EQ(t.seen(Contact{self, {}, Endpoint::v4(1, 1)}, TimePoint(0)), RoutingTable::Seen::kIgnored);
}

TEST(RoutingTable, RepeatedFailuresEvictAndPromoteAReplacement) {
  NodeId self = NodeId::hash_of(as_bytes("self"));
  RoutingTable t(self, 2);
  std::vector<Contact> bucket0;
  for (uint32_t i = 0; bucket0.size() < 3; ++i) {
    Contact c = contact_n(i);
    if (t.bucket_of(c.id) == 0) bucket0.push_back(c);
  }
  t.seen(bucket0[0], TimePoint(1));
  t.seen(bucket0[1], TimePoint(2));
  EXPECT_EQ(t.seen(bucket0[2], TimePoint(3)), RoutingTable::Seen::kFull);
  EXPECT_EQ(t.oldest_in_bucket_of(bucket0[2].id)->id, bucket0[0].id);
  // Heard from at or after quiet_since: a good entry, not offered for a liveness ping.
  EXPECT_FALSE(t.oldest_in_bucket_of(bucket0[2].id, TimePoint(1)));
  EXPECT_EQ(t.oldest_in_bucket_of(bucket0[2].id, TimePoint(2))->id, bucket0[0].id);
  EXPECT_FALSE(t.failed(bucket0[0].id, 3));
  EXPECT_FALSE(t.failed(bucket0[0].id, 3));
  EXPECT_TRUE(t.failed(bucket0[0].id, 3));
  EXPECT_FALSE(t.find(bucket0[0].id));
  EXPECT_TRUE(t.find(bucket0[2].id));  // promoted from the replacement cache
  EXPECT_EQ(t.size(), 2u);
}

TEST(RoutingTable, ClosestIsExactlyTheXorOrder) {
  NodeId self = NodeId::hash_of(as_bytes("self"));
  RoutingTable t(self, 20);
  std::vector<Contact> all;
  for (uint32_t i = 0; i < 300; ++i) {
    Contact c = contact_n(i);
    if (t.seen(c, TimePoint(i)) == RoutingTable::Seen::kAdded) all.push_back(c);
  }
  sim::Rng rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    std::array<uint8_t, 20> b;
    for (auto& x : b) x = static_cast<uint8_t>(rng.next());
    NodeId target(b);
    if (trial == 0) target = self;
    auto got = t.closest(target, 20);
    auto want = all;
    std::sort(want.begin(), want.end(), [&](auto& x, auto& y) { return closer(target, x.id, y.id); });
    want.resize(std::min<size_t>(20, want.size()));
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].id, want[i].id) << "trial " << trial << " i " << i;
  }
}

namespace {
// Contact n at a chosen address (keys as contact_n).
Contact contact_at(uint32_t n, uint32_t ip) {
  Contact c = contact_n(n);
  c.endpoint = Endpoint::v4(ip, 4000);
  return c;
}
constexpr uint32_t kSybilNet = 0xcb007100;  // 203.0.113.0/24, one public block
}  // namespace

TEST(RoutingTableSybil, OneSubnetCannotFillABucketOrTheTable) {
  NodeId self = NodeId::hash_of(as_bytes("self"));
  RoutingTable::Admission adm;
  adm.per_prefix_bucket = 2;
  adm.per_prefix_table = 10;
  RoutingTable t(self, 20, adm);
  // 5000 ids, every one from the same /24 (254 hosts, many ports: one machine or one rented subnet).
  size_t refused = 0;
  for (uint32_t i = 0; i < 5000; ++i) {
    auto r = t.seen(contact_at(i, kSybilNet + 1 + i % 254), TimePoint(i));
    refused += r == RoutingTable::Seen::kRefusedPrefix;
  }
  EXPECT_EQ(t.size(), 10u);  // the table-wide share of one block
  EXPECT_EQ(refused, 4990u);
  for (size_t b = 0; b < RoutingTable::kBuckets; ++b) EXPECT_LE(t.bucket(b).size(), 2u);
  EXPECT_EQ(t.in_prefix(Endpoint::v4(kSybilNet + 77, 1)), 10u);
  // Honest nodes, each in its own /24, still get in everywhere the Sybils would have been.
  size_t honest = 0;
  for (uint32_t i = 5000; i < 5400; ++i)
    honest += t.seen(contact_at(i, 0x50000000u + (i << 8) + 1), TimePoint(i)) == RoutingTable::Seen::kAdded;
  EXPECT_GT(honest, 50u);
  EXPECT_EQ(t.size(), 10u + honest);
  // A known Sybil moving to another block is charged there.
  Contact sybil;
  for (const auto& c : t.all())
    if (t.in_prefix(c.endpoint) == 10u) sybil = c;
  ASSERT_TRUE(sybil.endpoint.valid());
  Contact elsewhere = sybil;
  elsewhere.endpoint = Endpoint::v4(0xc6336401, 5000);  // 198.51.100.1: an empty block
  EXPECT_EQ(t.seen(elsewhere, TimePoint(9000)), RoutingTable::Seen::kUpdated);
  EXPECT_EQ(t.in_prefix(Endpoint::v4(kSybilNet, 1)), 9u);
  EXPECT_EQ(t.in_prefix(elsewhere.endpoint), 1u);
  // Private and loopback addresses are not limited (local networks, the simulator).
  RoutingTable local(self, 20, adm);
  size_t added = 0;
  for (uint32_t i = 0; i < 300; ++i)
    added += local.seen(contact_at(i, 0x7f000001), TimePoint(i)) == RoutingTable::Seen::kAdded;
  EXPECT_GT(added, 30u);
}

TEST(RoutingTableSybil, FullBucketsDoNotCacheOrPromoteOverTheLimit) {
  NodeId self = NodeId::hash_of(as_bytes("self"));
  RoutingTable::Admission adm;
  adm.per_prefix_bucket = 1;
  RoutingTable t(self, 2, adm);
  std::vector<uint32_t> b0;  // contact numbers whose ids fall in bucket 0
  for (uint32_t i = 0; b0.size() < 4; ++i)
    if (t.bucket_of(contact_n(i).id) == 0) b0.push_back(i);
  const uint32_t A = kSybilNet, B = 0x50000000, C = 0x50000100, D = 0x50000200;
  using S = RoutingTable::Seen;
  EXPECT_EQ(t.seen(contact_at(b0[0], A + 1), TimePoint(1)), S::kAdded);
  EXPECT_EQ(t.seen(contact_at(b0[1], A + 2), TimePoint(2)), S::kRefusedPrefix);  // A has its bucket share
  EXPECT_EQ(t.seen(contact_at(b0[1], B + 1), TimePoint(3)), S::kAdded);
  EXPECT_EQ(t.seen(contact_at(b0[2], A + 3), TimePoint(4)), S::kRefusedPrefix);  // not even cached
  EXPECT_EQ(t.seen(contact_at(b0[3], C + 1), TimePoint(5)), S::kFull);           // cached
  t.remove(contact_n(b0[0]).id);
  EXPECT_TRUE(t.find(contact_n(b0[3]).id));  // promoted: C had room
  // A cached contact whose block filled up meanwhile is not promoted.
  EXPECT_EQ(t.seen(contact_at(b0[0], D + 1), TimePoint(6)), S::kFull);
  EXPECT_EQ(t.seen(contact_at(b0[1], D + 2), TimePoint(7)), S::kUpdated);  // moved B -> D
  t.remove(contact_n(b0[3]).id);
  EXPECT_FALSE(t.find(contact_n(b0[0]).id));
  EXPECT_EQ(t.size(), 1u);
}

TEST(RoutingTableSybil, IdsFailingThePuzzleAreRefused) {
  NodeId self = NodeId::hash_of(as_bytes("self"));
  RoutingTable::Admission adm;
  adm.network_id = 0x53544a31;
  adm.puzzle_bits = 8;
  RoutingTable t(self, 20, adm);
  size_t refused = 0, added = 0;
  for (uint32_t i = 0; i < 512; ++i) {
    Contact c = contact_at(i, 0x50000000u + (i << 8) + 1);
    auto r = t.seen(c, TimePoint(i));
    EXPECT_EQ(r == RoutingTable::Seen::kRefusedPuzzle, !id_puzzle_ok(c.id, adm.network_id, 8));
    refused += r == RoutingTable::Seen::kRefusedPuzzle;
    added += r == RoutingTable::Seen::kAdded;
  }
  EXPECT_GT(refused, 480u);  // about 255 in 256 random ids fail an 8-bit puzzle
  // An identity generated for the puzzle gets in.
  Identity solved = Identity::generate(adm.network_id, 8);
  EXPECT_EQ(t.seen(Contact::from_key(solved.public_key(), Endpoint::v4(0x01010101, 1)), TimePoint(999)),
            RoutingTable::Seen::kAdded);
  EXPECT_EQ(t.size(), added + 1);
}

TEST(DhtCodec, RoundTripsAndRejectsGarbage) {
  std::vector<Contact> cs;
  for (uint32_t i = 0; i < 20; ++i) cs.push_back(contact_n(i));
  cs.push_back(Contact::from_key(contact_n(99).key, *Endpoint::parse("[2001:db8::1]:4444")));
  auto back = decode_contacts(encode_contacts(cs));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, cs);

  NodeId key = dht_key("k");
  EXPECT_EQ(*decode_id_request(encode_id_request(key)), key);

  StoredValue v;
  v.key = key;
  v.value = {1, 2, 3};
  v.version = 77;
  v.publisher = contact_n(1).id;
  auto st = decode_store(encode_store(v));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->key, key);
  EXPECT_EQ(st->value, v.value);
  EXPECT_EQ(st->version, 77u);
  EXPECT_EQ(st->publisher, v.publisher);

  FindValueResponse fv;
  fv.value = v;
  auto fvb = decode_find_value_response(encode_find_value_response(fv), key);
  ASSERT_TRUE(fvb && fvb->value);
  EXPECT_EQ(fvb->value->value, v.value);
  FindValueResponse fc;
  fc.contacts = cs;
  auto fcb = decode_find_value_response(encode_find_value_response(fc), key);
  ASSERT_TRUE(fcb);
  EXPECT_FALSE(fcb->value);
  EXPECT_EQ(fcb->contacts.size(), cs.size());

  uint8_t garbage[] = {0x93, 0xc4, 0x05, 1, 2};
  EXPECT_FALSE(decode_contacts(garbage));
  EXPECT_FALSE(decode_store(garbage));
  EXPECT_FALSE(decode_id_request(garbage));
  EXPECT_FALSE(decode_find_value_response(garbage, key));
  // An array header claiming 2^32 elements must not allocate or crash.
  uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(decode_contacts(huge));
  // Contacts with garbage addresses are skipped, the rest kept.
  Bytes mixed = encode_contacts({cs[0], Contact::from_key(cs[1].key, Endpoint::v4(0, 0)), cs[2]});
  auto m = decode_contacts(mixed);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->size(), 2u);
}

TEST(ValueStore, NewerWinsEverywhereAndBoundsHold) {
  DhtConfig cfg;
  cfg.max_values = 3;
  cfg.max_bytes = 1000;
  cfg.max_bytes_per_publisher = 300;
  cfg.min_value_charge = 0;  // sizes alone here (the minimum charge has its own test)
  auto storage = make_memory_storage();
  ValueStore vs(*storage, cfg);
  NodeId peer = contact_n(1).id, other = contact_n(2).id;
  StoredValue a{dht_key("a"), Bytes(100, 1), 10, peer, 0, false};
  EXPECT_EQ(vs.store(a, peer), ValueStore::Result::kStored);
  EXPECT_EQ(vs.store(a, peer), ValueStore::Result::kSame);
  StoredValue older = a;
  older.version = 9;
  older.value = Bytes(100, 2);
  EXPECT_EQ(vs.store(older, peer), ValueStore::Result::kHeldNewer);
  StoredValue tie = a;
  tie.value = Bytes(100, 3);
  bool tie_newer = ValueStore::newer(tie, a);
  EXPECT_EQ(vs.store(tie, peer), tie_newer ? ValueStore::Result::kStored : ValueStore::Result::kHeldNewer);
  EXPECT_NE(ValueStore::newer(tie, a), ValueStore::newer(a, tie));  // total order on ties
  StoredValue b{dht_key("b"), Bytes(150, 1), 10, peer, 0, false};
  EXPECT_EQ(vs.store(b, peer), ValueStore::Result::kStored);
  StoredValue c{dht_key("c"), Bytes(100, 1), 10, peer, 0, false};
  EXPECT_EQ(vs.store(c, peer), ValueStore::Result::kQuota);  // 250 + 100 > 300 for this peer
  EXPECT_EQ(vs.store(c, other), ValueStore::Result::kStored);
  StoredValue d{dht_key("d"), Bytes(10, 1), 10, other, 0, false};
  EXPECT_EQ(vs.store(d, other), ValueStore::Result::kFull);  // count bound
  StoredValue big{dht_key("e"), Bytes(kMaxValueSize + 1, 1), 10, other, 0, false};
  EXPECT_EQ(vs.store(big, other), ValueStore::Result::kTooLarge);
  // Expiry by version age.
  cfg.expire_after = std::chrono::microseconds(100);
  EXPECT_EQ(vs.expire(200), 3u);
  EXPECT_EQ(vs.count(), 0u);
}

TEST(Lookup, FindsTheKClosestOverAFakeNetworkAndCountsRounds) {
  // 400 nodes; each knows the 8 nodes closest to it plus 8 random ones: a lookup must converge.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  sim::Rng rng(9);
  std::map<NodeId, std::vector<Contact>> knows;
  for (auto& n : nodes) {
    auto sorted = nodes;
    std::sort(sorted.begin(), sorted.end(), [&](auto& a, auto& b) { return closer(n.id, a.id, b.id); });
    std::vector<Contact> k(sorted.begin() + 1, sorted.begin() + 9);
    for (int r = 0; r < 8; ++r) k.push_back(nodes[rng.below(nodes.size())]);
    knows[n.id] = k;
  }
  NodeId target = dht_key("target");
  auto want = nodes;
  std::sort(want.begin(), want.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  std::vector<std::pair<Contact, QueryDone>> queue;
  QueryFn query = [&](const Contact& to, QueryDone done) { queue.emplace_back(to, std::move(done)); };
  std::optional<LookupResult> result;
  LookupParams p{nodes[0].id, target, false, false, 8, 3, {}};
  Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult r) { result = r; });
  size_t max_in_flight = 0;
  while (!queue.empty()) {
    max_in_flight = std::max(max_in_flight, queue.size());
    auto [to, done] = std::move(queue.front());
    queue.erase(queue.begin());
    if (to.id == want[3].id) {
      done(std::nullopt);  // one of the closest is down
      continue;
    }
    done(QueryResponse{knows[to.id], std::nullopt});
  }
  ASSERT_TRUE(result);
  EXPECT_LE(max_in_flight, 3u);
  ASSERT_EQ(result->closest.size(), 8u);
  std::vector<NodeId> expect;
  for (auto& c : want)
    if (c.id != want[3].id && c.id != nodes[0].id && expect.size() < 8) expect.push_back(c.id);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(result->closest[i].id, expect[i]);
  EXPECT_GE(result->stats.rounds, 2);
  EXPECT_GE(result->stats.rpcs, 8);
}

#include "engine/engine.h"
#include "storjnet/node.h"
#include "test_env.h"

TEST(DhtAdvertising, NoPrivateOrLoopbackContactsToAPublicPeer) {
  test::ManualEnv env_a(1);
  std::array<uint8_t, 32> seed{};
  seed[0] = 200;
  Node a(env_a, Identity::from_seed(seed));
  Endpoint ep_a = Endpoint::v4(0x01020304, 4000);
  Contact ca = Contact::from_key(a.public_key(), ep_a);
  // Peers introduce themselves with a ping from private, loopback and public addresses.
  std::vector<std::unique_ptr<test::ManualEnv>> envs;
  std::vector<std::unique_ptr<Engine>> peers;
  std::vector<Endpoint> from = {*Endpoint::parse("10.1.2.3:1"), *Endpoint::parse("192.168.1.9:2"),
                                *Endpoint::parse("127.0.0.1:3"), *Endpoint::parse("100.64.0.1:4"),
                                *Endpoint::parse("5.6.7.8:5"), *Endpoint::parse("9.9.9.9:6"),
                                *Endpoint::parse("[fd00::1]:7"), *Endpoint::parse("[2001:db8::5]:8")};
  for (size_t i = 0; i < from.size(); ++i) {
    envs.push_back(std::make_unique<test::ManualEnv>(10 + i));
    seed[0] = static_cast<uint8_t>(i + 1);
    peers.push_back(std::make_unique<Engine>(*envs.back(), Identity::from_seed(seed)));
    peers.back()->ping(ca, [](auto) {});
    for (auto& s : envs.back()->outbox) a.on_datagram(from[i], s.data);
  }
  EXPECT_EQ(a.dht().peers().size(), from.size());
  env_a.outbox.clear();
  // A public requester asks for contacts.
  test::ManualEnv env_q(99);
  seed[0] = 150;
  Engine q(env_q, Identity::from_seed(seed));
  std::optional<std::vector<Contact>> got;
  q.request(ca, Method::kFindNode, dht::encode_id_request(dht_key("x")), [&](RpcResult&& r) {
    if (r.ok()) got = dht::decode_contacts(r.payload);
  });
  for (auto& s : env_q.outbox) a.on_datagram(*Endpoint::parse("8.8.4.4:9"), s.data);
  for (auto& s : env_a.outbox) q.on_datagram(ep_a, s.data);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), 3u);  // 5.6.7.8, 9.9.9.9, 2001:db8::5
  for (auto& c : *got) EXPECT_FALSE(c.endpoint.is_private_or_loopback()) << c.endpoint.to_string();
  // A private requester gets everything.
  got.reset();
  env_q.outbox.clear();
  env_a.outbox.clear();
  q.request(ca, Method::kFindNode, dht::encode_id_request(dht_key("x")), [&](RpcResult&& r) {
    if (r.ok()) got = dht::decode_contacts(r.payload);
  });
  // From a new, unproven address the long answer waits for the address proof (challenge, echo): pump both ways.
  for (int round = 0; round < 4 && !got; ++round) {
    auto from_q = std::move(env_q.outbox);
    env_q.outbox.clear();
    for (auto& s : from_q) a.on_datagram(*Endpoint::parse("10.9.9.9:9"), s.data);
    auto from_a = std::move(env_a.outbox);
    env_a.outbox.clear();
    for (auto& s : from_a) q.on_datagram(ep_a, s.data);
  }
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), from.size());  // the requester itself is never included
}
