// Chaos: one simulated network run for a long virtual time under random faults, with the invariants users
// rely on checked throughout (as FoundationDB's simulation tests do). The same config replays bit for bit
// (the report carries the simulator's trace hash), so a seed that breaks an invariant is a reproducer.
//
// Faults, one drawn now and then: kill a node (at most max_down of them at once) and restart it later on its
// own disk, half the time after a crash that loses the writes younger than sync_delay; partition the network
// in two for a while; step a node's wall clock forwards or back; make a node's disk refuse writes for a
// while; a burst of datagram loss and jitter on every link; with streams, reset every TCP connection of a
// node. Nodes also start with skewed wall clocks. Faults are timed in ticks and drawn from their own random
// stream (the workload and the checks have theirs), so two builds whose nodes behave differently meet the same
// faults at the same ticks in a run of one seed: A/B runs compare.
//
// Workload: puts of fresh keys and direct messages between random live nodes, and (`streams`) byte streams
// over the simulated TCP fast path (ConnModel; a share of the nodes refuse connections, so some streams use
// datagrams throughout). Invariants (a breach is a line in `violations`):
//  - an acknowledged value is never lost while a node still holds it: whenever the network is quiet (no
//    partition or loss burst, nothing changed for quiet_for), gets of sampled acknowledged keys from random
//    nodes find it, with the acknowledged bytes, when one of the key's k closest live nodes holds it; at the
//    end, with everything healed (every wall clock set right too) and two republish intervals passed since the
//    value's version stopped being too far in the future for a right clock (docs/protocol.md 10.8), when any
//    live node holds it;
//  - messages are delivered at most once and in order per (sender, receiver) while the receiver lives, and
//    an acknowledged message reaches the application unless its receiver died first (its queue is memory);
//  - the node's bounded tables stay within their bounds (sessions, reassembly, message queue);
//  - no stream corruption: a stream's reader reads exactly the bytes written, in order, and every byte its
//    node acknowledged while it lives; at the end no stream between live nodes still waits
//    (src/sim/chaos_streams.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "storjnet/config.h"
#include "storjnet/environment.h"
#include "storjnet/node.h"
#include "sim/chaos_streams.h"

namespace storjnet::sim {

struct ChaosConfig {
  uint64_t seed = 1;
  size_t nodes = 1000;
  Duration duration = std::chrono::minutes(10);  // virtual time under faults, after the join
  Duration tick = std::chrono::seconds(1);       // the workload runs and a fault may start every tick
  double fault_rate = 0.15;                      // chance of a new fault each tick
  double max_down = 0.1;                         // fraction of nodes dead at once, at most
  size_t puts_per_tick = 2;
  size_t messages_per_tick = 4;
  Duration check_every = std::chrono::seconds(30);
  Duration quiet_for = std::chrono::seconds(10);
  size_t keys_per_check = 16;
  Duration sync_delay = std::chrono::seconds(1);  // a crash loses disk writes younger than this
  NodeConfig node = compressed();                 // every node's configuration
  // Streams over the simulated TCP fast path (ConnModel on) and connection resets as a fault.
  bool streams = true;
  double streams_per_tick = 0.2;         // chance a stream starts each tick
  size_t stream_bytes = 1024 * 1024;     // each writes 16 KiB plus up to this...
  size_t stream_per_tick = 256 * 1024;   // ...at most this much each tick
  double refuse_conns = 0.25;            // share of nodes whose TCP port refuses connections

  // Faults come every few seconds, so maintenance does too: republish every minute, not every hour.
  static NodeConfig compressed() {
    NodeConfig c;
    c.dht.republish_interval = std::chrono::seconds(60);
    c.dht.bucket_refresh = std::chrono::minutes(10);
    return c;
  }
};

struct ChaosReport {
  uint64_t seed = 0, trace_hash = 0;
  uint64_t fault_hash = 0;  // the fault schedule (tick, kind, subject, end): equal for two builds run on one seed
  size_t joined = 0;
  uint64_t kills = 0, crashes = 0, partitions = 0, clock_steps = 0, disk_faults = 0, loss_bursts = 0;
  uint64_t values_lost_in_crashes = 0;  // disk writes a crash took back
  uint64_t puts = 0, puts_acked = 0, checks = 0, gets = 0, gets_found = 0, gets_without_live_replica = 0;
  uint64_t gets_missed_far_replica = 0;  // missed, held only outside the key's k closest (before healing)
  uint64_t messages = 0, messages_acked = 0, messages_received = 0, messages_lost_with_receiver = 0;
  uint64_t conn_resets = 0;                 // faults: a node's connections reset
  uint64_t conns_opened = 0, conns_reset = 0;  // SimStats: connections established, reset (any cause)
  uint64_t conn_bytes = 0;                     // SimStats: bytes the connections delivered
  ChaosStreamsReport streams;
  std::vector<std::string> violations;  // empty: every invariant held
};

ChaosReport run_chaos(const ChaosConfig& config);

}  // namespace storjnet::sim
