// sim-dht: N simulated nodes join one by one; M puts then M gets from random nodes (optionally after killing
// a fraction of the nodes, holders included, that the others have not noticed yet; then M puts of new keys, and
// restarts of killed nodes: from the routing tables they held, then with an empty disk through a live seed).
#include <map>

#include "bench_util.h"
#include "engine/engine.h"
#include "sim/network_builder.h"
#include "sim/rng.h"
#include "storjnet/simulator.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {
struct SimDhtOpts {
  size_t nodes = 1000;
  size_t ops = 500;
  uint64_t seed = 1;
  double kill = 0;
  size_t value_size = 64;
  size_t wave = 50;
  bool cdf = false;
  double session_idle_s = 0;  // 0: the default (EngineConfig::session_idle)
  bool dial_back = true;
  int join_bucket_fill = -1;  // -1: the default (DhtConfig::join_bucket_fill)
  bool neighbourhood_reuse = true;  // DhtConfig::neighbourhood_reuse
  bool progress = false;
  size_t updates = 0;  // puts of a new value under each key by its putter, after the puts
};

}  // namespace

static void add_sim_dht(CLI::App& app) {
  auto o = std::make_shared<SimDhtOpts>();
  auto* cmd = app.add_subcommand("sim-dht", "simulated Kademlia: join, M puts, M gets (optionally after --kill F)");
  cmd->add_option("--nodes", o->nodes)->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--ops", o->ops)->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--seed", o->seed);
  cmd->add_option("--kill", o->kill,
                  "fraction of nodes killed after the puts (then M gets, M puts of new keys, and restarts of killed "
                  "nodes: from their saved tables, then fresh ones)")
      ->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--value-size", o->value_size)->check(CLI::Range(1, 65536));
  cmd->add_option("--join-wave", o->wave, "nodes that bootstrap at the same moment")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--session-idle", o->session_idle_s,
                  "seconds a session may sit unused before it shrinks (EngineConfig::session_idle; 0: default)")
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--dial-back", o->dial_back, "reachability checks of routing-table contacts (DhtConfig::dial_back)");
  cmd->add_option("--neighbourhood-reuse", o->neighbourhood_reuse,
                  "puts store on the neighbourhoods recent puts found whole (DhtConfig::neighbourhood_reuse)")
      ->capture_default_str();
  cmd->add_option("--join-bucket-fill", o->join_bucket_fill,
                  "contacts a join refreshes each far bucket to (DhtConfig::join_bucket_fill; -1: the default)")
      ->check(CLI::Range(-1, 1 << 10));
  cmd->add_option("--updates", o->updates,
                  "after the puts, each key's putter puts a new value under it this many times "
                  "(the gets check the last)")
      ->check(CLI::Range(0, 100));
  cmd->add_flag("--progress", o->progress, "print a line to stderr at each tenth of the join (wall, sim time, RSS)");
  cmd->add_flag("--cdf", o->cdf, "add latency distributions and rounds histograms (for scripts/plot)");
  cmd->callback([o] {
    auto t0 = std::chrono::steady_clock::now();
    SimConfig cfg;
    cfg.seed = o->seed;
    Simulator sim(cfg);
    NodeConfig node_cfg;
    if (o->session_idle_s > 0)
      node_cfg.engine.session_idle = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o->session_idle_s));
    node_cfg.dht.dial_back = o->dial_back;
    if (o->join_bucket_fill >= 0) node_cfg.dht.join_bucket_fill = static_cast<size_t>(o->join_bucket_fill);
    node_cfg.dht.neighbourhood_reuse = o->neighbourhood_reuse;
    for (size_t i = 0; i < o->nodes; ++i) sim.add_node(node_cfg);
    const size_t tenth = std::max<size_t>(1, o->nodes / 10);
    size_t next_report = tenth;
    size_t joined = sim::join_network(sim, o->seed, o->wave, [&](size_t started) {
      if (!o->progress || started < next_report) return;
      next_report += tenth;
      std::fprintf(stderr, "joined %zu: wall %.1f s, sim %.1f s, datagrams %llu, rss %.0f MB\n", started,
                   seconds_since(t0), std::chrono::duration<double>(sim.now()).count(),
                   static_cast<unsigned long long>(sim.stats().delivered), proc_status_kb("VmRSS") / 1024.0);
    });
    sim::Rng rng(o->seed * 104729 + 3);
    double join_wall = seconds_since(t0);
    double join_sim_s = std::chrono::duration<double>(sim.now()).count();
    sim.run_for(5s);

    std::vector<std::string> keys(o->ops);
    std::vector<Bytes> vals(o->ops);
    std::vector<size_t> putter(o->ops);
    std::vector<double> put_rounds, get_rounds, rpcs, put_ms, put_lookup_ms, get_ms;
    size_t put_ok = 0, get_ok = 0, get_local = 0;
    for (size_t j = 0; j < o->ops; ++j) {
      keys[j] = "sim-key-" + std::to_string(o->seed) + "-" + std::to_string(j);
      vals[j].resize(o->value_size);
      for (auto& b : vals[j]) b = static_cast<uint8_t>(rng.next());
      putter[j] = rng.below(o->nodes);
      bool done = false;
      TimePoint start = sim.now();
      sim.node(putter[j]).dht().put(keys[j], vals[j], [&, start](const PutResult& r) {
        done = true;
        put_ok += r.ok;
        put_rounds.push_back(r.lookup.rounds);
        rpcs.push_back(r.lookup.rpcs);
        put_ms.push_back(std::chrono::duration<double, std::milli>(sim.now() - start).count());  // to the answer
        put_lookup_ms.push_back(std::chrono::duration<double, std::milli>(r.lookup.elapsed).count());
      });
      sim.run_until([&] { return done; }, 60s);
    }
    // Updates: a new value under each key from its putter, a second after the puts (DhtConfig::placement_reuse).
    std::vector<double> update_ms;
    size_t update_ok = 0, update_reused = 0;
    if (o->updates > 0) sim.run_for(1s);
    for (size_t u = 0; u < o->updates; ++u)
      for (size_t j = 0; j < o->ops; ++j) {
        for (auto& b : vals[j]) b = static_cast<uint8_t>(rng.next());
        bool done = false;
        TimePoint start = sim.now();
        sim.node(putter[j]).dht().put(keys[j], vals[j], [&, start](const PutResult& r) {
          done = true;
          update_ok += r.ok;
          update_reused += r.placement_reused;
          update_ms.push_back(std::chrono::duration<double, std::milli>(sim.now() - start).count());
        });
        sim.run_until([&] { return done; }, 60s);
      }
    sim.run_for(2s);
    size_t killed = 0;
    if (o->kill > 0) {
      for (size_t i = 0; i < o->nodes; ++i)
        if (rng.uniform() < o->kill) {
          sim.kill(i);
          ++killed;
        }
    }
    for (size_t j = 0; j < o->ops; ++j) {
      size_t g;
      do g = rng.below(o->nodes);
      while (!sim.alive(g) || (g == putter[j] && o->nodes > 1));
      bool done = false;
      TimePoint start = sim.now();
      sim.node(g).dht().get(keys[j], [&, start](GetResult r) {
        done = true;
        if (r.value && *r.value == vals[j]) ++get_ok;
        if (r.local) {
          ++get_local;
          return;
        }
        get_rounds.push_back(r.lookup.rounds);
        rpcs.push_back(r.lookup.rpcs);
        get_ms.push_back(std::chrono::duration<double, std::milli>(sim.now() - start).count());
      });
      sim.run_until([&] { return done; }, 60s);
    }
    // After a kill and the gets: M puts of fresh keys from live nodes, whose tables still hold dead contacts (puts
    // under churn; after the gets, so the gets meet the tables the kill left).
    std::vector<double> churn_put_ms;
    size_t churn_put_ok = 0;
    if (killed > 0)
      for (size_t j = 0; j < o->ops; ++j) {
        size_t p;
        do p = rng.below(o->nodes);
        while (!sim.alive(p));
        Bytes v(o->value_size);
        for (auto& b : v) b = static_cast<uint8_t>(rng.next());
        bool done = false;
        TimePoint start = sim.now();
        sim.node(p).dht().put("sim-churn-key-" + std::to_string(o->seed) + "-" + std::to_string(j), v,
                              [&, start](const PutResult& r) {
                                done = true;
                                churn_put_ok += r.ok;
                                churn_put_ms.push_back(
                                    std::chrono::duration<double, std::milli>(sim.now() - start).count());
                              });
        sim.run_until([&] { return done; }, 60s);
      }
    // After a kill: up to M of the killed nodes restart one after another from the routing table they held (a
    // restart that kept its disk, its contacts about as often dead as the network's), with no seed; then up to M
    // others restart with an empty disk through one live seed (a fresh join into a network whose tables still
    // name the dead). Each: the time to the join's end, and to the end of its refreshes (the table filled as
    // far as the join fills it).
    struct Joins {
      std::vector<double> ms, refilled_ms;
      size_t ok = 0;
    } rejoins, fresh;
    if (killed > 0) {
      std::vector<size_t> dead;
      for (size_t i = 0; i < o->nodes; ++i)
        if (!sim.alive(i)) dead.push_back(i);
      auto restart = [&](size_t i, std::unique_ptr<DhtStorage> disk, std::vector<Endpoint> seeds, Joins& out) {
        sim.restart(i, node_cfg, std::move(disk));
        auto joined = std::make_shared<std::optional<bool>>();  // outlives this call if the join outlives its wait
        TimePoint start = sim.now();
        sim.node(i).dht().bootstrap(seeds, [&out, &sim, joined, start](bool ok) {
          *joined = ok;
          out.ok += ok;
          out.ms.push_back(std::chrono::duration<double, std::milli>(sim.now() - start).count());
        });
        sim.run_until([&] { return joined->has_value(); }, 60s);
        auto refreshed = [&] {  // a join that succeeded started one run of refreshes; ended once done caught up
          auto st = sim.node(i).dht().stats();
          return st.join_refresh_runs > 0 && st.join_refresh_runs_done >= st.join_refresh_runs;
        };
        if (joined->value_or(false) && sim.run_until(refreshed, 60s))
          out.refilled_ms.push_back(std::chrono::duration<double, std::milli>(sim.now() - start).count());
      };
      const size_t restarts = std::min(o->ops, dead.size() / 2);
      for (size_t r = 0; r < restarts; ++r) {
        const size_t pick = r + rng.below(dead.size() - r);
        std::swap(dead[r], dead[pick]);
        auto disk = make_memory_storage();
        disk->save_contacts(sim.node(dead[r]).dht().peers());
        restart(dead[r], std::move(disk), {}, rejoins);
      }
      const size_t fresh_joins = std::min(o->ops, dead.size() - restarts);
      for (size_t r = restarts; r < restarts + fresh_joins; ++r) {
        size_t seed = rng.below(o->nodes);
        while (!sim.alive(seed)) seed = rng.below(o->nodes);
        restart(dead[r], make_memory_storage(), {sim.endpoint(seed)}, fresh);
      }
    }
    std::vector<double> all_rounds = put_rounds;
    all_rounds.insert(all_rounds.end(), get_rounds.begin(), get_rounds.end());
    double rpc_sum = 0;
    for (double r : rpcs) rpc_sum += r;
    double contacts = 0;
    double sessions = 0, dormant = 0, verdicts = 0, self_checks = 0;
    std::map<std::string, double> requests_out;  // per node, by method
    for (size_t i = 0; i < o->nodes; ++i) {
      contacts += sim.node(i).dht().peer_count();
      NodeStats st = sim.node(i).stats();
      sessions += st.sessions;
      dormant += st.dormant_sessions;
      DhtStats ds = sim.node(i).dht().stats();
      verdicts += static_cast<double>(ds.dial_back_verdicts_asked);
      self_checks += static_cast<double>(ds.dial_back_self_checks);
      for (const auto& m : st.requests) requests_out[std::string(m.method)] += static_cast<double>(m.out) / o->nodes;
    }
    nlohmann::json result = {{"workload", "sim-dht"},
                  {"nodes", o->nodes},
                  {"ops", o->ops},
                  {"seed", o->seed},
                  {"kill", o->kill},
                  {"killed", killed},
                  {"joined", joined},
                  {"put_ok", put_ok},
                  {"get_ok", get_ok},
                  {"get_local", get_local},
                  {"rounds_p50", percentile(all_rounds, 0.5)},
                  {"rounds_p99", percentile(all_rounds, 0.99)},
                  {"put_rounds_p50", percentile(put_rounds, 0.5)},
                  {"get_rounds_p50", percentile(get_rounds, 0.5)},
                  {"get_rounds_p99", percentile(get_rounds, 0.99)},
                  {"rpcs_per_lookup", rpcs.empty() ? 0 : rpc_sum / rpcs.size()},
                  {"put_sim_ms_p50", percentile(put_ms, 0.5)},
                  {"put_sim_ms_p99", percentile(put_ms, 0.99)},
                  {"put_lookup_sim_ms_p50", percentile(put_lookup_ms, 0.5)},
                  {"get_sim_ms_p50", percentile(get_ms, 0.5)},
                  {"get_sim_ms_p99", percentile(get_ms, 0.99)},
                  {"routing_contacts_mean", contacts / o->nodes},
                  {"sessions_mean", sessions / o->nodes},
                  {"dormant_sessions_mean", dormant / o->nodes},
                  {"requests_out_per_node", requests_out},
                  {"dial_back_verdicts_asked_mean", verdicts / o->nodes},
                  {"dial_back_self_checks_mean", self_checks / o->nodes},
                  {"datagrams", sim.stats().delivered},
                  {"events", sim.stats().events},
                  {"join_wall_s", join_wall},
                  {"join_sim_s", join_sim_s},
                  {"wall_s", seconds_since(t0)},
                  {"peak_rss_mb", peak_rss_mb()},
                  {"trace_hash", std::to_string(sim.trace_hash())}};
    if (o->updates > 0) {
      result["updates"] = update_ms.size();
      result["update_ok"] = update_ok;
      result["update_placement_reused"] = update_reused;
      result["update_sim_ms_p50"] = percentile(update_ms, 0.5);
      result["update_sim_ms_p99"] = percentile(update_ms, 0.99);
    }
    if (killed > 0) {
      result["churn_put_ok"] = churn_put_ok;
      result["churn_put_sim_ms_p50"] = percentile(churn_put_ms, 0.5);
      result["churn_put_sim_ms_p90"] = percentile(churn_put_ms, 0.9);
      result["churn_put_sim_ms_p99"] = percentile(churn_put_ms, 0.99);
      for (auto& [name, j] : {std::pair<std::string, Joins*>{"rejoin", &rejoins}, {"fresh_join", &fresh}}) {
        result[name + "s"] = j->ms.size();
        result[name + "_ok"] = j->ok;
        result[name + "_sim_ms_p50"] = percentile(j->ms, 0.5);
        result[name + "_sim_ms_p90"] = percentile(j->ms, 0.9);
        result[name + "_sim_ms_p99"] = percentile(j->ms, 0.99);
        result[name + "_refilled"] = j->refilled_ms.size();
        result[name + "_refilled_sim_ms_p50"] = percentile(j->refilled_ms, 0.5);
        result[name + "_refilled_sim_ms_p90"] = percentile(j->refilled_ms, 0.9);
        result[name + "_refilled_sim_ms_p99"] = percentile(j->refilled_ms, 0.99);
      }
    }
    if (o->cdf) {
      result["cdf"] = {{"put_sim_ms", cdf_points(put_ms)}, {"get_sim_ms", cdf_points(get_ms)}};
      result["rounds_histogram"] = {{"put", histogram(put_rounds)}, {"get", histogram(get_rounds)}};
    }
    print_result(result);
  });
}
STORJNET_WORKLOAD(add_sim_dht);

}  // namespace storjnet::bench
