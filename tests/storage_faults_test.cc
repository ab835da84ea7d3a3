// Storage faults and storage budgets (issue 10, items 4 and 6): a disk that refuses writes never crashes a
// node; empty values are not free; one peer cannot store faster than store_rate.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "dht/store_rate.h"
#include "dht/value_store.h"
#include "sim/faulty_storage.h"
#include "sim/network_builder.h"
#include "storjnet/dht_storage.h"
#include "storjnet/simulator.h"
#include "temp_dir.h"

using namespace storjnet;
using namespace std::chrono_literals;

namespace {

NodeConfig sim_config() {
  NodeConfig c;
  c.dht.republish_interval = 60s;
  c.dht.bucket_refresh = 10min;
  return c;
}

StoredValue value_n(int n, size_t size, const NodeId& publisher) {
  StoredValue v;
  v.key = dht_key("v" + std::to_string(n));
  v.value = Bytes(size, static_cast<uint8_t>(n));
  v.version = 10;
  std::memcpy(v.owner.data(), publisher.bytes().data(), NodeId::kSize);  // the backend does not check owners
  return v;
}

}  // namespace

// A node whose disk refuses every write answers stores with an error, counts them, keeps serving what it held
// and everything else, and stores again once the disk recovers.
TEST(StorageFaults, RefusedWritesAnswerAnErrorAndTheNodeKeepsServing) {
  SimConfig cfg;
  cfg.seed = 61;
  cfg.node = sim_config();
  Simulator sim(cfg);
  const size_t n = 20;  // k = 20: every node is among the k closest of every key
  for (size_t i = 0; i < n; ++i) sim.add_node();
  auto disk = std::make_shared<sim::Disk>([&] { return sim.now(); });
  sim.restart(0, cfg.node, std::make_unique<sim::FaultyStorage>(disk));
  ASSERT_EQ(sim::join_network(sim, 61), n);
  sim.run_for(2s);

  // The results live on the heap: a callback that comes after the helper gave up writes nowhere harmful.
  auto put = [&](size_t from, const std::string& key, const std::string& value) {
    auto r = std::make_shared<std::optional<PutResult>>();
    sim.node(from).dht().put(key, as_bytes(value), [r](const PutResult& p) { *r = p; });
    sim.run_until([&] { return r->has_value(); }, 30s);
    return *r && (*r)->ok;
  };
  auto get_local = [&](const std::string& key) {
    auto r = std::make_shared<std::optional<GetResult>>();
    sim.node(0).dht().get(key, [r](GetResult g) { *r = std::move(g); });
    sim.run_until([&] { return r->has_value(); }, 30s);
    return *r && (*r)->local && (*r)->value ? std::string((*r)->value->begin(), (*r)->value->end()) : std::string();
  };

  ASSERT_TRUE(put(3, "before", "held"));
  sim.run_for(1s);
  EXPECT_EQ(get_local("before"), "held");

  disk->fail_writes = true;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(put(3, "during-" + std::to_string(i), "x"));  // others store it
  sim.run_for(1s);
  auto st = sim.node(0).dht().stats();
  EXPECT_GE(st.storage_write_failures, 10u);
  EXPECT_EQ(disk->failed_puts, st.storage_write_failures);
  // Still serving: the value it held, lookups through it, and its own puts (stored by the others).
  EXPECT_EQ(get_local("before"), "held");
  EXPECT_TRUE(put(0, "from-the-faulty-node", "y"));
  std::optional<GetResult> remote;
  sim.node(5).dht().get("from-the-faulty-node", [&](GetResult g) { remote = std::move(g); });
  sim.run_until([&] { return remote.has_value(); }, 30s);
  ASSERT_TRUE(remote && remote->value);
  EXPECT_EQ(std::string(remote->value->begin(), remote->value->end()), "y");

  disk->fail_writes = false;
  ASSERT_TRUE(put(3, "after", "stored"));
  sim.run_for(1s);
  EXPECT_EQ(get_local("after"), "stored");
}

// SQLite capped by max_page_count fails as a full disk does: put returns false and changes nothing, the
// routing snapshot keeps its previous version, nothing throws, and reads go on.
TEST(StorageFaults, SqliteOnAFullDiskFailsWritesWithoutThrowing) {
  auto dir = test::temp_dir("full-disk");
  NodeId publisher = dht_key("publisher");
  {
    auto db = make_sqlite_storage(dir / "db", 64 * 1024);
    std::vector<Contact> few;
    for (uint8_t i = 1; i <= 3; ++i) {
      PublicKey pk{};
      pk[0] = i;
      few.push_back(Contact::from_key(pk, *Endpoint::parse("10.0.0." + std::to_string(i) + ":4000")));
    }
    EXPECT_NO_THROW(db->save_contacts(few));
    int stored = 0;
    bool refused = false;
    for (int i = 0; i < 200 && !refused; ++i) {
      bool ok = true;
      EXPECT_NO_THROW(ok = db->put(value_n(i, 4000, publisher)));
      if (ok) ++stored;
      else refused = true;
    }
    ASSERT_TRUE(refused) << "the 64 KiB cap never filled";
    EXPECT_GT(stored, 0);
    EXPECT_EQ(db->count(), static_cast<size_t>(stored));
    EXPECT_EQ(db->bytes(), static_cast<size_t>(stored) * 4000);
    EXPECT_FALSE(db->get(value_n(stored, 4000, publisher).key));  // the refused row is not there
    EXPECT_EQ(db->get(value_n(0, 4000, publisher).key)->value, value_n(0, 4000, publisher).value);
    // A big snapshot does not fit: the previous one stays.
    std::vector<Contact> many;
    for (uint32_t i = 0; i < 5000; ++i) {
      PublicKey pk{};
      std::memcpy(pk.data(), &i, sizeof i);
      pk[31] = 1;
      many.push_back(Contact::from_key(pk, *Endpoint::parse("10.1.0.1:" + std::to_string(1000 + i % 60000))));
    }
    EXPECT_NO_THROW(db->save_contacts(many));
    EXPECT_EQ(db->load_contacts().size(), few.size());
    EXPECT_NO_THROW(db->flush());
    EXPECT_NO_THROW(db->save_epoch_floor(12345));
  }
  // Reopened without the cap: what was acknowledged is there.
  auto db = make_sqlite_storage(dir / "db");
  EXPECT_GT(db->count(), 0u);
  EXPECT_EQ(db->load_contacts().size(), 3u);
  std::filesystem::remove_all(dir);
}

// Empty values are charged min_value_charge each: a peer cannot fill a node with free bookkeeping.
TEST(StorageBudgets, EveryValueCostsAtLeastTheMinimumCharge) {
  DhtConfig cfg;
  cfg.min_value_charge = 256;
  cfg.max_bytes_per_publisher = 10 * 256;
  cfg.max_bytes = 30 * 256;
  auto storage = make_memory_storage();
  dht::ValueStore vs(*storage, cfg);
  NodeId peer = dht_key("peer"), other = dht_key("other"), third = dht_key("third"), fourth = dht_key("fourth");
  int accepted = 0;
  for (int i = 0; i < 100; ++i) accepted += vs.store(value_n(i, 0, peer), peer) == dht::ValueStore::Result::kStored;
  EXPECT_EQ(accepted, 10);  // 10 x 256 charged bytes, the per-peer quota
  EXPECT_EQ(vs.store(value_n(100, 0, peer), peer), dht::ValueStore::Result::kQuota);
  // Node-wide: 30 x 256.
  for (int i = 200; i < 210; ++i) EXPECT_EQ(vs.store(value_n(i, 0, other), other), dht::ValueStore::Result::kStored);
  for (int i = 300; i < 310; ++i) EXPECT_EQ(vs.store(value_n(i, 0, third), third), dht::ValueStore::Result::kStored);
  EXPECT_EQ(vs.store(value_n(400, 0, fourth), fourth), dht::ValueStore::Result::kFull);
}

TEST(StorageBudgets, StoreRateIsPerPeerAndItsTableBounded) {
  dht::StoreRate rate(10, 64);  // 10/s, burst 20
  NodeId a = dht_key("a"), b = dht_key("b");
  TimePoint t0{};
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += rate.allow(a, t0);
  EXPECT_EQ(allowed, 20);
  EXPECT_TRUE(rate.allow(b, t0));  // another peer has its own bucket
  allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += rate.allow(a, t0 + 1s);
  EXPECT_EQ(allowed, 10);
  // A million fresh keys: the table stays bounded.
  for (uint32_t i = 0; i < 1'000'000; ++i) {
    std::array<uint8_t, NodeId::kSize> id{};
    std::memcpy(id.data(), &i, sizeof i);
    rate.allow(NodeId(id), t0 + 2s);
    ASSERT_LE(rate.tracked(), 64u);
  }
}

// Peers that went quiet cost nothing: their refilled buckets are forgotten within StoreRate::kSweepEvery, and
// one that comes back gets the fresh burst it would have had.
TEST(StorageBudgets, StoreRateForgetsIdlePeers) {
  dht::StoreRate rate(5, 1024);  // 5/s, burst 10: a bucket refills within 2 s
  TimePoint t0{std::chrono::seconds(100)};
  for (uint32_t i = 0; i < 500; ++i) {
    std::array<uint8_t, NodeId::kSize> id{};
    std::memcpy(id.data(), &i, sizeof i);
    ASSERT_TRUE(rate.allow(NodeId(id), t0));
  }
  NodeId busy = dht_key("busy");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rate.allow(busy, t0 + dht::StoreRate::kSweepEvery));
  EXPECT_EQ(rate.tracked(), 1u);  // the 500 refilled and were forgotten; the busy one is empty, so kept
  EXPECT_FALSE(rate.allow(busy, t0 + dht::StoreRate::kSweepEvery));
  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += rate.allow(dht_key("back"), t0 + 2 * dht::StoreRate::kSweepEvery);
  EXPECT_EQ(allowed, 10);
}

// One peer flooding kademlia_store gets at most store_rate through; others still store.
TEST(StorageBudgets, OnePeerStoringFastIsHeldToStoreRate) {
  SimConfig cfg;
  cfg.seed = 62;
  cfg.node = sim_config();
  cfg.node.dht.store_rate = 20;
  Simulator sim(cfg);
  for (int i = 0; i < 10; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 62), 10u);
  sim.run_for(2s);
  uint64_t before = sim.node(0).dht().stats().stores_accepted;
  // 200 puts at once from node 1: each stores to every node (k = 20 > 10 nodes), so node 0 gets 200 stores.
  int done = 0;
  TimePoint start = sim.now();
  for (int i = 0; i < 200; ++i)
    sim.node(1).dht().put("burst-" + std::to_string(i), as_bytes("v"), [&](const PutResult&) { ++done; });
  sim.run_until([&] { return done == 200; }, 60s);
  double elapsed = std::chrono::duration<double>(sim.now() - start).count();
  auto st = sim.node(0).dht().stats();
  EXPECT_GT(st.stores_rate_limited, 0u);
  EXPECT_LE(static_cast<double>(st.stores_accepted - before), 40 + 20 * elapsed + 1);  // burst 2x, then 20/s
  // Another peer is not charged for node 1's burst.
  bool ok = false;
  sim.node(2).dht().put("other", as_bytes("w"), [&](const PutResult& r) { ok = r.ok; });
  sim.run_for(3s);
  EXPECT_TRUE(ok);
  EXPECT_GT(sim.node(0).dht().stats().stores_accepted, before);
}
