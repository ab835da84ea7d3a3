// The harsher simulator (issue 14): a network under random kills, crashes that lose unsynced writes,
// restarts on the node's own disk, partitions, clock steps, disk faults, loss bursts and connection resets
// keeps its invariants (src/sim/chaos.h; streams over the simulated TCP fast path: src/sim/chaos_streams.h),
// and a seed replays bit for bit.
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
    // Streams ran over the simulated fast path and over datagrams, and connection resets hit some.
    EXPECT_GT(r.streams.completed, 5u);
    EXPECT_GT(r.streams.fast, 2u);
    EXPECT_LT(r.streams.fast, r.streams.opened);
    EXPECT_GT(r.streams.bytes_read, 1u << 20);
    EXPECT_GT(r.conns_opened, 2u);
  }
}

// Connection resets as a fault, often: streams survive them (falling back to datagrams) uncorrupted.
TEST(SimChaos, StreamsSurviveFrequentConnectionResets) {
  sim::ChaosConfig c = small(3);
  c.nodes = 60;
  c.duration = 2min;
  c.fault_rate = 0.5;
  c.streams_per_tick = 0.5;
  c.refuse_conns = 0;
  sim::ChaosReport r = sim::run_chaos(c);
  for (auto& v : r.violations) ADD_FAILURE() << v;
  EXPECT_GT(r.conn_resets, 3u);
  EXPECT_GE(r.conns_reset, r.conn_resets);
  EXPECT_GT(r.streams.completed, 10u);
  EXPECT_GT(r.streams.fast, 5u);
}

TEST(SimChaos, ASeedReplaysBitForBit) {
  sim::ChaosConfig c = small(7);
  c.nodes = 60;
  c.duration = 1min;
  sim::ChaosReport a = sim::run_chaos(c), b = sim::run_chaos(c);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.fault_hash, b.fault_hash);
  EXPECT_EQ(a.kills, b.kills);
  EXPECT_EQ(a.puts_acked, b.puts_acked);
  EXPECT_EQ(a.messages_received, b.messages_received);
  EXPECT_EQ(a.conns_opened, b.conns_opened);
  EXPECT_EQ(a.streams.bytes_read, b.streams.bytes_read);
  EXPECT_GT(a.conns_opened, 0u);  // the fast path was in the run the hash covers
  c.seed = 8;
  EXPECT_NE(sim::run_chaos(c).trace_hash, a.trace_hash);
}

// Two builds whose nodes behave differently meet the same faults in a run of one seed, at the same ticks: the
// faults draw from their own stream and are timed in ticks, so A/B runs compare. A join that fills its far buckets
// to 5 contacts instead of 3 stands for the other build.
TEST(SimChaos, NodesThatBehaveDifferentlyMeetTheSameFaults) {
  sim::ChaosConfig c = small(5);
  c.nodes = 60;
  c.duration = 1min;
  c.fault_rate = 0.5;
  sim::ChaosReport a = sim::run_chaos(c);
  c.node.dht.join_bucket_fill = 5;
  sim::ChaosReport b = sim::run_chaos(c);
  EXPECT_NE(a.trace_hash, b.trace_hash);  // the nodes did behave differently
  EXPECT_EQ(a.fault_hash, b.fault_hash);  // the same faults, on the same nodes, at the same ticks
  EXPECT_NE(a.fault_hash, 0u);
  EXPECT_GT(a.kills + a.partitions + a.clock_steps + a.disk_faults + a.loss_bursts, 10u);
  EXPECT_EQ(a.kills, b.kills);
  EXPECT_EQ(a.crashes, b.crashes);
  EXPECT_EQ(a.partitions, b.partitions);
  EXPECT_EQ(a.clock_steps, b.clock_steps);
  EXPECT_EQ(a.disk_faults, b.disk_faults);
  EXPECT_EQ(a.loss_bursts, b.loss_bursts);
  EXPECT_EQ(a.puts, b.puts);          // the workload's choices too
  EXPECT_EQ(a.messages, b.messages);
  for (auto& v : a.violations) ADD_FAILURE() << v;
  for (auto& v : b.violations) ADD_FAILURE() << v;
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
