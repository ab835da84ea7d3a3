// sim-chaos: one simulated network under random faults for a long virtual time, invariants checked
// throughout (src/sim/chaos.h). `--seeds A-B` sweeps seeds and prints one line per seed, then a summary
// naming every seed that broke an invariant (rerun it with --seed S --verbose for the violations).
#include "bench_util.h"
#include "sim/chaos.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {
struct SimChaosOpts {
  size_t nodes = 1000;
  double minutes = 10;
  uint64_t seed = 1;
  std::string seeds;
  bool verbose = false;
  bool streams = true;
};

nlohmann::json to_json(const sim::ChaosReport& r, double wall_s) {
  return {{"workload", "sim-chaos"},
          {"seed", r.seed},
          {"joined", r.joined},
          {"kills", r.kills},
          {"crashes", r.crashes},
          {"partitions", r.partitions},
          {"clock_steps", r.clock_steps},
          {"disk_faults", r.disk_faults},
          {"loss_bursts", r.loss_bursts},
          {"values_lost_in_crashes", r.values_lost_in_crashes},
          {"puts", r.puts},
          {"puts_acked", r.puts_acked},
          {"checks", r.checks},
          {"gets", r.gets},
          {"gets_found", r.gets_found},
          {"gets_without_live_replica", r.gets_without_live_replica},
          {"gets_missed_far_replica", r.gets_missed_far_replica},
          {"messages", r.messages},
          {"messages_acked", r.messages_acked},
          {"messages_received", r.messages_received},
          {"messages_lost_with_receiver", r.messages_lost_with_receiver},
          {"conn_resets", r.conn_resets},
          {"conns_opened", r.conns_opened},
          {"conns_reset", r.conns_reset},
          {"conn_bytes", r.conn_bytes},
          {"streams", r.streams.streams},
          {"streams_opened", r.streams.opened},
          {"streams_completed", r.streams.completed},
          {"streams_failed", r.streams.failed},
          {"streams_fast", r.streams.fast},
          {"streams_lost_with_node", r.streams.lost_with_node},
          {"stream_bytes_acked", r.streams.bytes_acked},
          {"stream_bytes_read", r.streams.bytes_read},
          {"violations", r.violations.size()},
          {"trace_hash", r.trace_hash},
          {"fault_hash", r.fault_hash},
          {"wall_s", wall_s},
          {"peak_rss_mb", proc_status_kb("VmHWM") / 1024.0}};
}
}  // namespace

static void add_sim_chaos(CLI::App& app) {
  auto o = std::make_shared<SimChaosOpts>();
  auto* cmd = app.add_subcommand("sim-chaos", "simulated network under random faults, invariants checked");
  cmd->add_option("--nodes", o->nodes)->check(CLI::Range(10, 1 << 20));
  cmd->add_option("--minutes", o->minutes, "virtual minutes under faults")->check(CLI::Range(0.1, 10000.0));
  cmd->add_option("--seed", o->seed);
  cmd->add_option("--seeds", o->seeds, "a range A-B of seeds to sweep (overrides --seed)");
  cmd->add_flag("--verbose", o->verbose, "print every violation");
  cmd->add_option("--streams", o->streams, "streams over the simulated TCP fast path, and connection resets");
  cmd->callback([o] {
    uint64_t first = o->seed, last = o->seed;
    if (!o->seeds.empty()) {
      auto dash = o->seeds.find('-');
      if (dash == std::string::npos) throw CLI::ValidationError("--seeds", "expected A-B");
      try {
        first = std::stoull(o->seeds.substr(0, dash));
        last = std::stoull(o->seeds.substr(dash + 1));
      } catch (const std::exception&) {
        throw CLI::ValidationError("--seeds", "expected A-B, two whole numbers");
      }
      if (last < first) throw CLI::ValidationError("--seeds", "B is below A");
    }
    std::vector<uint64_t> broken;
    for (uint64_t seed = first; seed <= last; ++seed) {
      sim::ChaosConfig c;
      c.seed = seed;
      c.nodes = o->nodes;
      c.streams = o->streams;
      c.duration = std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::ratio<60>>(o->minutes));
      auto t0 = std::chrono::steady_clock::now();
      sim::ChaosReport r = sim::run_chaos(c);
      print_result(to_json(r, seconds_since(t0)));
      if (o->verbose)
        for (auto& v : r.violations) std::fprintf(stderr, "seed %llu: %s\n", static_cast<unsigned long long>(seed), v.c_str());
      if (!r.violations.empty()) broken.push_back(seed);
    }
    if (last > first)
      print_result({{"workload", "sim-chaos-sweep"}, {"seeds", last - first + 1}, {"broken_seeds", broken}});
  });
}

STORJNET_WORKLOAD(add_sim_chaos);

}  // namespace storjnet::bench
