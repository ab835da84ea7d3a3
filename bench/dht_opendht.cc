// dht: the OpenDHT comparison workload of ../shared/bench/opendht/README.md section 2, on N real storjnet
// nodes (one RealDriver, --threads io threads, nodes round-robin over them) bound to 127.0.0.1. Mirrors
// odht_bench.cpp: same phases (settle, idle, put64, put1k, get64, get1k, listen, burst put/get), same key
// strings, payloads, single std::mt19937_64 and draw order, nearest-rank percentiles over successful ops, and the
// RESULT_JSON schema of section 2.9 with "impl":"storjnet". The timed operations are in dht_ops.h.
//
// Mapping onto our API (see bench/README.md "dht (OpenDHT comparison)"):
//  * node i: Identity::from_seed(BLAKE2b-256("bench-node-<seed>-<i>")); node id = BLAKE2b-160(public key).
//  * keys: the key strings are our DHT user keys (hashed with BLAKE2b-160 by the DHT).
//  * good = routing-table size (Dht::peers()), dubious = 0 (no such state in our table).
//  * replicas / local hits: each node's DhtStorage is created here (make_memory_storage, as the default) and
//    queried directly on its node's io thread (or with the driver paused), untimed.
//  * threads: timed operations are posted to their node's io thread; aggregates over all nodes (routing-table
//    snapshots, drop counters, replica counts) run with the driver paused (RealDriver::call without a node).
//  * traffic: sendto() and sendmsg() are interposed in the executable (dht_ops.cc; Asio's send_to uses sendmsg).
//  * drops: ratelimit_drops = engine drops with reason rate_limited (all nodes); rxqueue_drops = 0 (no rx queue).
//  * --trace: routing-table and failed-get diagnostics on stderr (untimed, no RNG draws).
#include <malloc.h>
#include <sodium.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <future>
#include <map>
#include <random>
#include <thread>
#include <unordered_map>

#include "bench_util.h"
#include "dht_listen.h"
#include "dht_ops.h"
#include "node/node_internals.h"
#include "storjnet/version.h"
#include "engine/engine.h"
#include "storjnet/real_driver.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {

using namespace dht_ops;
using nlohmann::json;

void run_dht(const Opts& opts) {
  Opts a = opts;
  a.topics = std::min(a.topics, a.ops);
  g_progress = !a.quiet;
  const int N = a.nodes;
  if (a.base_port != 0 && (a.base_port < 1024 || a.base_port + N > 65535))
    throw std::runtime_error("--base-port out of range");
  if (sodium_init() < 0) throw std::runtime_error("libsodium init failed");

  std::thread([max_s = a.max_seconds] {
    std::this_thread::sleep_for(std::chrono::duration<double>(max_s));
    std::fprintf(stderr, "watchdog: --max-seconds %.0f exceeded, aborting\n", max_s);
    std::fflush(stderr);
    _exit(3);
  }).detach();

  std::mt19937_64 rng(a.seed);
  long rss0_kb = proc_status_kb("VmRSS");
  // Heap bytes in use (malloc's view, every arena): RSS less what malloc holds free (holes left by freed
  // memory between live blocks) and stacks.
  auto heap_kb = [] {
    auto m = mallinfo2();
    return static_cast<long>((m.uordblks + m.hblkhd) / 1024);
  };
  long heap0_kb = heap_kb();
  double cpu0 = cpu_seconds();
  Udp udp0 = read_udp();
  Tx tx0 = tx_now();

  RealDriver::Options dopts;
  dopts.threads = static_cast<unsigned>(std::min(a.threads, N));
  if (a.key_threads >= 0) dopts.key_threads = static_cast<unsigned>(a.key_threads);
  RealDriver driver(dopts);
  Bench b;
  b.a = a;
  b.driver = &driver;
  b.nodes.reserve(N);
  b.stores.reserve(N);
  std::vector<Endpoint> eps(N);
  TP t_start = Clock::now();
  std::vector<RealDriver::NodeSpec> specs;
  specs.reserve(N);
  for (int i = 0; i < N; ++i) {
    auto bind = Endpoint::from_ip("127.0.0.1", a.base_port ? static_cast<uint16_t>(a.base_port + i) : 0);
    if (!bind) throw std::runtime_error("bad bind address");
    auto storage = make_memory_storage();
    b.stores.push_back(storage.get());
    specs.push_back({{*bind}, node_identity(a.seed, i), NodeConfig{}, std::move(storage)});
  }
  b.nodes = driver.add_nodes(std::move(specs));  // every io thread makes its share at once
  for (int i = 0; i < N; ++i) eps[i] = driver.local_endpoint(*b.nodes[i]);
  TP t_started = Clock::now();
  g_drops = [&b] {
    return b.driver->call([&b] {
      DropCounters dc;
      for (auto* n : b.nodes)
        for (size_t i = 0; i < dc.by_reason.size(); ++i)
          dc.by_reason[i] += NodeInternals::engine(*n).drops().by_reason[i];
      return dc;
    });
  };
  for (size_t i = 1; i < b.nodes.size(); ++i)
    driver.post(*b.nodes[i], [n = b.nodes[i], ep0 = eps[0]] { n->dht().bootstrap({ep0}, [](bool) {}); });
  progress("started %d nodes in %.2fs (bootstrap node %s)\n", N, sec_since(t_start, t_started),
           eps[0].to_string().c_str());

  // Requests sent per wire method, summed over all nodes (driver paused): where a phase's datagrams go.
  auto requests_out = [&] {
    return driver.call([&] {
      std::map<std::string, uint64_t> m;
      for (auto* n : b.nodes) {
        for (const auto& r : n->stats().requests)
          if (r.out) m[std::string(r.method)] += r.out;
        DhtStats d = n->dht().stats();
        m["(lookups)"] += d.lookups;
        m["(lookup_rpcs)"] += d.lookup_rpcs;
        m["(verify_pings)"] += d.verify_pings;
        m["(verify_spared)"] += d.verify_spared;
        m["(verify_asked)"] += d.verify_asked;
        m["(dial_back_asks)"] += d.dial_back_asks_sent;
        m["(dial_back_confirmed)"] += d.dial_back_confirmed;
        m["(reachable_nodes)"] += d.reachable;
        m["(relay_lists_published)"] += d.relay_lists_published;
        m["(relay_reservations_made)"] += d.relay_reservations_made;
        m["(keepalives)"] += d.keepalives_sent;
        m["(puts)"] += d.puts;
      }
      return m;
    });
  };
  auto requests_delta = [](const std::map<std::string, uint64_t>& a0, const std::map<std::string, uint64_t>& a1) {
    json j = json::object();
    for (const auto& [k, v] : a1)
      if (uint64_t d = v - (a0.count(k) ? a0.at(k) : 0)) j[k] = d;
    return j;
  };
  const auto req0 = requests_out();

  // ---- settle (same criterion as odht_bench.cpp)
  double t_all_connected = -1, t_settled = -1;
  bool settled = false;
  std::vector<std::pair<double, long>> hist;
  RtSnap snap;
  const double W = a.settle_window_ms / 1000.0;
  TP settle_deadline = t_start + secs(a.settle_timeout);
  const int max_samples = static_cast<int>(a.settle_timeout * 1000 / std::max(1, a.sample_ms)) + 2;
  for (int s = 0; s < max_samples && Clock::now() < settle_deadline; ++s) {
    snap = snapshot(b);
    double t = sec_since(t_start, Clock::now());
    long known = snap.sum_good + snap.sum_dubious;
    hist.emplace_back(t, known);
    if (t_all_connected < 0 && snap.connected == N) t_all_connected = t;
    if (a.trace)
      std::fprintf(stderr, "TRACE t=%.3f connected=%d sum_good=%ld min=%u max=%u tx=%lld\n", t, snap.connected,
                   snap.sum_good, snap.min_good, snap.max_good, g_tx_dgrams.load());
    if (snap.connected == N && t_all_connected >= 0 && t - W >= t_all_connected) {
      bool stable = true, covered = false;
      double tol = 0.01 * std::max<long>(known, 1);
      for (auto it = hist.rbegin(); it != hist.rend(); ++it) {
        if (std::fabs(static_cast<double>(it->second - known)) > tol) {
          stable = false;
          break;
        }
        if (it->first <= t - W) {
          covered = true;
          break;
        }
      }
      if (stable && covered) {
        settled = true;
        t_settled = t - W;
        break;
      }
    }
    if (s % std::max(1, 2000 / std::max(1, a.sample_ms)) == 0)
      progress("  t=%.2fs connected=%d/%d good(min/mean/max)=%u/%.1f/%u\n", t, snap.connected, N, snap.min_good,
               static_cast<double>(snap.sum_good) / N, snap.max_good);
    std::this_thread::sleep_for(std::chrono::milliseconds(a.sample_ms));
  }
  TP t_settle_end = Clock::now();
  double t_known95 = -1;
  if (!hist.empty()) {
    double target = 0.95 * hist.back().second;
    for (auto& h : hist)
      if (h.second >= target) {
        t_known95 = h.first;
        break;
      }
  }
  double cpu_settle = cpu_seconds() - cpu0;
  Tx tx_settle = tx_now();
  const auto req_settle = requests_out();
  long rss_settled_kb = proc_status_kb("VmRSS");
  long heap_settled_kb = heap_kb();
  long threads = proc_status_kb("Threads");
  if (a.exit_after_settle) {
    // Profiling aid: what is allocated now is what heaptrack reports as leaked (the settled heap).
    size_t sessions = driver.call([&] {
      size_t n = 0;
      for (auto* node : b.nodes) n += NodeInternals::engine(*node).session_count();
      return n;
    });
    std::printf("memory: %.1f KiB/node settled (exit after settle), heap %.1f KiB/node, sessions %.1f/node\n",
                double(rss_settled_kb - rss0_kb) / N, double(heap_settled_kb - heap0_kb) / N, double(sessions) / N);
    // What of the gap between RSS and heap is free memory the allocator kept (returned by malloc_trim; glibc's
    // allocator only: meaningless under ASan or another malloc).
    malloc_trim(0);
    std::printf("memory: %.1f KiB/node after malloc_trim(0)\n", double(proc_status_kb("VmRSS") - rss0_kb) / N);
    std::fflush(stdout);
    _exit(0);
  }
  progress("settle: %s at %.2fs (connected %.2fs) good(min/mean/max)=%u/%.1f/%u\n", settled ? "settled" : "TIMEOUT",
           settled ? t_settled : sec_since(t_start, t_settle_end), t_all_connected, snap.min_good,
           static_cast<double>(snap.sum_good) / N, snap.max_good);

  if (a.trace) {
    // in-degree: in how many other routing tables each node appears
    std::vector<int> indeg(N, 0);
    driver.call([&] {
      std::unordered_map<NodeId, int> idx;
      for (int i = 0; i < N; ++i) idx[b.nodes[i]->dht().id()] = i;
      for (auto* n : b.nodes)
        for (auto& c : n->dht().peers())
          if (auto it = idx.find(c.id); it != idx.end()) indeg[it->second]++;
    });
    std::vector<double> d(indeg.begin(), indeg.end());
    int low = 0;
    for (int x : indeg) low += x < 3;
    // neighbourhood linkage: how many of each node's true k closest ids are in its own table
    std::vector<double> linked(N, 0);
    driver.call([&] {
      size_t kk = b.nodes[0]->dht().config().k;
      for (int i = 0; i < N; ++i) {
        std::vector<std::pair<NodeId, int>> order;
        for (int x = 0; x < N; ++x)
          if (x != i) order.emplace_back(b.nodes[x]->dht().id() ^ b.nodes[i]->dht().id(), x);
        std::sort(order.begin(), order.end());
        auto peers = b.nodes[i]->dht().peers();
        for (size_t q = 0; q < kk && q < order.size(); ++q)
          for (auto& c : peers)
            if (c.id == b.nodes[order[q].second]->dht().id()) { linked[i]++; break; }
      }
    });
    std::fprintf(stderr, "TRACE own true-k-closest present in own table: min %.0f median %.0f mean-ish p10 %.0f\n",
                 percentile(linked, 0), percentile(linked, 0.5), percentile(linked, 0.1));
    {
      std::vector<double> occ(12, 0);
      driver.call([&] {
        for (auto* n : b.nodes)
          for (auto& c : n->dht().peers()) {
            int cp = n->dht().id().common_prefix_bits(c.id);
            occ[std::min(cp, 11)] += 1.0 / N;
          }
      });
      std::fprintf(stderr, "TRACE mean bucket sizes 0..11+:");
      for (double x : occ) std::fprintf(stderr, " %.1f", x);
      std::fprintf(stderr, "\n");
    }
    std::fprintf(stderr, "TRACE in-degree min %.0f median %.0f max %.0f; nodes in < 3 tables: %d; node0 %d\n",
                 percentile(d, 0), percentile(d, 0.5), percentile(d, 1), low, indeg[0]);
  }
  if (a.diag_self_lookup) {
    // diagnostic only (off by default): every node looks its own id up once more, now that all have joined
    auto left = std::make_shared<std::atomic<int>>(N);
    std::promise<void> all;
    driver.post([&] {
      for (auto* n : b.nodes)
        n->dht().find_contact(n->dht().id(), [left, &all](std::optional<Contact>) {
          if (--*left == 0) all.set_value();
        });
    });
    all.get_future().wait_for(std::chrono::seconds(30));
    progress("diag: second self-lookup done in %.2fs after settle\n", sec_since(t_settle_end, Clock::now()));
  }
  // ---- idle
  double c_idle0 = cpu_seconds();
  Tx tx_idle0 = tx_now();
  const auto req_idle0 = requests_out();
  TP ti0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(a.idle_s));
  double idle_wall = sec_since(ti0, Clock::now());
  const double idle_div = idle_wall > 0.5 ? idle_wall : NAN;
  double idle_cpu = cpu_seconds() - c_idle0;
  Tx tx_idle1 = tx_now();
  const auto req_idle1 = requests_out();

  // ---- workload
  auto make_keys = [&](const char* tag, size_t len) {
    std::vector<KeyRec> ks(a.ops);
    for (int j = 0; j < a.ops; ++j) {
      ks[j].key = std::string("bench-key-") + tag + "-" + std::to_string(a.seed) + "-" + std::to_string(j);
      ks[j].hkey = dht_key(ks[j].key);
      ks[j].data = make_payload(rng, len);
    }
    return ks;
  };
  auto keys64 = make_keys("64", 64);
  auto keys1k = make_keys("1k", 1024);
  progress("put 64B x %d\n", a.ops);
  // Requests per wire method in each op phase (driver paused between phases): where its datagrams go.
  std::map<std::string, json> phase_requests;
  auto requests_of = [&](const char* phase, auto run) {
    auto r0 = requests_out();
    auto r = run();
    phase_requests[phase] = requests_delta(r0, requests_out());
    return r;
  };
  auto put64 = requests_of("put64", [&] { return run_puts(b, keys64, rng, "put64"); });
  progress("put 1KiB x %d\n", a.ops);
  auto put1k = requests_of("put1k", [&] { return run_puts(b, keys1k, rng, "put1k"); });
  progress("get 64B x %d\n", a.ops);
  auto get64 = requests_of("get64", [&] { return run_gets(b, keys64, rng, "get64"); });
  progress("get 1KiB x %d\n", a.ops);
  auto get1k = requests_of("get1k", [&] { return run_gets(b, keys1k, rng, "get1k"); });
  progress("listen x %d events over %d topics\n", a.ops, a.topics);
  ListenPhaseArgs la;
  la.driver = &driver;
  la.nodes = b.nodes;
  la.rng = &rng;
  la.seed = a.seed;
  la.ops = a.ops;
  la.topics = a.topics;
  la.sub_settle_s = a.sub_settle_s;
  la.event_timeout_s = a.event_timeout;
  la.cdf = a.cdf;
  Tx tx_lis0 = tx_now();
  json lis = run_listen_phase(la);
  Tx tx_lis1 = tx_now();
  BurstResult bput, bget;
  if (a.burst > 0) {
    auto keysb = make_keys("burst", 64);
    progress("burst put 64B x %d, %d in flight\n", a.ops, a.burst);
    bput = requests_of("burst_put", [&] { return run_burst(b, keysb, rng, false); });
    progress("burst get 64B x %d, %d in flight\n", a.ops, a.burst);
    bget = requests_of("burst_get", [&] { return run_burst(b, keysb, rng, true); });
  }

  long rss_end_kb = proc_status_kb("VmRSS");
  long heap_end_kb = heap_kb();
  long hwm_kb = proc_status_kb("VmHWM");
  double cpu_total = cpu_seconds() - cpu0;
  double wall_total = sec_since(t_start, Clock::now());
  Udp udp_end = read_udp();
  Tx tx_end = tx_now();
  RtSnap snap_end = snapshot(b);
  json drops_json = json::object();
  {
    DropCounters dc = g_drops();
    for (size_t i = 0; i < dc.by_reason.size(); ++i)
      if (dc.by_reason[i]) drops_json[std::string(kDropReasonNames[i])] = dc.by_reason[i];
  }
  uint64_t engine_dgrams = driver.call([&] {
    uint64_t d = 0;
    for (auto* n : b.nodes) d += n->stats().datagrams_out;
    return d;
  });

  // ---- JSON
  auto pg_json = [&](const PutGetResult& r, size_t size, bool is_get) {
    json j;
    j["value_bytes"] = size;
    j["attempted"] = r.attempted;
    j["ok"] = r.ok;
    j["timeouts"] = r.timeouts;
    j["success_rate"] = r.attempted ? double(r.ok) / r.attempted : 0.0;
    j["latency_ms"] = summary_json(r.lat_ms);
    if (a.cdf) j["latency_cdf_ms"] = cdf_points(r.lat_ms);
    if (is_get) {
      j["notfound_ms"] = summary_json(r.notfound_ms);
      j["local_hits"] = r.local_hits;
      j["remote_latency_ms"] = summary_json(r.remote_ms);
    } else {
      j["replicas"] = summary_json(r.replicas);
    }
    j["wall_s"] = r.wall_s;
    j["cpu_s"] = r.cpu_s;
    j["tx_datagrams_per_op"] = r.attempted ? double(r.tx_after.d - r.tx_before.d) / r.attempted : 0.0;
    j["tx_bytes_per_op"] = r.attempted ? double(r.tx_after.b - r.tx_before.b) / r.attempted : 0.0;
    j["ratelimit_drops"] = r.tx_after.rl - r.tx_before.rl;
    j["rxqueue_drops"] = 0;
    j["netns_rcvbuf_errors"] = r.tx_after.rcvbuf - r.tx_before.rcvbuf;
    return j;
  };
  auto burst_json = [&](const BurstResult& r) {
    json j;
    j["value_bytes"] = 64;
    j["concurrency"] = r.concurrency;
    j["attempted"] = r.attempted;
    j["ok"] = r.ok;
    j["timeouts"] = r.timeouts;
    j["success_rate"] = r.attempted ? double(r.ok) / r.attempted : 0.0;
    j["throughput_ops_s"] = r.wall_s > 0 ? r.ok / r.wall_s : 0.0;
    j["latency_ms"] = summary_json(r.lat_ms);
    if (a.cdf) j["latency_cdf_ms"] = cdf_points(r.lat_ms);
    j["wall_s"] = r.wall_s;
    j["cpu_s"] = r.cpu_s;
    j["tx_datagrams_per_op"] = r.attempted ? double(r.tx_after.d - r.tx_before.d) / r.attempted : 0.0;
    j["ratelimit_drops"] = r.tx_after.rl - r.tx_before.rl;
    j["rxqueue_drops"] = 0;
    j["netns_rcvbuf_errors"] = r.tx_after.rcvbuf - r.tx_before.rcvbuf;
    return j;
  };
  char datebuf[64];
  {
    time_t now = time(nullptr);
    strftime(datebuf, sizeof datebuf, "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
  }
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  json j;
  j["bench"] = "storjnet-bench dht";
  j["impl"] = "storjnet";
  j["impl_version"] = kVersionString;
  j["label"] = a.label;
  j["date"] = datebuf;
  j["nodes"] = N;
  j["ops"] = a.ops;
  j["seed"] = a.seed;
  j["topics"] = a.topics;
  j["ratelimit"] = "default";
  j["io"] = "asio";
  j["cpus"] = std::thread::hardware_concurrency();
  j["threads"] = driver.threads();
  j["key_threads"] = driver.key_threads();
  j["settle"] = {{"settled", settled},
                 {"start_s", sec_since(t_start, t_started)},
                 {"all_connected_s", t_all_connected},
                 {"settled_s", t_settled},
                 {"known95_s", t_known95},
                 {"phase_wall_s", sec_since(t_start, t_settle_end)},
                 {"connected", snap.connected},
                 {"good_min", snap.min_good},
                 {"good_mean", double(snap.sum_good) / N},
                 {"good_max", snap.max_good},
                 {"dubious_mean", double(snap.sum_dubious) / N},
                 {"settle_window_s", W},
                 {"cpu_s", cpu_settle},
                 {"tx_datagrams", tx_settle.d - tx0.d},
                 {"tx_bytes", tx_settle.b - tx0.b},
                 {"ratelimit_drops", tx_settle.rl - tx0.rl},
                 {"rxqueue_drops", 0},
                 {"netns_rcvbuf_errors", tx_settle.rcvbuf - tx0.rcvbuf},
                 {"requests_out", requests_delta(req0, req_settle)}};
  j["idle"] = {{"wall_s", idle_wall},
               {"cpu_s", idle_cpu},
               {"cpu_pct_total", num(100.0 * idle_cpu / idle_div)},
               {"cpu_ms_per_node_per_s", num(1000.0 * idle_cpu / idle_div / N)},
               {"tx_datagrams_per_s", num((tx_idle1.d - tx_idle0.d) / idle_div)},
               {"tx_bytes_per_s", num((tx_idle1.b - tx_idle0.b) / idle_div)},
               {"requests_out", requests_delta(req_idle0, req_idle1)}};
  j["put64"] = pg_json(put64, 64, false);
  j["put1k"] = pg_json(put1k, 1024, false);
  j["get64"] = pg_json(get64, 64, true);
  j["get1k"] = pg_json(get1k, 1024, true);
  for (const char* phase : {"put64", "put1k", "get64", "get1k"}) j[phase]["requests_out"] = phase_requests[phase];
  if (lis.is_object()) {
    // traffic as the rest of this harness counts it (process-wide interposed sends), next to the phase's own
    long long ev = lis.value("events", 0);
    lis["process_tx_datagrams_per_event"] = ev ? double(tx_lis1.d - tx_lis0.d) / ev : 0.0;
  }
  j["listen"] = lis;
  j["memory"] = {{"rss_baseline_kb", rss0_kb},
                 {"rss_settled_kb", rss_settled_kb},
                 {"rss_end_kb", rss_end_kb},
                 {"rss_hwm_kb", hwm_kb},
                 {"per_node_settled_kb", double(rss_settled_kb - rss0_kb) / N},
                 {"per_node_end_kb", double(rss_end_kb - rss0_kb) / N},
                 {"heap_per_node_settled_kb", double(heap_settled_kb - heap0_kb) / N},
                 {"heap_per_node_end_kb", double(heap_end_kb - heap0_kb) / N},
                 {"threads", threads}};
  j["cpu"] = {{"total_s", cpu_total}, {"wall_s", wall_total}, {"per_node_s", cpu_total / N}};
  j["udp"] = {{"process_tx_datagrams", tx_end.d - tx0.d},
              {"process_tx_bytes", tx_end.b - tx0.b},
              {"process_tx_failures", g_tx_fail.load()},
              {"engine_tx_datagrams", engine_dgrams},
              {"engine_drops", drops_json},
              {"ratelimit_drops", tx_end.rl - tx0.rl},
              {"rxqueue_drops", 0},
              {"netns_in_errors", udp_end.inerr - udp0.inerr},
              {"netns_rcvbuf_errors", udp_end.rcvbuf - udp0.rcvbuf}};
  if (a.burst > 0) {
    j["burst_put"] = burst_json(bput);
    j["burst_get"] = burst_json(bget);
    j["burst_put"]["requests_out"] = phase_requests["burst_put"];
    j["burst_get"]["requests_out"] = phase_requests["burst_get"];
  }
  j["opendht_warnings"] = 0;
  j["opendht_errors"] = 0;
  j["good_mean_end"] = double(snap_end.sum_good) / N;
  j["dubious_mean_end"] = double(snap_end.sum_dubious) / N;
  print_result(j);

  // ---- human table
  auto row = [](const char* name, size_t ok, size_t att, const std::vector<double>& lat) {
    std::printf("%-10s %6zu/%-6zu %7.1f%% %9.2f %9.2f %9.2f %9.2f\n", name, ok, att, att ? 100.0 * ok / att : 0.0,
                percentile(lat, 0.5), percentile(lat, 0.9), percentile(lat, 0.99), percentile(lat, 1.0));
  };
  std::printf("\nstorjnet N=%d  M=%d  seed=%llu  threads=%zu  label=%s\n", N, a.ops,
              static_cast<unsigned long long>(a.seed), driver.threads(), a.label.c_str());
  std::printf("settle: %s %.2fs (all connected %.2fs), good/node min/mean/max %u/%.1f/%u\n",
              settled ? "ok" : "TIMEOUT", t_settled, t_all_connected, snap.min_good, double(snap.sum_good) / N,
              snap.max_good);
  std::printf("%-10s %13s %8s %9s %9s %9s %9s   (latency ms)\n", "op", "ok/attempt", "rate", "median", "p90", "p99",
              "max");
  row("put 64B", put64.ok, put64.attempted, put64.lat_ms);
  row("put 1KiB", put1k.ok, put1k.attempted, put1k.lat_ms);
  row("get 64B", get64.ok, get64.attempted, get64.lat_ms);
  row("get 1KiB", get1k.ok, get1k.attempted, get1k.lat_ms);
  if (a.burst > 0) {
    row("bput 64B", bput.ok, bput.attempted, bput.lat_ms);
    row("bget 64B", bget.ok, bget.attempted, bget.lat_ms);
    std::printf("burst: put %.0f ops/s, get %.0f ops/s @%d in flight\n", bput.wall_s > 0 ? bput.ok / bput.wall_s : 0,
                bget.wall_s > 0 ? bget.ok / bget.wall_s : 0, a.burst);
  }
  std::printf("memory: %.1f KiB/node settled, %.1f KiB/node end (heap in use %.1f, %.1f), threads %ld; cpu total "
              "%.2fs over %.1fs wall\n",
              double(rss_settled_kb - rss0_kb) / N, double(rss_end_kb - rss0_kb) / N,
              double(heap_settled_kb - heap0_kb) / N, double(heap_end_kb - heap0_kb) / N, threads, cpu_total,
              wall_total);
  std::printf("udp: %lld datagrams sent (interposed sendto/sendmsg), %llu by engine stats\n", tx_end.d - tx0.d,
              static_cast<unsigned long long>(engine_dgrams));
  std::fflush(stdout);
  g_progress = false;
  g_drops = nullptr;
  driver.stop();
}

}  // namespace

static void add_dht(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "dht", "OpenDHT comparison workload (../shared/bench/opendht/README.md section 2) on N real loopback nodes");
  cmd->add_option("--nodes", o->nodes)->check(CLI::Range(2, 5000));
  cmd->add_option("--ops", o->ops)->check(CLI::Range(1, 100000));
  cmd->add_option("--seed", o->seed);
  cmd->add_option("--threads", o->threads, "io threads the nodes are spread over (default: one per core)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--key-threads", o->key_threads,
                  "threads for first-contact key work (default -1: the cores the io threads leave; 0: none)")
      ->check(CLI::Range(-1, 1024))
      ->capture_default_str();
  cmd->add_option("--base-port", o->base_port, "0: ephemeral ports, else node i binds base+i");
  cmd->add_option("--settle-timeout", o->settle_timeout);
  cmd->add_option("--settle-window-ms", o->settle_window_ms);
  cmd->add_option("--sample-ms", o->sample_ms);
  cmd->add_option("--idle", o->idle_s);
  cmd->add_option("--op-timeout", o->op_timeout);
  cmd->add_option("--event-timeout", o->event_timeout);
  cmd->add_option("--topics", o->topics)->check(CLI::Range(1, 100000));
  cmd->add_option("--sub-settle", o->sub_settle_s);
  cmd->add_option("--burst", o->burst)->check(CLI::Range(0, 4096));
  cmd->add_option("--max-seconds", o->max_seconds, "watchdog: exit code 3 after this long");
  cmd->add_option("--label", o->label);
  cmd->add_flag("--quiet", o->quiet);
  cmd->add_flag("--exit-after-settle", o->exit_after_settle,
                "profiling aid: exit at once after the settled memory sample (heaptrack's leaks = the settled heap)");
  cmd->add_flag("--cdf", o->cdf, "add latency distributions (latency_cdf_ms, for scripts/plot)");
  cmd->add_flag("--trace", o->trace, "routing-table samples and get-miss diagnostics on stderr");
  cmd->add_flag("--diag-self-lookup", o->diag_self_lookup,
                "diagnostic, not the reference workload: each node looks its own id up again after settle");
  cmd->callback([o] { run_dht(*o); });
}
STORJNET_WORKLOAD(add_dht);

}  // namespace storjnet::bench
