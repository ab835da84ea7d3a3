// api-burst: N real nodes in this process, each behind its JSON-RPC API (ApiServer on 127.0.0.1). P dht_put
// are sent at once to node 0 (one JSON-RPC batch, or C concurrent clients), then every value is read back
// through the other nodes' APIs. Reports how many puts answered true, how many gets were right, the time of
// each phase, the datagrams the kernel dropped on the nodes' sockets (/proc/net/udp, this run only) and the
// calls answered "busy" (-32002, the API's admission gate; docs/api.md).
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <atomic>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "api/http_client.h"
#include "api/http_server.h"
#include "api/json_rpc.h"
#include "bench_util.h"
#include "storjnet/real_driver.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {
using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;
using api::json;

// Sum of the "drops" column of /proc/net/udp and /proc/net/udp6 over the sockets bound to `ports`.
uint64_t kernel_drops(const std::set<uint16_t>& ports) {
  uint64_t total = 0;
  for (const char* path : {"/proc/net/udp", "/proc/net/udp6"}) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream s(line);
      std::string sl, local, field, last;
      s >> sl >> local;
      auto colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      auto port = static_cast<uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
      while (s >> field) last = field;
      if (ports.count(port) && !last.empty()) total += std::stoull(last);
    }
  }
  return total;
}

struct Args {
  int nodes = 50;
  int puts = 1000;
  std::string mode = "batch";
  int clients = 32;
  uint64_t seed = 1;
  double settle_s = 20;
  bool neighbourhood_reuse = true;  // DhtConfig::neighbourhood_reuse
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
};

json rpc(const std::string& method, json params, size_t id) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
}

void run(const Args& a) {
  RealDriver::Options dopts;
  dopts.threads = static_cast<unsigned>(std::min(a.threads, a.nodes));  // nodes round-robin over the io threads
  RealDriver driver(dopts);
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  std::vector<Node*> nodes;
  std::set<uint16_t> ports;
  NodeConfig ncfg;
  ncfg.dht.neighbourhood_reuse = a.neighbourhood_reuse;
  for (int i = 0; i < a.nodes; ++i) {
    nodes.push_back(&driver.add_node(lo, Identity::generate(), ncfg));
    ports.insert(driver.local_endpoint(*nodes.back()).port);
  }
  // Every node behind its own API, the HTTP side on one thread.
  asio::io_context http_io;
  std::vector<api::NodeRunner> runners;
  std::vector<std::unique_ptr<api::Dispatcher>> dispatchers;
  std::vector<std::unique_ptr<api::ApiServer>> servers;
  api::ServerOptions so;
  so.request_timeout = std::chrono::seconds(600);
  so.body_limit = 64u << 20;
  so.max_connections_per_client = std::max(32, a.clients + 4);
  so.max_connections = std::max<size_t>(256, a.clients + 8);
  for (auto* n : nodes) {
    runners.push_back([&driver, n](std::function<void(Node&)> fn) { driver.post(*n, [n, fn = std::move(fn)] { fn(*n); }); });
    api::Limits limits;
    limits.max_batch = std::max<size_t>(limits.max_batch, a.puts);
    dispatchers.push_back(std::make_unique<api::Dispatcher>(runners.back(), limits));
    servers.push_back(std::make_unique<api::ApiServer>(http_io, so, *dispatchers.back(), runners.back()));
    servers.back()->start();
  }
  auto work = asio::make_work_guard(http_io);
  std::thread http_thread([&] { http_io.run(); });

  // Join: every node bootstraps from node 0; then wait until the tables stop growing (at most settle_s).
  auto ep0 = driver.local_endpoint(*nodes[0]);
  std::promise<void> joined;
  auto pending = std::make_shared<std::atomic<int>>(a.nodes - 1);
  if (a.nodes == 1) joined.set_value();
  driver.post([&] {
    for (size_t i = 1; i < nodes.size(); ++i)
      nodes[i]->dht().bootstrap({ep0}, [&joined, pending](bool) {
        if (--*pending == 0) joined.set_value();
      });
  });
  joined.get_future().wait();
  auto t_settle = Clock::now();
  size_t last = 0;
  int stable = 0;
  while (seconds_since(t_settle) < a.settle_s && stable < 10) {
    size_t sum = driver.call([&] {
      size_t s = 0;
      for (auto* n : nodes) s += n->dht().peer_count();
      return s;
    });
    stable = sum == last ? stable + 1 : 0;
    last = sum;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // sampling, not synchronisation
  }
  std::fprintf(stderr, "api-burst: %d nodes joined, %zu contacts in all, settled in %.1fs\n", a.nodes, last,
               seconds_since(t_settle));

  std::vector<std::string> keys, values;
  for (int i = 0; i < a.puts; ++i) {
    keys.push_back("api-burst-" + std::to_string(a.seed) + "-" + std::to_string(i));
    values.push_back("value " + std::to_string(i) + " of run " + std::to_string(a.seed));
  }
  std::vector<int> put_result(a.puts, 0);  // 1 true, 2 busy, 3 other error or false
  uint64_t drops0 = kernel_drops(ports);
  auto classify = [](const json& r) {
    if (r.contains("result") && r["result"] == true) return 1;
    if (r.contains("error") && r["error"].value("code", 0) == -32002) return 2;
    return 3;
  };
  auto t_put = Clock::now();
  uint16_t port0 = servers[0]->port();
  if (a.mode == "batch") {
    json batch = json::array();
    for (int i = 0; i < a.puts; ++i) batch.push_back(rpc("dht_put", {keys[i], values[i]}, i));
    api::HttpClient client("127.0.0.1", port0, {}, std::chrono::seconds(600));
    auto res = client.post("/", batch.dump());
    auto out = json::parse(res.body, nullptr, false);
    if (out.is_array())
      for (auto& r : out)
        if (r.contains("id") && r["id"].is_number_unsigned() && r["id"].get<size_t>() < put_result.size())
          put_result[r["id"].get<size_t>()] = classify(r);
  } else {
    std::vector<std::thread> clients;
    for (int c = 0; c < a.clients; ++c)
      clients.emplace_back([&, c] {
        api::HttpClient client("127.0.0.1", port0, {}, std::chrono::seconds(600));
        for (int i = c; i < a.puts; i += a.clients) {
          try {
            auto res = client.post("/", rpc("dht_put", {keys[i], values[i]}, i).dump());
            put_result[i] = classify(json::parse(res.body, nullptr, false));
          } catch (const std::exception&) {
            put_result[i] = 3;
          }
        }
      });
    for (auto& t : clients) t.join();
  }
  double put_s = seconds_since(t_put);

  // Read back every value through the other nodes: one batch per node, all nodes at once.
  auto t_get = Clock::now();
  int others = std::max(1, a.nodes - 1);
  std::vector<int> get_right(a.puts, 0);
  std::vector<std::thread> readers;
  for (int k = 0; k < others; ++k)
    readers.emplace_back([&, k] {
      size_t node = a.nodes == 1 ? 0 : 1 + k;
      json batch = json::array();
      for (int i = k; i < a.puts; i += others) batch.push_back(rpc("dht_get", {keys[i]}, i));
      if (batch.empty()) return;
      try {
        api::HttpClient client("127.0.0.1", servers[node]->port(), {}, std::chrono::seconds(600));
        auto out = json::parse(client.post("/", batch.dump()).body, nullptr, false);
        if (!out.is_array()) return;
        for (auto& r : out) {
          if (!r.contains("id") || !r["id"].is_number_unsigned()) continue;
          size_t i = r["id"].get<size_t>();
          if (i < get_right.size() && r.contains("result") && r["result"] == values[i]) get_right[i] = 1;
        }
      } catch (const std::exception&) {
      }
    });
  for (auto& t : readers) t.join();
  double get_s = seconds_since(t_get);
  uint64_t drops = kernel_drops(ports) - drops0;
  UdpStats udp;  // the driver's own view, summed over the nodes
  driver.call([&] {
    for (auto* n : nodes) {
      auto u = driver.udp_stats(*n);
      udp.send_deferred += u.send_deferred;
      udp.send_queue_drops += u.send_queue_drops;
      udp.rcvbuf = u.rcvbuf;
      udp.sndbuf = u.sndbuf;
    }
  });

  const auto dht0 = driver.call([&] { return nodes[0]->dht().stats(); });
  int puts_true = 0, busy = 0, failed = 0, gets_right = 0, gets_of_true = 0;
  for (int i = 0; i < a.puts; ++i) {
    puts_true += put_result[i] == 1;
    busy += put_result[i] == 2;
    failed += put_result[i] == 3 || put_result[i] == 0;
    if (put_result[i] == 1) gets_of_true += 1, gets_right += get_right[i];
  }
  std::fprintf(stderr, "api-burst: %d/%d puts true (%d busy, %d false or failed) in %.2fs; %d/%d gets right in %.2fs; "
               "kernel drops %llu\n", puts_true, a.puts, busy, failed, put_s, gets_right, gets_of_true, get_s,
               static_cast<unsigned long long>(drops));

  asio::post(http_io, [&] {
    for (auto& s : servers) s->stop();
    http_io.stop();
  });
  http_thread.join();
  driver.stop();

  print_result({{"workload", "api-burst"},
                {"nodes", a.nodes},
                {"threads", driver.threads()},
                {"mode", a.mode},
                {"clients", a.mode == "clients" ? json(a.clients) : json(nullptr)},
                {"seed", a.seed},
                {"puts", a.puts},
                {"puts_true", a.puts ? static_cast<double>(puts_true) / a.puts : 0.0},
                {"api_burst_put_ok", a.puts ? static_cast<double>(puts_true) / a.puts : 0.0},
                {"gets_right", gets_of_true ? static_cast<double>(gets_right) / gets_of_true : 0.0},
                {"put_s", put_s},
                {"neighbourhood_reuse", a.neighbourhood_reuse},
                {"lookups", dht0.lookups},
                {"neighbourhoods_reused", dht0.neighbourhoods_reused},
                {"get_s", get_s},
                {"kernel_drops", drops},
                {"busy_errors", busy},
                {"send_deferred", udp.send_deferred},
                {"send_queue_drops", udp.send_queue_drops},
                {"rcvbuf", udp.rcvbuf},
                {"sndbuf", udp.sndbuf},
                {"put_failures", failed}});
}
}  // namespace

static void add_api_burst(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("api-burst", "N real nodes with their JSON-RPC API: P dht_put at once through node 0, "
                                              "then every value read back through the others");
  cmd->add_option("--nodes", a->nodes, "nodes")->check(CLI::Range(1, 2000));
  cmd->add_option("--puts", a->puts, "dht_put calls sent at once")->check(CLI::Range(1, 100000));
  cmd->add_option("--mode", a->mode, "batch: one JSON-RPC batch; clients: concurrent HTTP clients")
      ->check(CLI::IsMember({"batch", "clients"}));
  cmd->add_option("--clients", a->clients, "concurrent clients in clients mode")->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", a->seed, "names the keys and values of this run");
  cmd->add_option("--threads", a->threads, "io threads the nodes are spread over (default: one per core)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--neighbourhood-reuse", a->neighbourhood_reuse,
                  "puts store on the neighbourhoods recent puts found whole (DhtConfig::neighbourhood_reuse)")
      ->capture_default_str();
  cmd->add_option("--settle", a->settle_s, "at most this many seconds for the tables to stop growing after the join");
  cmd->callback([a] { run(*a); });
}
STORJNET_WORKLOAD(add_api_burst);

}  // namespace storjnet::bench
