// A put of a key whose neighbourhood recent puts of other keys found whole stores on the key's k closest nodes
// at once, without a lookup (DhtConfig::neighbourhood_reuse, dht::NeighbourhoodCache): only where the regions
// those lookups found cover the smallest id subtree around the key that holds k of their nodes, and never on
// other nodes than a lookup would have found.
#include <gtest/gtest.h>

#include <algorithm>

#include "dht/neighbourhood_cache.h"
#include "sim/network_builder.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using dht::NeighbourhoodCache;

namespace {

// An id whose first two bytes are a and b, the rest zero.
NodeId id_of(uint8_t a, uint8_t b = 0) {
  std::array<uint8_t, NodeId::kSize> bytes{};
  bytes[0] = a;
  bytes[1] = b;
  return NodeId(bytes);
}

Contact contact_of(uint8_t a, uint8_t b = 0) {
  Contact c;
  c.id = id_of(a, b);
  c.endpoint = Endpoint::v4(0x0a000000u + a * 256u + b, 4000);
  return c;
}

std::vector<Contact> by_distance(std::vector<Contact> v, const NodeId& key) {
  std::sort(v.begin(), v.end(), [&](const Contact& x, const Contact& y) { return (x.id ^ key) < (y.id ^ key); });
  return v;
}

std::vector<uint8_t> first_bytes(const std::vector<Contact>& v) {
  std::vector<uint8_t> out;
  for (auto& c : v) out.push_back(c.id.bytes()[0]);
  return out;
}

constexpr size_t kK = 4;

}  // namespace

TEST(NeighbourhoodCache, ARegionIsTheSubtreeOfIdsNearerTheKeyThanItsKthClosestAndItsUnconfirmedCandidates) {
  const TimePoint t0{std::chrono::hours(1)};
  // Key 0x00: the k-th closest (0x10, 3 leading bits shared) bounds the region of ids sharing 4 leading bits.
  auto placement = by_distance({contact_of(0x01), contact_of(0x02), contact_of(0x05), contact_of(0x10),
                                contact_of(0x40)}, id_of(0x00));
  auto r = NeighbourhoodCache::region_of(id_of(0x00), placement, {}, kK, t0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->depth, 4);
  EXPECT_EQ(first_bytes(r->members), (std::vector<uint8_t>{0x01, 0x02, 0x05}));
  // A candidate the lookup could not confirm (0x03 failed: maybe an honest node a liar named at a false
  // address) narrows the region to leave it out: only ids sharing 7 bits, 0x00 and 0x01, are vouched for.
  r = NeighbourhoodCache::region_of(id_of(0x00), placement, {id_of(0x03)}, kK, t0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->depth, 7);
  EXPECT_EQ(first_bytes(r->members), (std::vector<uint8_t>{0x01}));
  r = NeighbourhoodCache::region_of(id_of(0x00), placement, {id_of(0x90)}, kK, t0);  // outside: no change
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->depth, 4);
  EXPECT_FALSE(NeighbourhoodCache::region_of(id_of(0x00), placement, {id_of(0x00)}, kK, t0).has_value());
  // 0x0c shares 4 leading bits, the region's depth: inside; 0x10 shares 3, as the k-th (0x12) does: outside.
  placement = by_distance({contact_of(0x01), contact_of(0x0c), contact_of(0x10), contact_of(0x12)}, id_of(0x00));
  r = NeighbourhoodCache::region_of(id_of(0x00), placement, {}, kK, t0);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->depth, 4);
  EXPECT_EQ(first_bytes(r->members), (std::vector<uint8_t>{0x01, 0x0c}));
  // Fewer than k found: no region (a lookup that met fewer than k nodes vouches for no subtree).
  placement.pop_back();
  EXPECT_FALSE(NeighbourhoodCache::region_of(id_of(0x00), placement, {}, kK, t0).has_value());
}

TEST(NeighbourhoodCache, GivesAKeysClosestOnlyWhereRegionsCoverTheSubtreeHoldingThemAll) {
  const TimePoint t0{std::chrono::hours(1)};
  NeighbourhoodCache cache(60s, kK, kK);
  // Region A: ids 000x xxxx (depth 3) holding 0x01, 0x08, 0x12; region B: 001x xxxx holding 0x21, 0x30.
  cache.remember({id_of(0x00), 3, {contact_of(0x01), contact_of(0x08), contact_of(0x12)}, t0}, t0);
  EXPECT_FALSE(cache.placement(id_of(0x02), t0).has_value());  // three members in all: fewer than k
  cache.remember({id_of(0x20), 3, {contact_of(0x21), contact_of(0x30)}, t0 + 1s}, t0 + 1s);
  // Key 0x02: the smallest subtree around it holding k members is 00xx xxxx, which A and B cover whole.
  auto p = cache.placement(id_of(0x02), t0 + 2s);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->depth, 2);
  EXPECT_EQ(first_bytes(p->targets), (std::vector<uint8_t>{0x01, 0x08, 0x12, 0x21}));
  EXPECT_EQ(p->newest, t0 + 1s);  // the newer region's age
  // With 01xx xxxx (0x41) too, 0xxx xxxx is known whole, but 1xxx xxxx is not: a key there needs the whole id
  // space to hold k members, and half of it is unknown.
  cache.remember({id_of(0x40), 2, {contact_of(0x41)}, t0 + 2s}, t0 + 2s);
  EXPECT_FALSE(cache.placement(id_of(0x90), t0 + 2s).has_value());
  // Key 0x44: the subtree holding k members is 0xxx xxxx, covered by A, B and 01xx xxxx.
  p = cache.placement(id_of(0x44), t0 + 2s);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->depth, 1);
  EXPECT_EQ(first_bytes(p->targets), (std::vector<uint8_t>{0x41, 0x01, 0x08, 0x12}));

  // A hole: without B, the subtree 00xx xxxx around 0x02 is not known whole (a node at 0x25 may exist).
  cache.forget(id_of(0x20), 3, t0 + 1s);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.placement(id_of(0x02), t0 + 2s).has_value());
  EXPECT_FALSE(cache.placement(id_of(0x44), t0 + 2s).has_value());
}

// The replacements (targets past the k-th) are the next closest in order too: the subtree must hold them all.
TEST(NeighbourhoodCache, ReplacementsComeFromTheCoveredSubtreeOnly) {
  const TimePoint t0{std::chrono::hours(1)};
  NeighbourhoodCache cache(60s, 3, 4);  // k = 3 stores and one replacement
  cache.remember({id_of(0x00), 3, {contact_of(0x01), contact_of(0x08), contact_of(0x12)}, t0}, t0);
  cache.remember({id_of(0x80), 1, {contact_of(0x81), contact_of(0x90), contact_of(0xa0)}, t0}, t0);
  // 000x xxxx holds the k = 3, but the replacement would come from 1xxx xxxx while 001x xxxx and 01xx xxxx,
  // nearer the key, are unknown: no placement.
  EXPECT_FALSE(cache.placement(id_of(0x02), t0).has_value());
  cache.remember({id_of(0x20), 3, {contact_of(0x21)}, t0}, t0);
  auto p = cache.placement(id_of(0x02), t0);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(first_bytes(p->targets), (std::vector<uint8_t>{0x01, 0x08, 0x12, 0x21}));
}

TEST(NeighbourhoodCache, ANewerRegionReplacesTheOnesItOverlapsAndRegionsAgeFromTheirLookup) {
  const TimePoint t0{std::chrono::hours(1)};
  NeighbourhoodCache cache(60s, kK, kK);
  cache.remember({id_of(0x00), 3, {contact_of(0x01), contact_of(0x08)}, t0}, t0);
  cache.remember({id_of(0x20), 3, {contact_of(0x21), contact_of(0x30)}, t0}, t0);
  ASSERT_TRUE(cache.placement(id_of(0x02), t0).has_value());
  // A newer lookup found 00xx xxxx whole again, and 0x08 gone: it replaces both.
  cache.remember({id_of(0x10), 2, {contact_of(0x01), contact_of(0x21), contact_of(0x30), contact_of(0x33)},
                  t0 + 5s}, t0 + 5s);
  EXPECT_EQ(cache.size(), 1u);
  auto p = cache.placement(id_of(0x02), t0 + 5s);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(first_bytes(p->targets), (std::vector<uint8_t>{0x01, 0x21, 0x33, 0x30}));
  EXPECT_EQ(p->newest, t0 + 5s);
  // A region an older lookup found (its put's stores ended later) does not replace a newer view of its ids.
  cache.remember({id_of(0x00), 3, {contact_of(0x01), contact_of(0x08)}, t0 + 4s}, t0 + 6s);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(first_bytes(cache.placement(id_of(0x02), t0 + 6s)->targets),
            (std::vector<uint8_t>{0x01, 0x21, 0x33, 0x30}));
  // forget() leaves a region newer than the put that found its placement stale.
  cache.forget(id_of(0x02), static_cast<int>(NodeId::kBits), t0 + 4s);
  EXPECT_EQ(cache.size(), 1u);
  cache.forget(id_of(0x02), static_cast<int>(NodeId::kBits), t0 + 5s);
  EXPECT_EQ(cache.size(), 0u);
  // A region serves until ttl after its lookup ended, however recently it was remembered or used.
  cache.remember({id_of(0x10), 2, {contact_of(0x01), contact_of(0x21), contact_of(0x30), contact_of(0x33)},
                  t0 + 5s}, t0 + 6s);
  EXPECT_TRUE(cache.placement(id_of(0x02), t0 + 64s).has_value());
  EXPECT_FALSE(cache.placement(id_of(0x02), t0 + 65s).has_value());
  EXPECT_EQ(cache.size(), 0u);
  cache.remember({id_of(0x10), 2, {contact_of(0x01)}, t0}, t0 + 60s);  // already ttl old
  EXPECT_EQ(cache.size(), 0u);
  // At most kMax regions: the oldest go first.
  for (size_t i = 0; i < NeighbourhoodCache::kMax + 3; ++i)
    cache.remember({id_of(static_cast<uint8_t>(i)), 8, {contact_of(static_cast<uint8_t>(i))}, t0 + 60s}, t0 + 60s);
  EXPECT_EQ(cache.size(), NeighbourhoodCache::kMax);
  NeighbourhoodCache off(Duration{}, kK, kK);
  off.remember({id_of(0x10), 2, {contact_of(0x01)}, t0}, t0);
  EXPECT_EQ(off.size(), 0u);
}

namespace {

struct Net {
  // `nodes` joined and settled for a minute; `putter` puts.
  Net(const SimConfig& c, int nodes, size_t putter) : sim(c), putter(putter) {
    for (int i = 0; i < nodes; ++i) sim.add_node();
    EXPECT_EQ(sim::join_network(sim, c.seed), static_cast<size_t>(nodes));
    sim.run_for(60s);
  }
  Simulator sim;
  size_t putter = 0;
};

struct Put {
  PutResult result;
  Duration took{};
  std::vector<size_t> accepted_by;  // the nodes that accepted a store of it
};

// after: how long to run on once the put answered, for its other stores to answer (or time out).
Put put(Net& n, const std::string& key, const std::string& value, Duration after = 3s) {
  std::vector<uint64_t> accepted(n.sim.size());
  for (size_t i = 0; i < n.sim.size(); ++i)
    if (n.sim.alive(i)) accepted[i] = n.sim.node(i).dht().stats().stores_accepted;
  std::optional<PutResult> r;
  TimePoint start = n.sim.now();
  n.sim.node(n.putter).dht().put(key, as_bytes(value), [&](const PutResult& p) { r = p; });
  n.sim.run_until([&] { return r.has_value(); }, 30s);
  Put out{r.value_or(PutResult{}), n.sim.now() - start, {}};
  n.sim.run_for(after);
  EXPECT_TRUE(r && r->ok) << key << ": " << (r ? r->error : "no answer");
  for (size_t i = 0; i < n.sim.size(); ++i)
    if (n.sim.alive(i) && n.sim.node(i).dht().stats().stores_accepted > accepted[i]) out.accepted_by.push_back(i);
  std::sort(out.accepted_by.begin(), out.accepted_by.end());
  return out;
}

// The k closest live nodes to the key, the putter aside.
std::vector<size_t> k_closest(Net& n, const std::string& key) {
  const NodeId h = dht_key(key);
  std::vector<size_t> all;
  for (size_t i = 0; i < n.sim.size(); ++i)
    if (n.sim.alive(i) && i != n.putter) all.push_back(i);
  std::sort(all.begin(), all.end(),
            [&](size_t a, size_t b) { return (n.sim.contact(a).id ^ h) < (n.sim.contact(b).id ^ h); });
  all.resize(n.sim.node(0).dht().config().k);
  std::sort(all.begin(), all.end());
  return all;
}

}  // namespace

// One node puts many keys: once its lookups found the regions around a key whole, the key's put stores at once,
// and every put, reused or not, lands on exactly the key's k closest nodes; every node reads every value back.
TEST(DhtNeighbourhoodReuse, AFewPutsLookUpThenTheirNeighboursStoreAtOnceOnTheirKClosest) {
  SimConfig cfg;
  cfg.seed = 17;
  Net n(cfg, 200, 7);
  Dht& d = n.sim.node(n.putter).dht();

  size_t reused = 0, looked_up = 0;
  for (int i = 0; i < 60; ++i) {
    const std::string key = "many-" + std::to_string(i);
    Put p = put(n, key, "v" + std::to_string(i), 1s);  // the links lose nothing: the stores answered by then
    EXPECT_EQ(p.accepted_by, k_closest(n, key)) << key << (p.result.placement_reused ? " (reused)" : "");
    if (p.result.placement_reused) {
      ++reused;
      EXPECT_EQ(p.result.lookup.rpcs, 0) << key;
      EXPECT_LE(p.took, 95ms) << key;  // one round trip: links are 5-45 ms one way
    } else {
      ++looked_up;
    }
  }
  EXPECT_EQ(d.stats().neighbourhoods_reused, reused);
  EXPECT_EQ(d.stats().placements_reused, 0u);
  EXPECT_GE(reused, 20u);  // the regions cover most of a 200-node network after a few dozen puts
  EXPECT_GE(looked_up, 5u);

  for (size_t g = 0; g < n.sim.size(); g += 40) {
    for (int i = 0; i < 60; i += 7) {
      const std::string key = "many-" + std::to_string(i);
      std::optional<GetResult> r;
      n.sim.node(g).dht().get(key, [&](GetResult x) { r = std::move(x); });
      n.sim.run_until([&] { return r.has_value(); }, 30s);
      ASSERT_TRUE(r && r->value) << key << " from " << g;
      const std::string want = "v" + std::to_string(i);
      EXPECT_EQ(*r->value, Bytes(want.begin(), want.end())) << key;
    }
  }
}

// Regions go stale: the closest node to a key whose neighbourhood is known whole dies; the next put there still
// lands on the k closest that live (the dead node's turn passes on to the next closest), and drops the regions
// around it, so the put after looks up. Without neighbourhood_reuse every put looks up.
TEST(DhtNeighbourhoodReuse, AStoreLostInAReusedNeighbourhoodDropsItsRegionsAndTheNextPutLooksUp) {
  SimConfig cfg;
  cfg.seed = 17;
  Net n(cfg, 200, 7);
  Dht& d = n.sim.node(n.putter).dht();
  std::string key;
  for (int i = 0;; ++i) {  // put until one is reused
    ASSERT_LT(i, 100);
    key = "stale-" + std::to_string(i);
    if (put(n, key, "v", 1s).result.placement_reused) break;
  }
  // A reused put remembers no placement of its own key: the next put of it goes by the regions again.
  const auto closest = k_closest(n, key);
  const NodeId h = dht_key(key);
  n.sim.kill(*std::min_element(closest.begin(), closest.end(), [&](size_t a, size_t b) {
    return (n.sim.contact(a).id ^ h) < (n.sim.contact(b).id ^ h);
  }));
  const uint64_t before = d.stats().neighbourhoods_reused;
  Put lost = put(n, key, "w");
  EXPECT_TRUE(lost.result.placement_reused);
  EXPECT_EQ(d.stats().neighbourhoods_reused, before + 1);
  EXPECT_EQ(lost.accepted_by, k_closest(n, key)) << "the dead node's turn passed on to the next closest";
  Put again = put(n, key, "x");
  EXPECT_FALSE(again.result.placement_reused) << "its regions were dropped: it looks up";
  EXPECT_GT(again.result.lookup.rpcs, 0);
  EXPECT_EQ(again.accepted_by, k_closest(n, key));

  SimConfig off = cfg;
  off.node.dht.neighbourhood_reuse = false;
  Net m(off, 100, 3);
  for (int j = 0; j < 30; ++j) EXPECT_FALSE(put(m, "off-" + std::to_string(j), "v", 1s).result.placement_reused);
  EXPECT_EQ(m.sim.node(m.putter).dht().stats().neighbourhoods_reused, 0u);
}

// A node the putter's lookups could not reach (a liar may name an honest node at a false address; here a
// partition hides it) is left out of the regions those lookups found, not vouched for as absent: once it is back,
// puts near it store on it again.
TEST(DhtNeighbourhoodReuse, ANodeItsLookupsCouldNotReachIsNotVouchedForAsAbsent) {
  SimConfig cfg;
  cfg.seed = 23;
  Net n(cfg, 200, 7);
  const size_t hidden = 42;
  const NodeId hid = n.sim.contact(hidden).id;
  // Keys whose closest node is the hidden one.
  std::vector<std::string> near;
  for (int i = 0; near.size() < 12; ++i) {
    ASSERT_LT(i, 100000);
    std::string key = "near-" + std::to_string(i);
    const NodeId h = dht_key(key);
    bool closest = true;
    for (size_t j = 0; j < n.sim.size() && closest; ++j) closest = j == hidden || (hid ^ h) < (n.sim.contact(j).id ^ h);
    if (closest) near.push_back(key);
  }
  // Hidden, it fails the lookups of the puts around it, which land on the other nodes.
  std::vector<uint8_t> side(n.sim.size(), 0);
  side[hidden] = 1;
  n.sim.partition(side);
  for (size_t i = 0; i < 6; ++i) put(n, near[i], "v", 1s);
  for (int i = 0; i < 30; ++i) put(n, "around-" + std::to_string(i), "v", 1s);
  n.sim.heal();
  // Back: every put near it stores on it, reused or not.
  size_t reused = 0;
  for (size_t i = 6; i < near.size(); ++i) {
    Put p = put(n, near[i], "v", 1s);
    reused += p.result.placement_reused;
    EXPECT_EQ(p.accepted_by, k_closest(n, near[i])) << near[i] << (p.result.placement_reused ? " (reused)" : "");
  }
  EXPECT_LT(reused, near.size() - 6);
}
