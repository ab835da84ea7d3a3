// The timed operations of `storjnet-bench dht` (dht_opendht.cc): its options, the puts, gets and bursts it
// runs on N real nodes, the routing-table samples of its settle, and what it counts (datagrams sent by the
// process, CPU time, the kernel's UDP counters). Mirrors odht_bench.cpp's phases of the same name
// (../shared/bench/opendht/README.md section 2): the same draws from the one std::mt19937_64, in the same order.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storjnet/bytes.h"
#include "storjnet/dht_storage.h"
#include "storjnet/identity.h"
#include "storjnet/node_id.h"
#include "wire/drop_reason.h"

namespace storjnet {
class RealDriver;
class Node;
}  // namespace storjnet

namespace storjnet::bench::dht_ops {

using Clock = std::chrono::steady_clock;
using TP = Clock::time_point;

inline double ms_since(TP a, TP b) { return std::chrono::duration<double, std::milli>(b - a).count(); }
inline double sec_since(TP a, TP b) { return std::chrono::duration<double>(b - a).count(); }
inline Clock::duration secs(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

struct Opts {
  int nodes = 10;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int key_threads = -1;  // -1: RealDriver::Options::kSpareCores
  int ops = 200;
  uint64_t seed = 1;
  int base_port = 0;
  double settle_timeout = 120;
  int settle_window_ms = 5000;
  int sample_ms = 250;
  double idle_s = 5;
  double op_timeout = 15;
  double event_timeout = 10;
  int topics = 10;
  double sub_settle_s = 2;
  int burst = 16;
  double max_seconds = 1800;
  std::string label;
  bool quiet = false;
  bool trace = false;
  bool diag_self_lookup = false;
  bool cdf = false;
  bool exit_after_settle = false;
};

// Progress lines on stderr, while g_progress holds.
extern std::atomic<bool> g_progress;
void progress(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
double cpu_seconds();  // of the whole process, user and system

// Datagrams and bytes the process sent (sendto and sendmsg are interposed in dht_ops.cc), and sends that failed.
extern std::atomic<long long> g_tx_dgrams, g_tx_bytes, g_tx_fail;
struct Udp {  // the kernel's UDP counters (/proc/net/snmp)
  long long in = 0, out = 0, inerr = 0, rcvbuf = 0;
};
Udp read_udp();
struct Tx {  // datagrams, bytes, receive-buffer errors and rate-limit drops so far
  long long d = 0, b = 0, rcvbuf = 0, rl = 0;
};
// Engine drops of every node by reason (read on the io thread), set once the nodes exist.
extern std::function<DropCounters()> g_drops;
Tx tx_now();

nlohmann::json summary_json(std::vector<double> v);  // n, median, p90, p99, max, mean, min
Bytes make_payload(std::mt19937_64& rng, size_t len);

// Shared between the bench thread and callbacks on the io thread; outlives timeouts (shared_ptr capture).
struct OpState {
  std::mutex m;
  std::condition_variable cv;
  bool done = false, ok = false, found = false;
  TP t_done{}, t_found{};
  int rpcs = 0, rounds = 0;  // get: the lookup's figures (diagnostics)
  void finish(bool success) {
    std::lock_guard<std::mutex> l(m);
    if (!done) {
      done = true;
      ok = success;
      t_done = Clock::now();
    }
    cv.notify_all();
  }
  void mark_found(TP t) {
    std::lock_guard<std::mutex> l(m);
    if (!found) {
      found = true;
      t_found = t;
    }
    cv.notify_all();
  }
};

struct Bench {
  Opts a;
  RealDriver* driver = nullptr;
  std::vector<Node*> nodes;
  std::vector<DhtStorage*> stores;  // node i's storage (owned by the node), read on its io thread only
};

bool stored_locally(Bench& b, int node, const NodeId& key);

struct KeyRec {
  std::string key;
  NodeId hkey;
  Bytes data;
  int putter = -1;
  bool put_ok = false;
};

struct PutGetResult {
  size_t attempted = 0, ok = 0, timeouts = 0, local_hits = 0;
  std::vector<double> lat_ms, notfound_ms, remote_ms, replicas;
  double cpu_s = 0, wall_s = 0;
  Tx tx_before, tx_after;
};
// One at a time, each from a node drawn at random (a put) or from any node but the putter (a get).
PutGetResult run_puts(Bench& b, std::vector<KeyRec>& keys, std::mt19937_64& rng, const char* name);
PutGetResult run_gets(Bench& b, const std::vector<KeyRec>& keys, std::mt19937_64& rng, const char* name);

struct BurstResult {
  int concurrency = 0;
  size_t attempted = 0, ok = 0, timeouts = 0;
  std::vector<double> lat_ms;
  double wall_s = 0, cpu_s = 0;
  Tx tx_before, tx_after;
};
// A closed loop with Opts::burst operations in flight.
BurstResult run_burst(Bench& b, std::vector<KeyRec>& keys, std::mt19937_64& rng, bool is_get);

struct RtSnap {  // the routing tables, summed over the nodes
  int connected = 0;
  long sum_good = 0, sum_dubious = 0;
  unsigned min_good = ~0u, max_good = 0;
};
RtSnap snapshot(Bench& b);  // with every io thread paused

Identity node_identity(uint64_t seed, int i);  // node i's: from BLAKE2b-256("bench-node-<seed>-<i>")

}  // namespace storjnet::bench::dht_ops
