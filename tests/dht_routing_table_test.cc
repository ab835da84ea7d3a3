// DHT routing table in isolation: buckets, replacement cache, XOR order, and its Sybil limits (address blocks,
// the id puzzle).
#include <gtest/gtest.h>

#include <map>

#include "dht/routing_table.h"
#include "dht_test_util.h"
#include "sim/rng.h"

using namespace storjnet;
using namespace storjnet::dht;
using namespace storjnet::test;

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
    Contact c = contact_at(i, kSybilNet + 1 + i % 254);
    auto foreseen = t.refusal(c);  // what a caller checks before spending a verifying ping
    auto r = t.seen(c, TimePoint(i));
    refused += r == RoutingTable::Seen::kRefusedPrefix;
    EXPECT_EQ(foreseen == RoutingTable::Seen::kRefusedPrefix, r == RoutingTable::Seen::kRefusedPrefix) << i;
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
