// The harsher simulator (issue 14): a network under random kills, crashes that lose unsynced writes,
// restarts on the node's own disk, partitions, clock steps, disk faults and loss bursts keeps its
// invariants (src/sim/chaos.h), and a seed replays bit for bit.
#include <gtest/gtest.h>

#include "sim/chaos.h"
#include "sim/faulty_storage.h"

using namespace storjnet;
using namespace std::chrono_literals;

namespace {
sim::ChaosConfig small(uint64_t seed) {
  sim::ChaosConfig c;
  c.seed = seed;
  c.nodes = 100;
  c.duration = 2min;
  c.fault_rate = 0.25;
  return c;
}
}  // namespace

TEST(SimChaos, InvariantsHoldUnderRandomFaults) {
  for (uint64_t seed : {1, 2}) {
    sim::ChaosReport r = sim::run_chaos(small(seed));
    SCOPED_TRACE("seed " + std::to_string(seed));
    EXPECT_EQ(r.joined, 100u);
    for (auto& v : r.violations) ADD_FAILURE() << v;
    // The run did what it claims: faults of every kind happened, and the checks had work to do.
    EXPECT_GT(r.kills, 0u);
    EXPECT_GT(r.partitions + r.loss_bursts, 0u);
    EXPECT_GT(r.clock_steps + r.disk_faults, 0u);
    EXPECT_GT(r.puts_acked, 100u);
    EXPECT_GT(r.gets_found, 100u);
    EXPECT_GT(r.messages_received, 100u);
  }
}

TEST(SimChaos, ASeedReplaysBitForBit) {
  sim::ChaosConfig c = small(7);
  c.nodes = 60;
  c.duration = 1min;
  sim::ChaosReport a = sim::run_chaos(c), b = sim::run_chaos(c);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.kills, b.kills);
  EXPECT_EQ(a.puts_acked, b.puts_acked);
  EXPECT_EQ(a.messages_received, b.messages_received);
  c.seed = 8;
  EXPECT_NE(sim::run_chaos(c).trace_hash, a.trace_hash);
}

// A crash loses what was written less than sync_delay ago, back to the last synced version; refused writes
// change nothing.
TEST(SimChaos, DiskCrashLosesOnlyUnsyncedWrites) {
  TimePoint now{0};
  auto disk = std::make_shared<sim::Disk>([&] { return now; }, 1s);
  sim::FaultyStorage s(disk);
  auto value = [](const std::string& k, uint64_t version) {
    StoredValue v;
    v.key = dht_key(k);
    v.value = Bytes(8, static_cast<uint8_t>(version));
    v.version = version;
    return v;
  };
  ASSERT_TRUE(s.put(value("old", 1)));
  now += 5s;
  ASSERT_TRUE(s.put(value("old", 2)));  // replaces a synced version
  ASSERT_TRUE(s.put(value("new", 1)));
  disk->fail_writes = true;
  EXPECT_FALSE(s.put(value("refused", 1)));
  EXPECT_EQ(disk->failed_puts, 1u);
  disk->fail_writes = false;
  now += 500ms;
  EXPECT_EQ(disk->crash(), 2u);
  sim::FaultyStorage reopened(disk);
  ASSERT_TRUE(reopened.get(dht_key("old")));
  EXPECT_EQ(reopened.get(dht_key("old"))->version, 1u);
  EXPECT_FALSE(reopened.get(dht_key("new")));
  EXPECT_FALSE(reopened.get(dht_key("refused")));
  // Writes older than sync_delay survive.
  ASSERT_TRUE(reopened.put(value("new", 3)));
  now += 2s;
  EXPECT_EQ(disk->crash(), 0u);
  EXPECT_EQ(reopened.get(dht_key("new"))->version, 3u);
}
