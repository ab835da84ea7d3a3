// What a DHT acknowledgement promises, what a storing node refuses and what a get returns, in the simulator (storage faults:
// tests/storage_faults_test.cc).
#include <gtest/gtest.h>

#include <algorithm>

#include "crypto/key_cache.h"
#include "dht/codec.h"
#include "dht/signed_value.h"
#include "dht/value_store.h"
#include "engine/engine.h"
#include "node/node_internals.h"
#include "sim/network_builder.h"
#include "sim/rng.h"
#include "storjnet/simulator.h"

using namespace storjnet;

namespace {

NodeConfig test_config() {
  NodeConfig c;
  c.dht.republish_interval = 60s;
  c.dht.bucket_refresh = 10min;
  c.dht.expire_after = 1h;
  c.dht.original_republish = 30min;
  return c;
}

// A key whose first bit differs from `id`'s: as far from the node as keys go.
std::string far_key(const NodeId& id) {
  for (int i = 0;; ++i) {
    std::string k = "far-" + std::to_string(i);
    if (((dht_key(k) ^ id).bytes()[0] & 0x80) != 0) return k;
  }
}

StoredValue signed_value(const Engine& by, const std::string& key, std::string_view bytes, uint64_t version) {
  StoredValue v;
  v.key = dht_key(key);
  v.value.assign(bytes.begin(), bytes.end());
  v.version = version;
  dht::sign_value(v, by.identity(), by.config().network_id);
  return v;
}

// Sends one kademlia_store from `from` to `to` and runs until it is answered.
RpcResult store_rpc(Simulator& sim, Engine& from, const Contact& to, const StoredValue& v) {
  std::optional<RpcResult> out;
  from.request(to, Method::kStore, dht::encode_store(v), [&](RpcResult&& r) { out = std::move(r); }, RpcOptions{2s, 1});
  sim.run_until([&] { return out.has_value(); }, 10s);
  return out.value_or(RpcResult{});
}

bool stored_true(const RpcResult& r) { return r.ok() && dht::decode_bool(r.payload).value_or(false); }

}  // namespace

TEST(DhtAck, ANodeWhosePeersAllDiedAnswersFalseForAFarKey) {
  SimConfig cfg;
  cfg.seed = 21;
  cfg.node = test_config();
  Simulator sim(cfg);
  for (int i = 0; i < 35; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 21), 35u);
  EXPECT_GE(sim.node(0).dht().peers().size(), 30u);
  for (size_t i = 1; i < 35; ++i) sim.kill(i);
  std::optional<PutResult> r;
  TimePoint start = sim.now();
  sim.node(0).dht().put(far_key(sim.node(0).id()), as_bytes("lonely"), [&](const PutResult& x) { r = x; });
  sim.run_until([&] { return r.has_value(); }, 60s);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->ok);
  EXPECT_NE(r->error.find("acknowledged"), std::string::npos) << r->error;
  EXPECT_GE(r->attempts, 2);  // it retried within the deadline
  EXPECT_LE(sim.now() - start, sim.node(0).dht().config().put_timeout + 10s);
}

TEST(DhtAck, EveryAcknowledgedPutOfALossyBurstIsReadableWithoutThePublisher) {
  SimConfig cfg;
  cfg.seed = 22;
  cfg.node = test_config();
  Simulator sim(cfg);
  for (int i = 0; i < 60; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 22), 60u);
  LinkModel lossy;
  lossy.loss = 0.05;
  sim.set_link(lossy);
  constexpr int kPuts = 40;
  std::vector<std::optional<bool>> acked(kPuts);
  for (int j = 0; j < kPuts; ++j)  // all at once, through node 0
    sim.node(0).dht().put("burst-" + std::to_string(j), as_bytes("v" + std::to_string(j)),
                          [&, j](const PutResult& r) { acked[j] = r.ok; });
  sim.run_until([&] { return std::all_of(acked.begin(), acked.end(), [](auto& a) { return a.has_value(); }); }, 120s);
  size_t ok = 0;
  for (auto& a : acked) ok += a.value_or(false);
  EXPECT_GE(ok, kPuts * 9 / 10u);
  sim.kill(0);  // the publisher is gone: only the replicas it was told about can answer
  sim.set_link({});
  sim::Rng rng(5);
  size_t missing = 0;
  for (int j = 0; j < kPuts; ++j) {
    if (!acked[j].value_or(false)) continue;
    size_t g = 1 + rng.below(59);
    std::optional<GetResult> got;
    sim.node(g).dht().get("burst-" + std::to_string(j), [&](GetResult r) { got = std::move(r); });
    sim.run_until([&] { return got.has_value(); }, 30s);
    std::string want = "v" + std::to_string(j);
    bool right = got && got->value && *got->value == Bytes(want.begin(), want.end());
    missing += !right;
    EXPECT_TRUE(right) << "acknowledged burst-" << j << " not readable from node " << g;
  }
  EXPECT_EQ(missing, 0u);
}

// The nodes of one process share the record of valid signatures (crypto::verify_signature): the replicas
// of one put verify its value's signature once between them, and a bad signature is still refused by each.
TEST(DhtAck, TheReplicasOfAPutInOneProcessVerifyItsSignatureOnce) {
  SimConfig cfg;
  cfg.seed = 23;
  cfg.node = test_config();
  Simulator sim(cfg);
  for (int i = 0; i < 40; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 23), 40u);
  auto accepted = [&] {
    uint64_t n = 0;
    for (size_t i = 0; i < 40; ++i) n += sim.node(i).dht().stats().stores_accepted;
    return n;
  };
  uint64_t accepted0 = accepted(), remembered0 = crypto::signatures_remembered();
  std::optional<PutResult> r;
  sim.node(0).dht().put("shared-signature", as_bytes("once"), [&](const PutResult& x) { r = x; });
  sim.run_until([&] { return r.has_value(); }, 30s);
  ASSERT_TRUE(r && r->ok);
  sim.run_for(5s);  // every store answered
  uint64_t stores = accepted() - accepted0;
  EXPECT_GE(stores, 10u);
  EXPECT_GE(crypto::signatures_remembered() - remembered0, stores - 1);  // the first replica verified it
  // A store whose signature does not match its value is refused by every node, however many valid ones came.
  Engine& from = NodeInternals::engine(sim.node(0));
  StoredValue good = signed_value(from, "bad-signature", "signed", from.env().unix_us());
  StoredValue bad = good;
  bad.value = {'f', 'o', 'r', 'g', 'e', 'd'};
  for (size_t i = 1; i < 6; ++i) {
    uint64_t refused = sim.node(i).dht().stats().bad_signatures;
    EXPECT_FALSE(stored_true(store_rpc(sim, from, sim.contact(i), bad))) << i;
    EXPECT_EQ(sim.node(i).dht().stats().bad_signatures, refused + 1) << i;
    EXPECT_TRUE(stored_true(store_rpc(sim, from, sim.contact(i), good))) << i;
  }
}

TEST(DhtStoreDefences, ForgedFutureOthersAndTooFastStoresAreRefusedAndCounted) {
  SimConfig cfg;
  cfg.seed = 23;
  cfg.node = test_config();
  cfg.node.dht.store_rate = 20;
  Simulator sim(cfg);
  for (int i = 0; i < 20; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 23), 20u);
  Engine& honest = NodeInternals::engine(sim.node(1));
  Engine& attacker = NodeInternals::engine(sim.node(2));
  Contact victim = sim.contact(0);
  uint64_t now = honest.env().unix_us();
  ASSERT_TRUE(stored_true(store_rpc(sim, honest, victim, signed_value(honest, "k", "honest", now))));
  // Forged: the honest key, a value it never signed.
  StoredValue forged = signed_value(attacker, "k", "forged", now + 1);
  forged.owner = honest.identity().public_key();
  auto r = store_rpc(sim, attacker, victim, forged);
  EXPECT_EQ(r.status, RpcStatus::kRemoteError);
  EXPECT_GE(NodeInternals::engine(sim.node(0)).drops().get(DropReason::kDhtBadValue), 1u);
  // The attacker's own valid signature, newer: refused, the honest value stays.
  EXPECT_FALSE(stored_true(store_rpc(sim, attacker, victim, signed_value(attacker, "k", "mine", now + 5))));
  // Far in the future (beyond max_future_skew), even by the owner of a fresh key.
  auto future = store_rpc(sim, attacker, victim, signed_value(attacker, "f", "x", now + 3'600'000'000ull));
  EXPECT_EQ(future.status, RpcStatus::kRemoteError);
  EXPECT_NE(future.error.find("future"), std::string::npos);
  // A get from anywhere still returns the honest value and owner.
  std::optional<GetResult> got;
  sim.node(7).dht().get("k", [&](GetResult g) { got = std::move(g); });
  sim.run_until([&] { return got.has_value(); }, 30s);
  ASSERT_TRUE(got && got->value);
  EXPECT_EQ(*got->value, Bytes({'h', 'o', 'n', 'e', 's', 't'}));
  EXPECT_EQ(got->owner, honest.id());
  // store_rate = 20/s, burst 40: 200 stores at once mostly refused for rate.
  size_t rate_refused = 0, answered = 0;
  for (int i = 0; i < 200; ++i)
    attacker.request(victim, Method::kStore, dht::encode_store(signed_value(attacker, "r" + std::to_string(i), "x", now)),
                     [&](RpcResult&& x) {
                       ++answered;
                       rate_refused += x.error.find("store rate") != std::string::npos;
                     }, RpcOptions{5s, 1});
  sim.run_until([&] { return answered == 200; }, 10s);
  EXPECT_GE(rate_refused, 150u);
  EXPECT_LE(rate_refused, 165u);
  // An honest peer keeps its own budget.
  EXPECT_TRUE(stored_true(store_rpc(sim, honest, victim, signed_value(honest, "k2", "fine", now))));
}

TEST(DhtClocks, AGetterWhoseClockRunsSlowStillFindsFreshValues) {
  // Storing nodes bound a version by their clock; a getter does not (chaos seed 1 found a getter whose clock
  // had stepped back two minutes refusing every fresh value as "from the future").
  SimConfig cfg;
  cfg.seed = 23;
  cfg.node = test_config();
  Simulator sim(cfg);
  for (int i = 0; i < 30; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 23), 30u);
  std::optional<PutResult> put;
  sim.node(1).dht().put("fresh", as_bytes("\"v\""), [&](const PutResult& r) { put = r; });
  sim.run_until([&] { return put.has_value(); }, 30s);
  ASSERT_TRUE(put && put->ok) << (put ? put->error : "no answer");
  sim.step_wall_clock(0, -std::chrono::minutes(2));
  std::optional<GetResult> got;
  sim.node(0).dht().get("fresh", [&](GetResult r) { got = std::move(r); });
  sim.run_until([&] { return got.has_value(); }, 30s);
  ASSERT_TRUE(got && got->value);
  EXPECT_EQ(std::string(got->value->begin(), got->value->end()), "\"v\"");
  EXPECT_EQ(NodeInternals::engine(sim.node(0)).drops().get(DropReason::kDhtBadValue), 0u);
}

TEST(DhtOwnedGets, ANamedOwnerIsReturnedWhoeverHoldsMostReplicas) {
  // Another owner squatted most of a key's replicas first (first come, first served, docs/protocol.md 10.8):
  // a get without an owner votes and returns the squatter's value; a get naming the owner returns the
  // owner's, and one naming an owner that never wrote the key returns nothing. A contested vote is not cached.
  SimConfig cfg;
  cfg.seed = 29;
  cfg.node = test_config();
  Simulator sim(cfg);
  for (int i = 0; i < 30; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 29), 30u);
  Engine& owner = NodeInternals::engine(sim.node(1));
  Engine& squatter = NodeInternals::engine(sim.node(2));
  const NodeId key = dht_key("contested");
  std::vector<size_t> by_distance;
  for (size_t i = 3; i < 30; ++i) by_distance.push_back(i);
  std::sort(by_distance.begin(), by_distance.end(),
            [&](size_t a, size_t b) { return (sim.contact(a).id ^ key) < (sim.contact(b).id ^ key); });
  const uint64_t now = owner.env().unix_us();
  const StoredValue mine = signed_value(owner, "contested", "\"owner\"", now);
  const StoredValue theirs = signed_value(squatter, "contested", "\"squatter\"", now + 1);
  std::vector<size_t> holders(by_distance.begin(), by_distance.begin() + 20);
  for (size_t j = 0; j < holders.size(); ++j)
    ASSERT_TRUE(stored_true(store_rpc(sim, j < 5 ? owner : squatter, sim.contact(holders[j]), j < 5 ? mine : theirs)));
  auto held = [&] {
    size_t n = 0;
    for (size_t i = 0; i < 30; ++i) n += NodeInternals::engine(sim.node(i)).id() != owner.id() &&
                                         sim.node(i).dht().stats().stored_values > 0;
    return n;
  };
  const size_t held_before = held();
  auto get = [&](size_t from, std::optional<NodeId> named) {
    std::optional<GetResult> got;
    sim.node(from).dht().get("contested", named, [&](GetResult g) { got = std::move(g); });
    sim.run_until([&] { return got.has_value(); }, 30s);
    EXPECT_TRUE(got.has_value());
    return got.value_or(GetResult{});
  };
  auto text = [](const GetResult& g) { return g.value ? std::string(g.value->begin(), g.value->end()) : "(none)"; };
  const size_t reader = by_distance.back();
  EXPECT_EQ(text(get(reader, std::nullopt)), "\"squatter\"");  // the vote: 15 holders against 5
  EXPECT_EQ(held(), held_before);                             // contested: the winner was not cached
  auto named = get(reader, owner.id());
  EXPECT_EQ(text(named), "\"owner\"");
  EXPECT_EQ(named.owner, owner.id());
  EXPECT_EQ(text(get(reader, squatter.id())), "\"squatter\"");
  EXPECT_FALSE(get(reader, sim.contact(0).id).value);  // node 0 never wrote the key
  // A holder of the squatter's value, asked for the owner's, sets its own copy aside and finds the owner's.
  EXPECT_EQ(text(get(holders[10], owner.id())), "\"owner\"");
}
