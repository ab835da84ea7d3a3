// sim-ping: N simulated nodes each ping P random others.
#include "bench_util.h"
#include "sim/rng.h"
#include "storjnet/simulator.h"
#include "workloads.h"

namespace storjnet::bench {

static void add_sim_ping(CLI::App& app) {
  struct Opts {
    size_t nodes = 1000;
    int pings = 3;
    uint64_t seed = 1;
  };
  auto opts = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("sim-ping", "N simulated nodes each ping P random others");
  cmd->add_option("--nodes", opts->nodes, "simulated nodes")->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--pings", opts->pings, "pings per node")->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", opts->seed, "simulation seed");
  cmd->callback([opts] {
    auto t0 = std::chrono::steady_clock::now();
    SimConfig cfg;
    cfg.seed = opts->seed;
    Simulator sim(cfg);
    for (size_t i = 0; i < opts->nodes; ++i) sim.add_node();
    uint64_t sent = 0, answered = 0;
    std::vector<double> rtts;
    sim::Rng pick(opts->seed);
    for (size_t i = 0; i < opts->nodes; ++i) {
      for (int p = 0; p < opts->pings; ++p) {
        size_t j = pick.below(opts->nodes - 1);
        if (j >= i) ++j;
        ++sent;
        TimePoint start = sim.now();
        sim.node(i).ping(sim.contact(j), [&, start](std::optional<NodeId> id) {
          if (!id) return;
          ++answered;
          rtts.push_back(std::chrono::duration<double, std::milli>(sim.now() - start).count());
        });
      }
    }
    sim.run_until([&] { return answered == sent; }, 60s);
    nlohmann::json j = {{"workload", "sim-ping"},
                        {"nodes", opts->nodes},
                        {"pings", opts->pings},
                        {"seed", opts->seed},
                        {"sent", sent},
                        {"answered", answered},
                        {"sim_rtt_p50_ms", percentile(rtts, 0.5)},
                        {"sim_rtt_p99_ms", percentile(rtts, 0.99)},
                        {"sim_time_s", std::chrono::duration<double>(sim.now()).count()},
                        {"datagrams", sim.stats().delivered},
                        {"wall_s", seconds_since(t0)},
                        {"peak_rss_mb", peak_rss_mb()},
                        {"trace_hash", std::to_string(sim.trace_hash())}};
    print_result(j);
  });
}

STORJNET_WORKLOAD(add_sim_ping);

}  // namespace storjnet::bench
