// The timed operations of `storjnet-bench dht`: see dht_ops.h.
#include "dht_ops.h"

#include <dlfcn.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_map>

#include "bench_util.h"
#include "storjnet/node.h"
#include "storjnet/real_driver.h"

namespace storjnet::bench::dht_ops {
std::atomic<long long> g_tx_dgrams{0}, g_tx_bytes{0}, g_tx_fail{0};

namespace {
ssize_t counted(ssize_t sent) {  // a send's result, counted
  if (sent >= 0) {
    g_tx_dgrams.fetch_add(1, std::memory_order_relaxed);
    g_tx_bytes.fetch_add(sent, std::memory_order_relaxed);
  } else {
    g_tx_fail.fetch_add(1, std::memory_order_relaxed);
  }
  return sent;
}
}  // namespace
}  // namespace storjnet::bench::dht_ops

// ---------------------------------------------------------------- datagram counter (process-wide)
extern "C" ssize_t sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* addr,
                          socklen_t alen) {
  using Fn = ssize_t (*)(int, const void*, size_t, int, const struct sockaddr*, socklen_t);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "sendto"));
  return storjnet::bench::dht_ops::counted(real(fd, buf, len, flags, addr, alen));
}

extern "C" ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  using Fn = ssize_t (*)(int, const struct msghdr*, int);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "sendmsg"));
  return storjnet::bench::dht_ops::counted(real(fd, msg, flags));
}

namespace storjnet::bench::dht_ops {

using nlohmann::json;

std::atomic<bool> g_progress{true};
void progress(const char* fmt, ...) {
  if (!g_progress) return;
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fflush(stderr);
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

Udp read_udp() {
  Udp u;
  std::ifstream f("/proc/net/snmp");
  std::string hdr, val;
  for (int guard = 0; guard < 50 && std::getline(f, hdr); ++guard) {
    if (hdr.rfind("Udp:", 0) != 0) continue;
    if (!std::getline(f, val)) break;
    std::istringstream hs(hdr), vs(val);
    std::string h, v;
    hs >> h;
    vs >> v;
    for (int g = 0; g < 32 && (hs >> h) && (vs >> v); ++g) {
      long long x = std::atoll(v.c_str());
      if (h == "InDatagrams") u.in = x;
      else if (h == "OutDatagrams") u.out = x;
      else if (h == "InErrors") u.inerr = x;
      else if (h == "RcvbufErrors") u.rcvbuf = x;
    }
    break;
  }
  return u;
}

std::function<DropCounters()> g_drops;
Tx tx_now() {
  long long rl = g_drops ? static_cast<long long>(g_drops().get(DropReason::kRateLimited)) : 0;
  return Tx{g_tx_dgrams.load(), g_tx_bytes.load(), read_udp().rcvbuf, rl};
}

json summary_json(std::vector<double> v) {
  json j;
  j["n"] = v.size();
  if (v.empty()) {
    for (const char* k : {"median", "p90", "p99", "max", "mean", "min"}) j[k] = 0.0;
    return j;
  }
  std::sort(v.begin(), v.end());
  j["median"] = percentile(v, 0.50);
  j["p90"] = percentile(v, 0.90);
  j["p99"] = percentile(v, 0.99);
  j["max"] = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  j["mean"] = sum / v.size();
  j["min"] = v.front();
  return j;
}

Bytes make_payload(std::mt19937_64& rng, size_t len) {
  Bytes b(len);
  for (size_t i = 0; i < len; i += 8) {
    uint64_t x = rng();
    std::memcpy(b.data() + i, &x, std::min<size_t>(8, len - i));
  }
  return b;
}

bool stored_locally(Bench& b, int node, const NodeId& key) {
  return b.driver->call(*b.nodes[node], [&] { return b.stores[node]->get(key).has_value(); });
}

PutGetResult run_puts(Bench& b, std::vector<KeyRec>& keys, std::mt19937_64& rng, const char* name) {
  PutGetResult r;
  const int N = static_cast<int>(b.nodes.size());
  r.tx_before = tx_now();
  double c0 = cpu_seconds();
  TP w0 = Clock::now();
  std::uniform_int_distribution<int> pick(0, N - 1);
  for (size_t i = 0; i < keys.size(); ++i) {
    auto& k = keys[i];
    k.putter = pick(rng);
    auto st = std::make_shared<OpState>();
    Node* n = b.nodes[k.putter];
    TP t0 = Clock::now();
    b.driver->post(*n, [n, st, &k] { n->dht().put(k.key, k.data, [st](const PutResult& pr) { st->finish(pr.ok); }); });
    r.attempted++;
    std::unique_lock<std::mutex> l(st->m);
    st->cv.wait_until(l, t0 + secs(b.a.op_timeout), [&] { return st->done; });
    if (!st->done) r.timeouts++;
    else if (st->ok) {
      r.ok++;
      k.put_ok = true;
      r.lat_ms.push_back(ms_since(t0, st->t_done));
    }
    if ((i + 1) % 50 == 0) progress("  %s %zu/%zu\n", name, i + 1, keys.size());
  }
  r.wall_s = sec_since(w0, Clock::now());
  r.cpu_s = cpu_seconds() - c0;
  r.tx_after = tx_now();
  // replication achieved, untimed: nodes whose own store holds the key (the putter's copy included)
  b.driver->call([&] {
    for (auto& k : keys) {
      long holders = 0;
      for (auto* s : b.stores) holders += s->get(k.hkey).has_value();
      r.replicas.push_back(static_cast<double>(holders));
    }
  });
  return r;
}

PutGetResult run_gets(Bench& b, const std::vector<KeyRec>& keys, std::mt19937_64& rng, const char* name) {
  PutGetResult r;
  const int N = static_cast<int>(b.nodes.size());
  r.tx_before = tx_now();
  double c0 = cpu_seconds();
  TP w0 = Clock::now();
  std::uniform_int_distribution<int> pick(0, N - 2);
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto& k = keys[i];
    int g = pick(rng);  // uniform over all nodes except the putter
    if (g >= k.putter) g++;
    bool local = stored_locally(b, g, k.hkey);  // checked before the clock starts
    if (local) r.local_hits++;
    auto st = std::make_shared<OpState>();
    Node* n = b.nodes[g];
    TP t0 = Clock::now();
    b.driver->post(*n, [n, st, &k] {
      n->dht().get(k.key, [st, &k](GetResult gr) {
        TP now = Clock::now();
        {
          std::lock_guard<std::mutex> l(st->m);
          st->rpcs = gr.lookup.rpcs;
          st->rounds = gr.lookup.rounds;
        }
        if (gr.value && *gr.value == k.data) st->mark_found(now);
        st->finish(gr.value.has_value());
      });
    });
    r.attempted++;
    std::unique_lock<std::mutex> l(st->m);
    st->cv.wait_until(l, t0 + secs(b.a.op_timeout), [&] { return st->found || st->done; });
    if (st->found) {
      r.ok++;
      r.lat_ms.push_back(ms_since(t0, st->t_found));
      if (!local) r.remote_ms.push_back(ms_since(t0, st->t_found));
    } else if (!st->done) {
      r.timeouts++;
    } else {
      r.notfound_ms.push_back(ms_since(t0, st->t_done));
      if (b.a.trace) {
        // where is the value, relative to the true k closest node ids?
        size_t kk = b.driver->call([&] { return b.nodes[g]->dht().config().k; });
        std::vector<std::pair<NodeId, int>> order;
        for (int i = 0; i < N; ++i) order.emplace_back(b.nodes[i]->dht().id() ^ k.hkey, i);
        std::sort(order.begin(), order.end());
        int holders = 0, holders_in_top = 0;
        b.driver->call([&] {
          for (int i = 0; i < N; ++i) {
            bool h = b.stores[order[i].second]->get(k.hkey).has_value();
            holders += h;
            if (h && static_cast<size_t>(i) < kk) holders_in_top++;
          }
        });
        // replay the lookup synchronously over the nodes' current routing tables (what find_value answers)
        int sim_rpcs = 0, sim_hit = -1;
        b.driver->call([&] {
          std::map<NodeId, std::pair<int, bool>> sl;  // distance -> (node, queried)
          std::unordered_map<NodeId, int> idx;
          for (int i = 0; i < N; ++i) idx[b.nodes[i]->dht().id()] = i;
          auto add = [&](const std::vector<Contact>& cs) {
            for (auto& c : cs) {
              auto it = idx.find(c.id);
              if (it == idx.end() || it->second == g) continue;
              sl.emplace(c.id ^ k.hkey, std::make_pair(it->second, false));
            }
          };
          add(b.nodes[g]->dht().closest_known(k.hkey, kk));
          for (int guard = 0; guard < 1000 && sim_hit < 0; ++guard) {
            int pick_node = -1;
            size_t considered = 0;
            for (auto& [d, e] : sl) {
              if (considered++ >= kk) break;
              if (!e.second) { e.second = true; pick_node = e.first; break; }
            }
            if (pick_node < 0) break;
            ++sim_rpcs;
            if (b.stores[pick_node]->get(k.hkey)) { sim_hit = pick_node; break; }
            auto resp = b.nodes[pick_node]->dht().closest_known(k.hkey, kk + 1);
            if (b.a.trace)
              std::fprintf(stderr, "TRACE   replay q%d node %d cpl %d -> %zu contacts, best cpl %d; true best cpl %d\n",
                           sim_rpcs, pick_node, b.nodes[pick_node]->dht().id().common_prefix_bits(k.hkey), resp.size(),
                           resp.empty() ? -1 : resp[0].id.common_prefix_bits(k.hkey),
                           b.nodes[order[0].second]->dht().id().common_prefix_bits(k.hkey));
            add(resp);
          }
        });
        // closest_known() against a brute-force sort of each node's peers()
        int wrong = 0;
        b.driver->call([&] {
          for (int i = 0; i < N; ++i) {
            auto ck = b.nodes[i]->dht().closest_known(k.hkey, kk);
            auto all = b.nodes[i]->dht().peers();
            std::sort(all.begin(), all.end(),
                      [&](const Contact& x, const Contact& y) { return (x.id ^ k.hkey) < (y.id ^ k.hkey); });
            if (all.size() > kk) all.resize(kk);
            bool same = ck.size() == all.size();
            for (size_t q = 0; same && q < ck.size(); ++q) same = ck[q].id == all[q].id;
            wrong += !same;
          }
        });
        std::fprintf(stderr, "TRACE closest_known differs from brute force on %d nodes\n", wrong);
        std::fprintf(stderr,
                     "TRACE get %s miss: getter %d putter %d rpcs %d rounds %d holders %d "
                     "(%d in the true %zu closest); replay: %s after %d queries\n",
                     name, g, k.putter, st->rpcs, st->rounds, holders, holders_in_top, kk,
                     sim_hit >= 0 ? "found" : "miss", sim_rpcs);
      }
    }
    if ((i + 1) % 50 == 0) progress("  %s %zu/%zu\n", name, i + 1, keys.size());
  }
  r.wall_s = sec_since(w0, Clock::now());
  r.cpu_s = cpu_seconds() - c0;
  r.tx_after = tx_now();
  return r;
}

// ---------------------------------------------------------------- burst (closed loop, C in flight)
namespace {
struct BurstShared {
  std::mutex m;
  std::condition_variable cv;
  int inflight = 0;
  size_t completed = 0, ok = 0;
  std::vector<double> lat_ms;
};
struct BurstOp {
  std::atomic<bool> closed{false};
  TP t0;
};
void burst_close(const std::shared_ptr<BurstShared>& sh, const std::shared_ptr<BurstOp>& op, bool ok) {
  if (op->closed.exchange(true)) return;
  TP now = Clock::now();
  std::lock_guard<std::mutex> l(sh->m);
  sh->inflight--;
  sh->completed++;
  if (ok) {
    sh->ok++;
    sh->lat_ms.push_back(ms_since(op->t0, now));
  }
  sh->cv.notify_all();
}

}  // namespace

BurstResult run_burst(Bench& b, std::vector<KeyRec>& keys, std::mt19937_64& rng, bool is_get) {
  BurstResult r;
  const int N = static_cast<int>(b.nodes.size());
  r.concurrency = b.a.burst;
  r.tx_before = tx_now();
  double c0 = cpu_seconds();
  TP w0 = Clock::now();
  auto sh = std::make_shared<BurstShared>();
  std::uniform_int_distribution<int> pick(0, N - 1);
  std::uniform_int_distribution<int> pick_other(0, N - 2);
  const auto op_to = secs(b.a.op_timeout);
  const TP deadline = w0 + op_to * (1 + static_cast<long>(keys.size()) / std::max(1, b.a.burst) + 1);
  for (size_t i = 0; i < keys.size() && Clock::now() < deadline; ++i) {
    {
      std::unique_lock<std::mutex> l(sh->m);
      if (!sh->cv.wait_until(l, deadline, [&] { return sh->inflight < b.a.burst; })) break;
      sh->inflight++;
    }
    auto op = std::make_shared<BurstOp>();
    auto& k = keys[i];
    int node;
    if (!is_get) {
      node = k.putter = pick(rng);
    } else {
      node = pick_other(rng);
      if (node >= k.putter) node++;
    }
    Node* n = b.nodes[node];
    op->t0 = Clock::now();
    r.attempted++;
    if (!is_get) {
      b.driver->post(*n, [n, sh, op, &k] {
        n->dht().put(k.key, k.data, [sh, op](const PutResult& pr) { burst_close(sh, op, pr.ok); });
      });
    } else {
      b.driver->post(*n, [n, sh, op, &k] {
        n->dht().get(k.key, [sh, op, &k](GetResult gr) { burst_close(sh, op, gr.value && *gr.value == k.data); });
      });
    }
  }
  {
    std::unique_lock<std::mutex> l(sh->m);
    sh->cv.wait_until(l, std::min(deadline, Clock::now() + op_to), [&] { return sh->completed >= r.attempted; });
    r.ok = sh->ok;
    r.timeouts = r.attempted - sh->completed;
    r.lat_ms = sh->lat_ms;
    r.wall_s = sec_since(w0, Clock::now());
  }
  r.cpu_s = cpu_seconds() - c0;
  r.tx_after = tx_now();
  return r;
}

// ---------------------------------------------------------------- routing-table snapshot
RtSnap snapshot(Bench& b) {
  return b.driver->call([&] {
    RtSnap s;
    for (auto* n : b.nodes) {
      // Our table holds only live contacts. A count, not a copy of each table: the sample runs with every io
      // thread paused, four times a second through the settle.
      unsigned good = static_cast<unsigned>(n->dht().peer_count());
      if (good >= 1) s.connected++;
      s.sum_good += good;
      s.min_good = std::min(s.min_good, good);
      s.max_good = std::max(s.max_good, good);
    }
    return s;
  });
}

Identity node_identity(uint64_t seed, int i) {
  std::string s = "bench-node-" + std::to_string(seed) + "-" + std::to_string(i);
  uint8_t h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const uint8_t*>(s.data()), s.size(), nullptr, 0);
  return Identity::from_seed(ByteView(h, sizeof h));
}

}  // namespace storjnet::bench::dht_ops
