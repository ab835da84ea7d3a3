// DHT building blocks in isolation: routing table, codec, value store, lookup.
#include <gtest/gtest.h>

#include <map>
#include <unordered_map>
#include <unordered_set>

#include "dht/codec.h"
#include "dht/lookup.h"
#include "dht/routing_table.h"
#include "dht/signed_value.h"
#include "dht/value_store.h"
#include "sim/rng.h"

using namespace storjnet;
using namespace storjnet::dht;

namespace {
Identity identity_n(uint32_t n) {
  std::array<uint8_t, 32> seed{};
  std::memcpy(seed.data(), &n, 4);
  seed[31] = 0x5a;
  return Identity::from_seed(seed);
}
Contact contact_n(uint32_t n) {
  return Contact::from_key(identity_n(n).public_key(), Endpoint::v4(0x0a000000u + n, 4000));
}
Bytes as_bytes_copy(std::string_view s) { return Bytes(s.begin(), s.end()); }
StoredValue value_of(const std::string& key, Bytes bytes, uint64_t version, const Identity& owner) {
  StoredValue v;
  v.key = dht_key(key);
  v.value = std::move(bytes);
  v.version = version;
  sign_value(v, owner, 1);
  return v;
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

TEST(DhtCodec, RoundTripsAndRejectsGarbage) {
  std::vector<Contact> cs;
  for (uint32_t i = 0; i < 20; ++i) cs.push_back(contact_n(i));
  cs.push_back(Contact::from_key(contact_n(99).key, *Endpoint::parse("[2001:db8::1]:4444")));
  auto back = decode_contacts(encode_contacts(cs));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, cs);

  NodeId key = dht_key("k");
  EXPECT_EQ(*decode_id_request(encode_id_request(key)), key);
  // find_node: [target] as before, or [target, flags]; bit 0 asks for placement, other bits are ignored.
  auto plain = decode_find_node_request(encode_id_request(key));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->target, key);
  EXPECT_FALSE(plain->placement);
  auto placed = decode_find_node_request(encode_find_node_request({key, true}));
  ASSERT_TRUE(placed);
  EXPECT_EQ(placed->target, key);
  EXPECT_TRUE(placed->placement);
  EXPECT_EQ(encode_find_node_request({key, false}), encode_id_request(key));
  EXPECT_FALSE(decode_id_request(encode_find_node_request({key, true})));  // find_value takes no flags
  Bytes with_flags = encode_find_node_request({key, true});
  with_flags.back() = 0x06;  // unknown bits only: a plain request
  ASSERT_TRUE(decode_find_node_request(with_flags));
  EXPECT_FALSE(decode_find_node_request(with_flags)->placement);
  with_flags.back() = 0xc0;  // nil for flags: malformed
  EXPECT_FALSE(decode_find_node_request(with_flags));

  StoredValue v;
  v.key = key;
  v.value = {1, 2, 3};
  v.version = 77;
  sign_value(v, identity_n(1), 7);
  auto st = decode_store(encode_store(v));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->key, key);
  EXPECT_EQ(st->value, v.value);
  EXPECT_EQ(st->version, 77u);
  EXPECT_EQ(st->owner, v.owner);
  EXPECT_EQ(st->signature, v.signature);
  EXPECT_EQ(st->publisher(), identity_n(1).id());
  EXPECT_TRUE(verify_value(*st, 7));

  FindValueResponse fv;
  fv.value = v;
  auto fvb = decode_find_value_response(encode_find_value_response(fv), key);
  ASSERT_TRUE(fvb && fvb->value);
  EXPECT_EQ(fvb->value->value, v.value);
  EXPECT_TRUE(same_signed_value(*fvb->value, v));
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
  cfg.min_value_charge = 0;
  cfg.max_bytes = 1000;
  cfg.max_bytes_per_publisher = 300;
  cfg.min_value_charge = 0;  // sizes alone here (the minimum charge has its own test)
  auto storage = make_memory_storage();
  ValueStore vs(*storage, cfg);
  NodeId peer = contact_n(1).id, other = contact_n(2).id;
  Identity alice = identity_n(10);
  StoredValue a = value_of("a", Bytes(100, 1), 10, alice);
  EXPECT_EQ(vs.store(a, peer), ValueStore::Result::kStored);
  EXPECT_EQ(vs.store(a, peer), ValueStore::Result::kSame);
  StoredValue older = value_of("a", Bytes(100, 2), 9, alice);
  EXPECT_EQ(vs.store(older, peer), ValueStore::Result::kHeldNewer);
  StoredValue tie = value_of("a", Bytes(100, 3), 10, alice);
  bool tie_newer = ValueStore::newer(tie, a);
  EXPECT_EQ(vs.store(tie, peer), tie_newer ? ValueStore::Result::kStored : ValueStore::Result::kHeldNewer);
  EXPECT_NE(ValueStore::newer(tie, a), ValueStore::newer(a, tie));  // total order on ties
  StoredValue b = value_of("b", Bytes(150, 1), 10, alice);
  EXPECT_EQ(vs.store(b, peer), ValueStore::Result::kStored);
  StoredValue c = value_of("c", Bytes(100, 1), 10, alice);
  EXPECT_EQ(vs.store(c, peer), ValueStore::Result::kQuota);  // 250 + 100 > 300 for this peer
  EXPECT_EQ(vs.store(c, other), ValueStore::Result::kStored);
  StoredValue d = value_of("d", Bytes(10, 1), 10, alice);
  EXPECT_EQ(vs.store(d, other), ValueStore::Result::kFull);  // count bound
  StoredValue big = value_of("e", Bytes(kMaxValueSize + 1, 1), 10, alice);
  EXPECT_EQ(vs.store(big, other), ValueStore::Result::kTooLarge);
  // Expiry by version age.
  cfg.expire_after = std::chrono::microseconds(100);
  EXPECT_EQ(vs.expire(200), 3u);
  EXPECT_EQ(vs.count(), 0u);
}

TEST(ValueStore, OnlyTheOwnerReplacesItsValueAndForgeriesFailVerification) {
  DhtConfig cfg;
  auto storage = make_memory_storage();
  ValueStore vs(*storage, cfg);
  NodeId peer = contact_n(1).id;
  Identity alice = identity_n(10), mallory = identity_n(11);
  StoredValue honest = value_of("k", as_bytes_copy("honest"), 100, alice);
  ASSERT_EQ(vs.store(honest, peer), ValueStore::Result::kStored);
  // Mallory's own signed value, even far newer, never displaces Alice's.
  StoredValue rival = value_of("k", as_bytes_copy("rival"), 1'000'000, mallory);
  EXPECT_TRUE(verify_value(rival, 1));
  EXPECT_EQ(vs.store(rival, peer), ValueStore::Result::kOtherOwner);
  // A forgery claiming Alice's key does not verify (nor does her value replayed into another network or
  // under another key, or with its version bumped).
  StoredValue forged = rival;
  forged.owner = alice.public_key();
  EXPECT_FALSE(verify_value(forged, 1));
  EXPECT_FALSE(verify_value(honest, 2));
  StoredValue moved = honest;
  moved.key = dht_key("other");
  EXPECT_FALSE(verify_value(moved, 1));
  StoredValue bumped = honest;
  bumped.version += 1;
  EXPECT_FALSE(verify_value(bumped, 1));
  // Alice herself replaces it with a newer version.
  StoredValue update = value_of("k", as_bytes_copy("update"), 101, alice);
  EXPECT_EQ(vs.store(update, peer), ValueStore::Result::kStored);
  EXPECT_EQ(vs.get(update.key)->value, update.value);
  // Once it expired, the key is free for another owner.
  cfg.expire_after = std::chrono::microseconds(10);
  EXPECT_EQ(vs.expire(1000), 1u);
  EXPECT_EQ(vs.store(rival, peer), ValueStore::Result::kStored);
}

TEST(VerifiedValues, EachDistinctSignedValueIsVerifiedOnceAndNoAlteredCopyRidesOnIt) {
  Identity alice = identity_n(10);
  StoredValue honest = value_of("k", as_bytes_copy("honest"), 100, alice);
  size_t calls = 0;
  auto verify = [&](const StoredValue& v) {
    ++calls;
    return verify_value(v, 1);
  };
  VerifiedValues checked;
  // Twenty holders answer with the same signed bytes: one signature check.
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(checked.check(honest, verify));
  EXPECT_EQ(calls, 1u);
  // Copies that keep the owner, version and signature but change anything signed are checked, and refused,
  // every time (a forgery never rides on the honest value's check, nor is it remembered).
  StoredValue altered = honest;
  altered.value = as_bytes_copy("altered");
  StoredValue moved = honest;
  moved.key = dht_key("other");
  StoredValue bumped = honest;
  bumped.version += 1;
  for (int round = 0; round < 2; ++round)
    for (auto* forged : {&altered, &moved, &bumped}) EXPECT_FALSE(checked.check(*forged, verify));
  EXPECT_EQ(calls, 1u + 6u);
  // Past its bound it stays right: the first kMax valid values are remembered, the others checked each time.
  std::vector<StoredValue> versions;
  for (uint64_t v = 1; v <= VerifiedValues::kMax + 2; ++v) versions.push_back(value_of("k", as_bytes_copy("v"), 100 + v, alice));
  calls = 0;
  for (int round = 0; round < 2; ++round)
    for (auto& v : versions) EXPECT_TRUE(checked.check(v, verify));
  EXPECT_EQ(calls, versions.size() + (versions.size() - (VerifiedValues::kMax - 1)));
}

TEST(ValueStore, EmptyValuesAreChargedAndPrefixQuotasHoldAgainstManyKeys) {
  DhtConfig cfg;
  cfg.min_value_charge = 256;
  cfg.max_bytes_per_publisher = 10 * 256;
  cfg.max_bytes_per_prefix = 25 * 256;
  auto storage = make_memory_storage();
  ValueStore vs(*storage, cfg);
  Identity owner = identity_n(10);
  Endpoint::Prefix hostile = Endpoint::v4(0x0b000001u, 1).prefix(), honest = Endpoint::v4(0x0c000001u, 1).prefix();
  // One peer: ten empty values, then its quota is spent even though they hold no bytes.
  size_t stored = 0;
  for (int i = 0; i < 20; ++i)
    stored += vs.store(value_of("e" + std::to_string(i), {}, 10, owner), contact_n(1).id, hostile) == ValueStore::Result::kStored;
  EXPECT_EQ(stored, 10u);
  // Many fresh peer keys from one /24: the prefix quota stops them at 25 values in all.
  size_t by_prefix = 0;
  ValueStore::Result last{};
  for (uint32_t p = 100; p < 200; ++p) {
    last = vs.store(value_of("p" + std::to_string(p), {}, 10, owner), contact_n(p).id, hostile);
    by_prefix += last == ValueStore::Result::kStored;
  }
  EXPECT_EQ(by_prefix, 15u);
  EXPECT_EQ(last, ValueStore::Result::kPrefixQuota);
  // A peer from another prefix is not affected.
  EXPECT_EQ(vs.store(value_of("h", as_bytes_copy("x"), 10, owner), contact_n(2).id, honest), ValueStore::Result::kStored);
}

namespace {
// A fake network's tables: each node knows the `near` nodes closest to it and `random` nodes drawn at random.
std::unordered_map<NodeId, std::vector<Contact>> fake_tables(const std::vector<Contact>& nodes, size_t near,
                                                             size_t random, uint64_t seed) {
  sim::Rng rng(seed);
  std::unordered_map<NodeId, std::vector<Contact>> knows;
  for (auto& n : nodes) {
    auto sorted = nodes;
    std::sort(sorted.begin(), sorted.end(), [&](auto& a, auto& b) { return closer(n.id, a.id, b.id); });
    std::vector<Contact> k(sorted.begin() + 1, sorted.begin() + 1 + static_cast<long>(near));
    for (size_t r = 0; r < random; ++r) k.push_back(nodes[rng.below(nodes.size())]);
    knows[n.id] = k;
  }
  return knows;
}

std::vector<Contact> by_distance(std::vector<Contact> v, const NodeId& target) {
  std::sort(v.begin(), v.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  return v;
}
}  // namespace

TEST(Lookup, FindsTheKClosestOverAFakeNetworkAndCountsRounds) {
  // 400 nodes; each knows the 8 nodes closest to it plus 8 random ones: a lookup must converge.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 8, 8, 9);
  NodeId target = dht_key("target");
  auto want = by_distance(nodes, target);
  std::vector<std::pair<Contact, QueryDone>> queue;
  QueryFn query = [&](const Contact& to, QueryDone done) { queue.emplace_back(to, std::move(done)); };
  std::optional<LookupResult> result;
  LookupParams p{nodes[0].id, target, false, false, 8, 3, 1, {}};
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

TEST(Lookup, APutsLookupEndsOnceEachPathsClosestAnsweredAndPlacesOnTheNamed) {
  // path_answers = 2 over 3 paths: a path ends once its 2 closest candidates that did not fail answered;
  // placement holds every candidate that did not fail, answered or only named, closest first. Answers to
  // requests still out when it ends (farther candidates) come to a finished lookup and change nothing.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 12, 8, 9);
  NodeId target = dht_key("placed");
  auto want = by_distance(nodes, target);
  auto run = [&](size_t path_answers) {
    std::vector<std::pair<Contact, QueryDone>> queue;
    QueryFn query = [&](const Contact& to, QueryDone done) { queue.emplace_back(to, std::move(done)); };
    std::optional<LookupResult> result;
    LookupParams p{nodes[0].id, target, false, false, 8, 3, 3, {}};
    p.path_answers = path_answers;
    p.placement = true;
    Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult r) { result = r; });
    size_t after_end = 0;
    while (!queue.empty()) {
      auto [to, done] = std::move(queue.front());
      queue.erase(queue.begin());
      after_end += result.has_value();
      if (to.id == want[1].id) {
        done(std::nullopt);  // one of the closest is down
        continue;
      }
      done(QueryResponse{knows[to.id], std::nullopt});
    }
    EXPECT_TRUE(result);
    if (result) result->stats.rpcs -= after_end;
    return result.value_or(LookupResult{});
  };
  LookupResult full = run(0);
  LookupResult put = run(2);
  std::vector<NodeId> expect;
  for (auto& c : want)
    if (c.id != want[1].id && c.id != nodes[0].id && expect.size() < 8) expect.push_back(c.id);
  ASSERT_GE(put.placement.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(put.placement[i].id, expect[i]) << i;
  for (auto& c : put.placement) EXPECT_NE(c.id, want[1].id);  // it failed: never placed on
  // Cheaper though it asks all 20 of its seeds (k = 8 here; a Dht's put starts from k seeds).
  EXPECT_LT(put.stats.rpcs, full.stats.rpcs) << put.stats.rpcs << " vs " << full.stats.rpcs;
  EXPECT_TRUE(full.placement.size() >= 8 && full.placement[0].id == expect[0]);
}

TEST(Lookup, TellsTheFirstAnswerNamingTheTargetOnceAndGoesOnToTheEnd) {
  // The target is a node that answers no one (behind a NAT): on_named hands out its contact as soon as an
  // answer names it, once, and the lookup still runs to its k closest (the neighbourhood a punch asks).
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 8, 8, 9);
  const Contact silent = nodes[200];
  std::vector<std::pair<Contact, QueryDone>> queue;
  QueryFn query = [&](const Contact& to, QueryDone done) { queue.emplace_back(to, std::move(done)); };
  std::optional<LookupResult> result;
  std::vector<Contact> named;
  size_t answered = 0, answered_when_named = 0;
  LookupParams p{nodes[0].id, silent.id, false, true, 8, 3, 1, {}};
  p.on_named = [&](const Contact& c) {
    named.push_back(c);
    answered_when_named = answered;
    EXPECT_FALSE(result) << "named after the end";
  };
  Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult r) { result = r; });
  while (!queue.empty()) {
    auto [to, done] = std::move(queue.front());
    queue.erase(queue.begin());
    if (to.id == silent.id) {
      done(std::nullopt);
      continue;
    }
    ++answered;
    done(QueryResponse{knows[to.id], std::nullopt});
  }
  ASSERT_TRUE(result);
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].id, silent.id);
  EXPECT_FALSE(result->target);  // it never answered
  ASSERT_TRUE(result->target_named);
  EXPECT_EQ(result->target_named->id, silent.id);
  EXPECT_GT(answered, answered_when_named);  // the lookup went on after naming it
  EXPECT_EQ(result->closest.size(), 8u);
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
  // Peers introduce themselves with a ping from private, loopback and public addresses, and answer the ping
  // by which a checks that they receive there before it takes them in.
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
    for (int round = 0; round < 3; ++round) {
      auto to_a = std::move(envs.back()->outbox);
      envs.back()->outbox.clear();
      for (auto& s : to_a) a.on_datagram(from[i], s.data);
      auto from_a = std::move(env_a.outbox);
      env_a.outbox.clear();
      for (auto& s : from_a)
        if (s.to == from[i]) peers.back()->on_datagram(ep_a, s.data);
    }
  }
  EXPECT_EQ(a.dht().stats().verify_pings, from.size());
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

namespace {
// Runs a lookup for `target` from `seeds` over a fake network: queries answered in FIFO order by `answer`.
LookupResult run_lookup(const LookupParams& p, const std::vector<Contact>& seeds,
                        const std::function<QueryResponse(const Contact&)>& answer) {
  std::vector<std::pair<Contact, QueryDone>> queue;
  QueryFn query = [&](const Contact& to, QueryDone done) { queue.emplace_back(to, std::move(done)); };
  std::optional<LookupResult> result;
  Lookup::start(p, seeds, query, [] { return TimePoint(0); }, [&](LookupResult r) { result = r; });
  while (!queue.empty()) {
    auto [to, done] = std::move(queue.front());
    queue.erase(queue.begin());
    done(answer(to));
  }
  EXPECT_TRUE(result);
  return result.value_or(LookupResult{});
}
}  // namespace

TEST(Lookup, DisjointPathsSurviveLiarsThatAnswerOnlyWithEachOther) {
  // Eclipse: 30 liars whose ids are the closest of 3,000 to the target (as if ground there) answer every
  // query with each other and never with a value. 300 honest nodes know only honest nodes; the 8 honest
  // nodes closest to the target hold the value. The searcher's seeds: one liar, two honest nodes.
  NodeId target = dht_key("eclipsed");
  std::vector<Contact> all;
  for (uint32_t i = 0; i < 3000; ++i) all.push_back(contact_n(1000 + i));
  std::sort(all.begin(), all.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  std::vector<Contact> liars(all.begin(), all.begin() + 30), honest(all.begin() + 30, all.begin() + 330);
  std::unordered_set<NodeId> is_liar, holder;
  for (auto& l : liars) is_liar.insert(l.id);
  for (size_t i = 0; i < 8; ++i) holder.insert(honest[i].id);
  auto knows = fake_tables(honest, 8, 8, 3);
  StoredValue v = value_of("eclipsed", Bytes{1, 2, 3}, 5, identity_n(10));
  auto answer = [&](const Contact& to) {
    QueryResponse r;
    if (is_liar.count(to.id)) r.contacts.assign(liars.begin(), liars.begin() + 8);
    else if (holder.count(to.id)) r.value = v;
    else r.contacts = knows[to.id];
    return r;
  };
  // Seeds far from the target: the honest ones are the farthest honest nodes.
  std::vector<Contact> seeds = {liars[29], honest[299], honest[298]};
  LookupParams one{contact_n(1).id, target, true, false, 8, 3, 1, {}};
  auto captured = run_lookup(one, seeds, answer);
  EXPECT_TRUE(captured.values.empty());  // one path: the liars' closeness wins it
  LookupParams three = one;
  three.paths = 3;
  three.settle_on_agreement = false;  // collect every value (settling: the next test)
  auto res = run_lookup(three, seeds, answer);
  EXPECT_GE(res.values.size(), 4u);  // two honest paths each reach the holders
  for (auto& f : res.values) EXPECT_TRUE(holder.count(f.from.id));
  // Disjoint: no node was asked twice, and in-flight per path stays within alpha (checked by the rpcs bound).
  EXPECT_LE(res.stats.rpcs, static_cast<int>(3 * 3 * 8 * 4));
}

TEST(Lookup, APutsLookupAsksPastTheColludersNearestToItsSeedsAndPlacesOnHonestHolders) {
  // A put's lookup (path_answers = 2, 3 paths) whose 6 seeds nearest the key are colluders (ids ground near the
  // key, as the 4 colluders closest to it are): each path's 2 closest are liars that name only each other. The
  // paths still ask their farther, honest seeds, whose answers name the key's honest neighbourhood; so the k = 8
  // closest placed hold the 4 honest nodes among the key's true 8 closest, not only colluders.
  NodeId target = dht_key("placed among liars");
  std::vector<Contact> all;
  for (uint32_t i = 0; i < 3000; ++i) all.push_back(contact_n(20000 + i));
  std::sort(all.begin(), all.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  std::vector<Contact> liars(all.begin(), all.begin() + 4), honest(all.begin() + 4, all.begin() + 40);
  liars.insert(liars.end(), all.begin() + 40, all.begin() + 46);  // near the key, nearer than any honest seed
  honest.insert(honest.end(), all.begin() + 46, all.begin() + 400);
  std::unordered_set<NodeId> is_liar;
  for (auto& l : liars) is_liar.insert(l.id);
  auto knows = fake_tables(honest, 8, 8, 3);
  auto answer = [&](const Contact& to) {
    QueryResponse r;
    r.contacts = is_liar.count(to.id) ? liars : knows[to.id];
    return r;
  };
  // Our table's closest to the key, closest first (dealt to the paths in turn): the 6 colluders, then honest
  // nodes well away from the key.
  std::vector<Contact> seeds(liars.begin() + 4, liars.end());
  for (size_t i = 60; i < 120; i += 10) seeds.push_back(honest[i]);
  LookupParams p{contact_n(1).id, target, false, false, 8, 3, 3, {}};
  p.path_answers = 2;
  p.placement = true;
  auto res = run_lookup(p, seeds, answer);
  ASSERT_GE(res.placement.size(), 8u);
  size_t honest_placed = 0;
  for (size_t i = 0; i < 8; ++i) honest_placed += !is_liar.count(res.placement[i].id);
  EXPECT_EQ(honest_placed, 4u);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_NE(std::find_if(res.placement.begin(), res.placement.begin() + 8,
                           [&](const Contact& c) { return c.id == honest[i].id; }),
              res.placement.begin() + 8)
        << "the honest node " << i << " closest to the key is not placed on";
}

TEST(Lookup, AValueLookupSettlesWhenItsPathsAgreeAndRunsToTheEndWhenOneAnswerDisagrees) {
  // 300 nodes, each knowing its 8 closest and 8 random others; the 8 closest to the key hold its value.
  NodeId target = dht_key("settle");
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 300; ++i) nodes.push_back(contact_n(5000 + i));
  std::sort(nodes.begin(), nodes.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  sim::Rng rng(4);
  std::unordered_map<NodeId, std::vector<Contact>> knows;
  for (auto& n : nodes) {
    auto sorted = nodes;
    std::sort(sorted.begin(), sorted.end(), [&](auto& a, auto& b) { return closer(n.id, a.id, b.id); });
    std::vector<Contact> k(sorted.begin() + 1, sorted.begin() + 9);
    for (int r = 0; r < 8; ++r) k.push_back(nodes[rng.below(nodes.size())]);
    knows[n.id] = k;
  }
  Identity owner = identity_n(10);
  StoredValue v = value_of("settle", Bytes{1}, 5, owner), stale = value_of("settle", Bytes{0}, 4, owner);
  std::unordered_set<NodeId> liars;  // answer with the owner's older value (a replayed, validly signed version)
  auto answer = [&](const Contact& to) {
    QueryResponse r;
    bool holds = false;
    for (size_t i = 0; i < 8; ++i) holds = holds || nodes[i].id == to.id;
    if (liars.count(to.id)) r.value = stale;
    else if (holds) r.value = v;
    else r.contacts = knows[to.id];
    return r;
  };
  std::vector<Contact> seeds = {nodes[299], nodes[298], nodes[297], nodes[296], nodes[295], nodes[294]};
  LookupParams p{contact_n(1).id, target, true, false, 8, 3, 3, {}};
  auto full_params = p;
  full_params.settle_on_agreement = false;
  auto full = run_lookup(full_params, seeds, answer);
  auto settled = run_lookup(p, seeds, answer);
  ASSERT_FALSE(settled.values.empty());
  for (auto& f : settled.values) EXPECT_TRUE(same_signed_value(f.value, v));
  EXPECT_LT(settled.stats.rpcs, full.stats.rpcs);  // agreeing paths stop at their first value
  EXPECT_GT(full.values.size(), settled.values.size());
  // One holder at a time replays an older version. Either the paths settle before reaching it (all they saw
  // agrees), or they see it, disagree, and every path runs to its end so the caller sees both versions.
  size_t contested = 0;
  for (size_t liar = 0; liar < 8; ++liar) {
    liars = {nodes[liar].id};
    auto res = run_lookup(p, seeds, answer);
    bool saw_stale = false, saw_new = false;
    for (auto& f : res.values) {
      saw_stale = saw_stale || same_signed_value(f.value, stale);
      saw_new = saw_new || same_signed_value(f.value, v);
    }
    if (!saw_stale) continue;
    ++contested;
    EXPECT_TRUE(saw_new) << "liar " << liar;
    EXPECT_EQ(res.values.size(), full.values.size()) << "liar " << liar;
    EXPECT_EQ(res.stats.rpcs, full.stats.rpcs) << "liar " << liar;
  }
  EXPECT_GT(contested, 0u);
}

TEST(Lookup, CollidersMetOnTheWayDoNotSettleAGet) {
  // 300 nodes; the 8 closest to the key hold the owner's value. 30 colluders scattered far from the key (every
  // ninth node from the 30th on) answer every query with their own, validly signed value for the key. Seeds:
  // one colluder and one far honest node per path, so every path meets a colluder at once.
  NodeId target = dht_key("colluded");
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 300; ++i) nodes.push_back(contact_n(7000 + i));
  std::sort(nodes.begin(), nodes.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  sim::Rng rng(5);
  std::unordered_map<NodeId, std::vector<Contact>> knows;
  for (auto& n : nodes) {
    auto sorted = nodes;
    std::sort(sorted.begin(), sorted.end(), [&](auto& a, auto& b) { return closer(n.id, a.id, b.id); });
    std::vector<Contact> k(sorted.begin() + 1, sorted.begin() + 9);
    for (int r = 0; r < 8; ++r) k.push_back(nodes[rng.below(nodes.size())]);
    knows[n.id] = k;
  }
  std::unordered_set<NodeId> colluders;
  std::vector<Contact> seeds;
  for (size_t i = 30; i < 300; i += 9) {
    colluders.insert(nodes[i].id);
    if (seeds.size() < 3) seeds.push_back(nodes[i]);
  }
  for (size_t i = 297; i < 300; ++i) seeds.push_back(nodes[i]);  // dealt round-robin: one of each per path
  StoredValue honest = value_of("colluded", Bytes{1}, 5, identity_n(10));
  StoredValue forged = value_of("colluded", Bytes{2}, 6, identity_n(11));
  auto answer = [&](const Contact& to) {
    QueryResponse r;
    bool holds = false;
    for (size_t i = 0; i < 8; ++i) holds = holds || nodes[i].id == to.id;
    if (colluders.count(to.id)) r.value = forged;
    else if (holds) r.value = honest;
    else r.contacts = knows[to.id];
    return r;
  };
  auto saw = [](const LookupResult& res, const StoredValue& v) {
    return std::any_of(res.values.begin(), res.values.end(), [&](auto& f) { return same_signed_value(f.value, v); });
  };
  LookupParams p{contact_n(1).id, target, true, false, 8, 3, 3, {}};
  auto naive = run_lookup(p, seeds, answer);
  EXPECT_TRUE(saw(naive, forged));
  EXPECT_FALSE(saw(naive, honest));  // the colluders' first values settled it: no vote possible
  p.settle_within = nodes[7].id ^ target;  // where the holders are
  p.settle_values = 2;
  auto guarded = run_lookup(p, seeds, answer);
  EXPECT_TRUE(saw(guarded, honest));  // the paths went on to the holders, so the caller sees both and votes
  EXPECT_TRUE(saw(guarded, forged));
}

TEST(Lookup, EnoughEndsItBeforeTheNextRequestAndAnswersStillDueChangeNothing) {
  // A refresh's `enough` (its bucket filled) is checked before every step: once true, the lookup ends at once,
  // sends nothing more, and the answers still due reach a finished lookup. Checked at the start too.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 8, 8, 9);
  NodeId target = dht_key("refresh");
  size_t answered = 0, asked = 0;
  std::vector<std::pair<Contact, QueryDone>> queue;
  QueryFn query = [&](const Contact& to, QueryDone done) {
    ++asked;
    queue.emplace_back(to, std::move(done));
  };
  int finished = 0;
  std::optional<LookupResult> result;
  LookupParams p{nodes[0].id, target, false, false, 8, 3, 1, {}};
  p.enough = [&] { return answered >= 4; };
  Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult r) {
    ++finished;
    result = std::move(r);
  });
  size_t asked_at_end = 0;
  while (!queue.empty()) {
    auto [to, done] = std::move(queue.front());
    queue.erase(queue.begin());
    ++answered;
    done(QueryResponse{knows[to.id], std::nullopt});
    if (finished && !asked_at_end) asked_at_end = asked;
  }
  ASSERT_EQ(finished, 1);
  EXPECT_EQ(asked, asked_at_end) << "a request went out after enough";
  EXPECT_LE(asked, 4u + 3u);  // the 4 answers, plus at most alpha in flight when the 4th came
  EXPECT_EQ(result->closest.size(), 4u);

  // Already enough when it starts: no request at all.
  asked = 0;
  finished = 0;
  p.enough = [] { return true; };
  Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult) { ++finished; });
  EXPECT_EQ(finished, 1);
  EXPECT_EQ(asked, 0u);
}

TEST(Lookup, ReentrantAnswersFinishExactlyOnce) {
  // The query function answers synchronously (a failure, then contacts): the state machine must not
  // re-enter itself into a double finish or a use after free.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 50; ++i) nodes.push_back(contact_n(i));
  int finished = 0, asked = 0;
  QueryFn query = [&](const Contact&, QueryDone done) {
    if (++asked % 3 == 0) return done(std::nullopt);
    done(QueryResponse{{nodes[static_cast<size_t>(asked) % nodes.size()]}, std::nullopt});
  };
  LookupParams p{nodes[0].id, dht_key("x"), false, false, 8, 3, 3, {}};
  Lookup::start(p, {nodes[1], nodes[2], nodes[3], nodes[4]}, query, [] { return TimePoint(0); },
                [&](LookupResult) { ++finished; });
  EXPECT_EQ(finished, 1);
}

// DhtConfig::newcomer_wait (1 s by default): a request sender with an unproven address is pinged at once while
// its bucket holds fewer than k/2 contacts (the table needs it now: a join, the node everyone bootstraps
// through), and only after the wait once its bucket holds k/2 (our own lookups usually prove it meanwhile).
TEST(DhtNewcomers, PingedAtOnceWhileTheirBucketIsThinAndAfterTheWaitOnceItHoldsHalf) {
  test::ManualEnv env_a(1);
  std::array<uint8_t, 32> seed{};
  seed[0] = 201;
  Node a(env_a, Identity::from_seed(seed));
  const size_t half = a.dht().config().k / 2;
  ASSERT_GT(a.dht().config().newcomer_wait, Duration{});
  Endpoint ep_a = Endpoint::v4(0x01020304, 4000);
  Contact ca = Contact::from_key(a.public_key(), ep_a);
  std::vector<std::unique_ptr<test::ManualEnv>> envs;
  std::vector<std::unique_ptr<Engine>> peers;
  std::vector<Endpoint> from;
  // Peers in a's bucket 0 (first bit unlike a's), each from its own /24 (the address-block limits allow 2).
  for (int s = 1; peers.size() < half + 1; ++s) {
    seed[0] = static_cast<uint8_t>(s);
    seed[1] = 7;
    Identity id = Identity::from_seed(seed);
    if (((id.id() ^ a.id()).bytes()[0] & 0x80) == 0) continue;
    envs.push_back(std::make_unique<test::ManualEnv>(10 + s));
    peers.push_back(std::make_unique<Engine>(*envs.back(), std::move(id)));
    from.push_back(Endpoint::v4(0x05000001 + (static_cast<uint32_t>(peers.size()) << 8), 1000));
  }
  // Peer i pings a, and both sides' datagrams are carried until nothing is left (a's check ping included).
  auto exchange = [&](size_t i) {
    for (int round = 0; round < 4; ++round) {
      auto to_a = std::move(envs[i]->outbox);
      envs[i]->outbox.clear();
      for (auto& s : to_a) a.on_datagram(from[i], s.data);
      auto from_a = std::move(env_a.outbox);
      env_a.outbox.clear();
      for (auto& s : from_a)
        if (s.to == from[i]) peers[i]->on_datagram(ep_a, s.data);
    }
  };
  for (size_t i = 0; i < half; ++i) {
    peers[i]->ping(ca, [](auto) {});
    exchange(i);
  }
  EXPECT_EQ(a.dht().stats().verify_pings, half);  // at once: the bucket was thin
  EXPECT_EQ(a.dht().peers().size(), half);
  peers[half]->ping(ca, [](auto) {});
  exchange(half);
  EXPECT_EQ(a.dht().stats().verify_pings, half);  // the bucket holds k/2: it waits
  EXPECT_EQ(a.dht().peers().size(), half);
  env_a.advance(a.dht().config().newcomer_wait);
  a.on_wake();
  exchange(half);
  EXPECT_EQ(a.dht().stats().verify_pings, half + 1);
  EXPECT_EQ(a.dht().peers().size(), half + 1);
}
