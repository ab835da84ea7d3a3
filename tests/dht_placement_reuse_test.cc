// A put of a key put moments ago stores on that put's placement without a lookup (DhtConfig::placement_reuse,
// dht::PlacementCache), unless the table knows a nearer node the placement lacks, the placement lost a store,
// or it grew older than placement_reuse.
#include <gtest/gtest.h>

#include <algorithm>

#include "dht/placement_cache.h"
#include "sim/network_builder.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using dht::PlacementCache;

namespace {

Contact contact_of(uint8_t n) {
  std::array<uint8_t, NodeId::kSize> b{};
  b[0] = n;
  Contact c;
  c.id = NodeId(b);
  c.endpoint = Endpoint::v4(0x0a000000u + n, 4000);
  return c;
}

std::vector<Contact> contacts(uint8_t first, uint8_t count) {
  std::vector<Contact> v;
  for (uint8_t i = 0; i < count; ++i) v.push_back(contact_of(static_cast<uint8_t>(first + i)));
  return v;
}

NodeId key_of(uint8_t n) { return contact_of(n).id; }

}  // namespace

TEST(PlacementCache, GivesAPlacementBackUntilItsLookupIsTtlOldAndHoldsAtMostKMaxKeys) {
  const TimePoint t0{std::chrono::hours(1)};
  PlacementCache cache(60s, 5);
  cache.remember(key_of(1), contacts(10, 8), true, t0, t0 + 1s);
  const auto* e = cache.find(key_of(1), t0 + 59s);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->targets.size(), 5u);  // `keep` of the 8
  EXPECT_EQ(e->targets.front().id, key_of(10));
  EXPECT_TRUE(e->self_among);
  EXPECT_EQ(cache.find(key_of(1), t0 + 60s), nullptr);  // aged from its lookup's end, not from remember()
  EXPECT_EQ(cache.size(), 0u);
  cache.remember(key_of(2), contacts(10, 3), false, t0, t0 + 60s);  // already too old
  EXPECT_EQ(cache.size(), 0u);
  cache.remember(key_of(2), {}, false, t0, t0);  // an empty placement is nothing to reuse
  EXPECT_EQ(cache.size(), 0u);

  for (uint8_t k = 0; k < PlacementCache::kMax + 2; ++k) cache.remember(key_of(k), contacts(10, 3), false, t0, t0);
  EXPECT_EQ(cache.size(), PlacementCache::kMax);
  EXPECT_EQ(cache.find(key_of(0), t0), nullptr);  // the oldest two went
  EXPECT_EQ(cache.find(key_of(1), t0), nullptr);
  EXPECT_NE(cache.find(key_of(2), t0), nullptr);
  cache.remember(key_of(2), contacts(20, 3), false, t0, t0);  // again: replaced, not added
  EXPECT_EQ(cache.size(), PlacementCache::kMax);
  EXPECT_EQ(cache.find(key_of(2), t0)->targets.front().id, key_of(20));
  cache.forget(key_of(2));
  EXPECT_EQ(cache.find(key_of(2), t0), nullptr);
  cache.remember(key_of(2), contacts(10, 3), false, t0 + 10s, t0 + 10s);
  cache.forget(key_of(2), t0 + 9s);  // a put that used an older placement: the newer one stays
  EXPECT_NE(cache.find(key_of(2), t0 + 10s), nullptr);
  cache.forget(key_of(2), t0 + 10s);
  EXPECT_EQ(cache.find(key_of(2), t0 + 10s), nullptr);
  cache.drop_expired(t0 + 60s);  // every placement left was found at t0
  EXPECT_EQ(cache.size(), 0u);

  PlacementCache off(Duration{}, 5);
  off.remember(key_of(1), contacts(10, 3), false, t0, t0);
  EXPECT_EQ(off.size(), 0u);
}

namespace {

struct Neighbourhood {
  explicit Neighbourhood(const SimConfig& c) : sim(c) {}
  Simulator sim;
  size_t putter = 0, late = 0;  // late: the key's closest node, which joins after the first puts
  std::string key;
  NodeId hkey;
  std::vector<size_t> by_distance;  // every node, closest to the key first
};

// 300 nodes joined, and one more (`late`) not yet: the key's closest node. The putter is its second closest, so
// the late node's join asks it and it enters the putter's table.
void make(Neighbourhood& n) {
  for (int i = 0; i < 300; ++i) n.sim.add_node();
  ASSERT_EQ(sim::join_network(n.sim, 31), 300u);
  n.late = n.sim.add_node();
  for (int i = 0;; ++i) {
    n.key = "update-me-" + std::to_string(i);
    n.hkey = dht_key(n.key);
    n.by_distance.clear();
    for (size_t j = 0; j < n.sim.size(); ++j) n.by_distance.push_back(j);
    std::sort(n.by_distance.begin(), n.by_distance.end(), [&](size_t a, size_t b) {
      return (n.sim.contact(a).id ^ n.hkey) < (n.sim.contact(b).id ^ n.hkey);
    });
    if (n.by_distance[0] == n.late) break;
  }
  n.putter = n.by_distance[1];
  n.sim.run_for(60s);
}

struct Put {
  PutResult result;
  Duration took{};                  // from the call to the answer
  std::vector<size_t> accepted_by;  // the nodes that accepted a store of it
};

Put put(Neighbourhood& n, const std::string& value) {
  std::vector<uint64_t> accepted(n.sim.size());
  for (size_t i = 0; i < n.sim.size(); ++i) accepted[i] = n.sim.node(i).dht().stats().stores_accepted;
  std::optional<PutResult> r;
  TimePoint start = n.sim.now();
  n.sim.node(n.putter).dht().put(n.key, as_bytes(value), [&](const PutResult& p) { r = p; });
  n.sim.run_until([&] { return r.has_value(); }, 30s);
  Put out{r.value_or(PutResult{}), n.sim.now() - start, {}};
  n.sim.run_for(3s);  // every store answered (or timed out): the placement is remembered, or forgotten
  EXPECT_TRUE(r && r->ok) << (r ? r->error : "no answer");
  for (size_t i = 0; i < n.sim.size(); ++i)
    if (n.sim.alive(i) && n.sim.node(i).dht().stats().stores_accepted > accepted[i]) out.accepted_by.push_back(i);
  return out;
}

// The put stored on exactly the k closest live nodes that joined, the putter aside (it keeps its own copy).
void expect_stored_on_the_k_closest(Neighbourhood& n, const Put& p, bool late_joined, const char* when) {
  const size_t k = n.sim.node(0).dht().config().k;
  std::vector<size_t> closest;
  for (size_t i : n.by_distance)
    if (closest.size() < k && n.sim.alive(i) && i != n.putter && (i != n.late || late_joined)) closest.push_back(i);
  std::vector<size_t> got = p.accepted_by;
  std::sort(closest.begin(), closest.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, closest) << when;
}

}  // namespace

TEST(DhtPlacementReuse, AnUpdateStoresAtOnceUntilANearerNodeALostStoreOrAgeCallsForALookup) {
  SimConfig cfg;
  cfg.seed = 31;
  Neighbourhood n(cfg);
  make(n);
  Dht& d = n.sim.node(n.putter).dht();

  TimePoint first_at = n.sim.now();
  Put first = put(n, "v1");
  EXPECT_FALSE(first.result.placement_reused);
  EXPECT_GT(first.result.lookup.rpcs, 0);
  expect_stored_on_the_k_closest(n, first, false, "the first put");
  uint64_t lookups = d.stats().lookups;

  // The update: no lookup, the stores at once, on the same k closest.
  Put update = put(n, "v2");
  EXPECT_TRUE(update.result.placement_reused);
  EXPECT_EQ(update.result.lookup.rpcs, 0);
  EXPECT_EQ(update.result.attempts, 1);
  EXPECT_EQ(d.stats().lookups, lookups);
  EXPECT_EQ(d.stats().placements_reused, 1u);
  EXPECT_LE(update.took, 95ms);  // one round trip: links are 5-45 ms one way
  expect_stored_on_the_k_closest(n, update, false, "the update");

  // A node joins nearest the key and enters the putter's table: the placement lacks it, so the next put looks up
  // (within the minute: the placement is still young enough to be reused otherwise).
  bool joined = false;
  n.sim.node(n.late).dht().bootstrap({n.sim.endpoint(0)}, [&](bool ok) { joined = ok; });
  n.sim.run_until([&] { return joined; }, 30s);
  n.sim.run_for(5s);
  auto peers = d.peers();
  const NodeId late_id = n.sim.contact(n.late).id;
  ASSERT_TRUE(std::any_of(peers.begin(), peers.end(), [&](const Contact& c) { return c.id == late_id; }));
  ASSERT_LT(n.sim.now() - first_at, d.config().placement_reuse);
  Put after_join = put(n, "v3");
  EXPECT_FALSE(after_join.result.placement_reused);
  EXPECT_GT(after_join.result.lookup.rpcs, 0);
  expect_stored_on_the_k_closest(n, after_join, true, "after the join");  // the late node among them

  // One of the placement's nodes dies: the update still lands (its turn passes on to the next closest), and the
  // placement is forgotten, so the put after it looks up. The dead node stays in the putter's table with a
  // timeout against it: it does not count as a nearer node the next placement lacks.
  n.sim.kill(n.by_distance[3]);
  Put lost = put(n, "v4");
  EXPECT_TRUE(lost.result.placement_reused);
  expect_stored_on_the_k_closest(n, lost, true, "with a replica dead");
  Put after_loss = put(n, "v5");
  EXPECT_FALSE(after_loss.result.placement_reused);
  EXPECT_EQ(d.stats().placements_reused, 2u);
  Put soon = put(n, "v6");
  EXPECT_TRUE(soon.result.placement_reused);

  // A placement serves for placement_reuse from its lookup's end, then the put looks up again.
  n.sim.run_for(d.config().placement_reuse);
  Put later = put(n, "v7");
  EXPECT_FALSE(later.result.placement_reused);
  expect_stored_on_the_k_closest(n, later, true, "at the end");

  // Every node gets the newest value.
  size_t right = 0, asked = 0;
  for (size_t i = 0; i < n.sim.size(); i += 15) {
    if (!n.sim.alive(i)) continue;
    ++asked;
    bool fin = false;
    n.sim.node(i).dht().get(n.key, [&](GetResult r) {
      fin = true;
      right += r.value && *r.value == Bytes({'v', '7'});
    });
    n.sim.run_until([&] { return fin; }, 30s);
  }
  EXPECT_EQ(right, asked);
}

// Every node of a reused placement gone: the put's stores all go unanswered, and its retry looks up.
TEST(DhtPlacementReuse, AReusedPlacementWhoseNodesAllDiedRetriesWithALookup) {
  SimConfig cfg;
  cfg.seed = 31;
  Neighbourhood n(cfg);
  make(n);
  const size_t k = n.sim.node(0).dht().config().k;
  Put first = put(n, "v1");
  ASSERT_FALSE(first.result.placement_reused);
  for (size_t i = 0, killed = 0; killed < k + k / 4; ++i)
    if (n.by_distance[i] != n.putter && n.by_distance[i] != n.late) {
      n.sim.kill(n.by_distance[i]);
      ++killed;
    }
  Put again = put(n, "v2");
  EXPECT_TRUE(again.result.placement_reused);
  EXPECT_EQ(again.result.attempts, 2);
  EXPECT_GT(again.result.lookup.rpcs, 0);  // the retry's
  expect_stored_on_the_k_closest(n, again, false, "after the retry");
}

TEST(DhtPlacementReuse, OffItAlwaysLooksUp) {
  SimConfig c;
  c.seed = 32;
  c.node.dht.placement_reuse = Duration{};
  Simulator sim(c);
  for (int i = 0; i < 60; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 32), 60u);
  for (int j = 0; j < 2; ++j) {
    std::optional<PutResult> r;
    sim.node(7).dht().put("k", as_bytes("v" + std::to_string(j)), [&](const PutResult& p) { r = p; });
    sim.run_until([&] { return r.has_value(); }, 30s);
    sim.run_for(3s);
    ASSERT_TRUE(r && r->ok);
    EXPECT_FALSE(r->placement_reused);
    EXPECT_GT(r->lookup.rpcs, 0);
  }
}
