// Hash flooding (issue 10, item 2): tables keyed by bytes from the network hash them with the keyed
// SipHash of storjnet/keyed_hash.h, so keys an attacker chooses to share their first bytes cost what random
// keys cost. Each case times 50,000 inserts (and lookups) of keys that share their first 8 bytes against
// 50,000 random keys, in process CPU time, the minimum of a few runs each (so a busy machine cannot fail it
// by accident), and requires the colliding keys to cost at most 2x. An unkeyed hash of the first 8 bytes (what
// SeenSet used) puts all colliding keys in one bucket and costs orders of magnitude more.
#include <gtest/gtest.h>

#include <ctime>
#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "pubsub/seen_set.h"
#include "storjnet/dht_storage.h"
#include "wire/reassembler.h"

using namespace storjnet;

namespace {

constexpr size_t kKeys = 50'000;
constexpr int kRuns = 3;

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Minimum CPU time of kRuns runs of each of a and b, interleaved (each run builds its own table).
std::pair<double, double> min_cpu(const std::function<void()>& a, const std::function<void()>& b) {
  double best_a = 1e9, best_b = 1e9;
  for (int i = 0; i < kRuns; ++i) {
    double t0 = cpu_seconds();
    a();
    double t1 = cpu_seconds();
    b();
    best_a = std::min(best_a, t1 - t0);
    best_b = std::min(best_b, cpu_seconds() - t1);
  }
  return {best_a, best_b};
}

// kKeys byte strings of N bytes: the first 8 fixed (colliding) or all random, the rest distinct.
template <size_t N>
std::vector<std::array<uint8_t, N>> make_keys(bool colliding) {
  std::vector<std::array<uint8_t, N>> keys(kKeys);
  for (size_t i = 0; i < kKeys; ++i) {
    NodeId h = NodeId::hash_of(as_bytes("key" + std::to_string(i)));
    for (size_t b = 0; b < N; ++b) keys[i][b] = h.bytes()[b % NodeId::kSize] ^ static_cast<uint8_t>(b / NodeId::kSize);
    if (colliding)
      for (size_t b = 0; b < 8; ++b) keys[i][b] = 0xa5;
  }
  return keys;
}

std::vector<NodeId> node_ids(bool colliding) {
  std::vector<NodeId> out;
  for (auto& k : make_keys<NodeId::kSize>(colliding)) out.emplace_back(k);
  return out;
}

void expect_flat(const char* what, std::pair<double, double> times) {
  auto [colliding, random] = times;
  ::testing::Test::RecordProperty(std::string(what) + "_colliding_ms", std::to_string(colliding * 1e3));
  ::testing::Test::RecordProperty(std::string(what) + "_random_ms", std::to_string(random * 1e3));
  EXPECT_LE(colliding, 2 * random) << what << ": " << colliding * 1e3 << " ms for colliding keys, "
                                   << random * 1e3 << " ms for random keys";
}

}  // namespace

TEST(HashFlood, DhtStoresOfKeysSharingTheirFirstBytes) {
  auto run = [](const std::vector<NodeId>& keys) {
    auto storage = make_memory_storage();
    StoredValue v;
    v.value = Bytes(8, 1);
    v.owner[0] = 1;
    for (auto& k : keys) {
      v.key = k;
      ASSERT_TRUE(storage->put(v));
    }
    size_t found = 0;
    for (auto& k : keys) found += storage->get(k).has_value();
    ASSERT_EQ(found, kKeys);
  };
  auto colliding = node_ids(true), random = node_ids(false);
  expect_flat("dht_storage", min_cpu([&] { run(colliding); }, [&] { run(random); }));
}

TEST(HashFlood, PubsubEventIdsSharingTheirFirstBytes) {
  auto run = [](const std::vector<pubsub::EventId>& ids) {
    pubsub::SeenSet seen(std::chrono::hours(1), kKeys);
    size_t fresh = 0;
    for (auto& id : ids) fresh += seen.test_and_set(id, 1, TimePoint{});
    ASSERT_EQ(fresh, kKeys);
  };
  auto colliding = make_keys<16>(true), random = make_keys<16>(false);
  expect_flat("seen_set", min_cpu([&] { run(colliding); }, [&] { run(random); }));
}

TEST(HashFlood, ReassemblyFromPeersWhoseIdsShareTheirFirstBytes) {
  wire::ReassemblyLimits lim;
  lim.max_total = lim.max_per_prefix = kKeys * wire::Reassembler::kMinFragmentCharge;
  auto run = [&](const std::vector<NodeId>& peers) {
    wire::Reassembler r(lim);
    DropCounters drops;
    Bytes out, last{1};
    const Endpoint from = Endpoint::v4(0x0a000001u, 1);
    size_t held = 0;
    for (auto& p : peers)  // the last fragment of a two-fragment message: held, waiting for the first
      held += r.add(p, from, 7, 1, 2, last, TimePoint{}, out, drops) == wire::Reassembler::Result::kIncomplete;
    ASSERT_EQ(held, kKeys);
  };
  auto colliding = node_ids(true), random = node_ids(false);
  expect_flat("reassembler", min_cpu([&] { run(colliding); }, [&] { run(random); }));
}
