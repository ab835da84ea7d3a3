// storjnetd: runs one storjnet node, or N nodes in one process (--nodes N) for a local network, each with
// its JSON-RPC user API over HTTP (docs/api.md).
//
// Exit codes: 0 after a clean stop (SIGINT/SIGTERM), 2 for bad flags or an unusable port or data dir
// (nothing is started then), 1 for an unexpected failure.
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <unistd.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <thread>

#include "api/auth.h"
#include "api/file_transfers.h"
#include "api/http_server.h"
#include "api/json_rpc.h"
#include "api/status_board.h"
#include "real/port_mapping.h"
#include "storjnet/dht_storage.h"
#include "storjnet/real_driver.h"
#include "storjnet/version.h"
#include "wire/datagram.h"

namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace storjnet;

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  int nodes = 1;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int port = 4000;
  int api_port = 5000;
  std::string host = "0.0.0.0";
  std::string host6;  // also an IPv6 socket (a dual-stack node); empty: none
  std::string api_host = "127.0.0.1";
  std::string data_dir = "storjnet-data";
  std::vector<std::string> bootstrap;
  std::string network_id;
  std::string log_level = "info";
  std::string api_token;
  std::string api_token_file;
  std::string api_cookie_perms = "owner";
  bool api_public_metrics = false;
  std::vector<std::string> api_allow_hosts;
  size_t api_body_limit = 1024 * 1024;
  bool no_port_mapping = false;
  int port_mapping_lease = 3600;
};

// The port mapper (src/real/port_mapping.h) runs for nodes bound to IPv4 addresses a router may forward to:
// all addresses or a private one, and at most this many nodes per process (a local test network needs none).
constexpr int kMaxMappedNodes = 16;
// Before joining, a node waits this long for its first mapping attempt, so that the peers it meets find it
// reachable at once (its dial-back self-check runs once it has contacts, and its peers ask its verdict).
constexpr auto kMappingWait = std::chrono::milliseconds(4000);

// The API token: --api-token, else --api-token-file, else STORJNET_API_TOKEN; empty when none was given
// (the daemon then writes a random one to DATA_DIR/.cookie).
std::string given_token(const Options& o) {
  if (!o.api_token.empty() && !o.api_token_file.empty()) throw UsageError("give --api-token or --api-token-file, not both");
  if (!o.api_token.empty()) return o.api_token;
  if (!o.api_token_file.empty()) {
    auto t = api::read_token_file(o.api_token_file);
    if (!t) throw UsageError("--api-token-file " + o.api_token_file + ": cannot read a token from it");
    return *t;
  }
  const char* env = std::getenv("STORJNET_API_TOKEN");
  return env ? std::string(env) : std::string();
}

std::mutex out_mu;
void say(const std::string& line) {
  std::lock_guard lock(out_mu);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

bool is_loopback_host(const std::string& host) {
  auto ep = Endpoint::from_ip(host, 1);
  return ep && ep->is_loopback();
}

// host:port, by address or by name.
Endpoint resolve_seed(const std::string& s) {
  if (auto ep = Endpoint::parse(s); ep && ep->valid()) return *ep;
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) throw UsageError("--bootstrap \"" + s + "\": expected host:port");
  std::string host = s.substr(0, colon), port = s.substr(colon + 1);
  asio::io_context io;
  boost::system::error_code ec;
  asio::ip::udp::resolver r(io);
  auto results = r.resolve(asio::ip::udp::v4(), host, port, ec);
  if (ec || results.empty()) throw UsageError("--bootstrap \"" + s + "\": cannot resolve: " + ec.message());
  auto ep = Endpoint::from_ip(results.begin()->endpoint().address().to_string(), results.begin()->endpoint().port());
  if (!ep || !ep->valid()) throw UsageError("--bootstrap \"" + s + "\": bad address");
  return *ep;
}

uint32_t parse_network_id(const std::string& s) {
  try {
    size_t used = 0;
    unsigned long long v = std::stoull(s, &used, 0);
    if (used != s.size() || v > 0xffffffffull) throw std::out_of_range("");
    return static_cast<uint32_t>(v);
  } catch (const std::exception&) {
    throw UsageError("--network-id \"" + s + "\": expected a 32-bit number (decimal or 0x hex)");
  }
}

// An exclusive lock on the node's data directory, held while the process runs.
int lock_dir(const fs::path& dir) {
  auto path = dir / "lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw UsageError("data dir " + dir.string() + " is not writable: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw UsageError("data dir " + dir.string() + " is in use by another storjnetd");
  }
  return fd;
}

struct NodeSlot {
  fs::path dir;
  int lock_fd = -1;
  std::optional<Identity> identity;
  std::unique_ptr<DhtStorage> storage;
  Node* node = nullptr;
  Endpoint udp;
  std::unique_ptr<api::FileTransfers> files;  // file_send / file_receive (touched on the driver thread)
  std::unique_ptr<api::Dispatcher> dispatcher;
  std::unique_ptr<api::ApiServer> server;
  uint16_t api_port = 0;
  std::unique_ptr<real::PortMapper> mapper;  // null: no port mapping (why: mapping_off)
  std::string mapping_off;
  std::atomic<bool> announced{false};

  NodeSlot() = default;
  NodeSlot(const NodeSlot&) = delete;
  NodeSlot& operator=(const NodeSlot&) = delete;
  ~NodeSlot() {
    if (lock_fd >= 0) ::close(lock_fd);
  }
};

// The status page's "udp" object (docs/api.md, GET /api/status).
api::json udp_stats_json(const UdpStats& u) {
  return {{"kernel_drops", u.kernel_drops}, {"send_queued", u.send_queued},       {"send_deferred", u.send_deferred},
          {"send_queue_drops", u.send_queue_drops}, {"rcvbuf", u.rcvbuf}, {"sndbuf", u.sndbuf}};
}

// Whether a local interface has a public IPv4 address (the host is on the internet itself: nothing to map).
bool has_public_ipv4() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return false;
  bool found = false;
  for (auto* a = list; a && !found; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    Endpoint e;
    e.family = Endpoint::Family::kV4;
    std::memcpy(e.addr.data(), &sin->sin_addr, 4);
    found = !e.is_private_or_loopback() && !e.is_unspecified();
  }
  ::freeifaddrs(list);
  return found;
}

// The status page's "port_mapping" object (docs/api.md, GET /api/status).
api::json port_mapping_json(const NodeSlot& s) {
  if (!s.mapper) return {{"enabled", false}, {"state", "off"}, {"reason", s.mapping_off}};
  auto m = s.mapper->status();
  auto opt = [](const std::string& v) { return v.empty() ? api::json(nullptr) : api::json(v); };
  return {{"enabled", true},          {"state", m.state},
          {"protocol", opt(m.protocol)}, {"external", opt(m.external)},
          {"internal_port", m.internal_port}, {"lease_s", m.lease_s},
          {"expires_in_s", m.expires_in_s < 0 ? api::json(nullptr) : api::json(m.expires_in_s)},
          {"mapped_after_s", m.mapped_after_s < 0 ? api::json(nullptr) : api::json(m.mapped_after_s)},
          {"attempts", m.attempts}, {"renewals", m.renewals},
          {"failures", m.failures},  {"last_error", opt(m.last_error)}};
}

// GET /metrics's port mapping families (docs/api.md).
std::string port_mapping_metrics(const NodeSlot& s) {
  if (!s.mapper) return {};
  auto m = s.mapper->status();
  std::string out;
  auto fam = [&](const char* name, const char* type, const char* help, double v) {
    char num[64];
    std::snprintf(num, sizeof num, "%.17g", v);
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + num + "\n";
  };
  fam("storjnet_port_mapping_mapped", "gauge", "1 while the router forwards the node's UDP port (UPnP IGD or NAT-PMP).",
      m.state == "mapped" ? 1 : 0);
  fam("storjnet_port_mapping_expires_in_seconds", "gauge", "Seconds left on the mapping's lease (-1: none or permanent).",
      static_cast<double>(m.expires_in_s));
  fam("storjnet_port_mapping_attempts_total", "counter", "Mapping requests (first mappings and renewals).",
      static_cast<double>(m.attempts));
  fam("storjnet_port_mapping_renewals_total", "counter", "Mappings renewed.", static_cast<double>(m.renewals));
  fam("storjnet_port_mapping_failures_total", "counter", "Mapping requests that failed.", static_cast<double>(m.failures));
  return out;
}

int run(const Options& o) {
  // --- validate everything before starting anything ---
  if (o.nodes < 1 || o.nodes > 4096) throw UsageError("--nodes must be between 1 and 4096");
  if (o.threads < 1 || o.threads > 1024) throw UsageError("--threads must be between 1 and 1024");
  if (o.port_mapping_lease < 20 || o.port_mapping_lease > 86400)
    throw UsageError("--port-mapping-lease must be between 20 and 86400 seconds");
  auto check_ports = [&](int base, const char* flag) {
    if (base < 0 || base > 65535) throw UsageError(std::string(flag) + " must be between 0 and 65535");
    if (base != 0 && base + o.nodes - 1 > 65535)
      throw UsageError(std::string(flag) + " " + std::to_string(base) + " with --nodes " + std::to_string(o.nodes) +
                       " runs past port 65535");
  };
  check_ports(o.port, "--port");
  check_ports(o.api_port, "--api-port");
  auto udp_host = Endpoint::from_ip(o.host, 1);
  if (!udp_host) throw UsageError("--host \"" + o.host + "\": not an IP address");
  if (!o.host6.empty()) {
    auto h6 = Endpoint::from_ip(o.host6, 1);
    if (!h6 || h6->family != Endpoint::Family::kV6) throw UsageError("--host6 \"" + o.host6 + "\": not an IPv6 address");
    if (udp_host->family != Endpoint::Family::kV4) throw UsageError("--host6 needs an IPv4 --host");
  }
  if (!Endpoint::from_ip(o.api_host, 1)) throw UsageError("--api-host \"" + o.api_host + "\": not an IP address");
  std::string token = given_token(o);
  if (o.api_cookie_perms != "owner" && o.api_cookie_perms != "group")
    throw UsageError("--api-cookie-perms \"" + o.api_cookie_perms + "\": expected owner or group");
  if (!is_loopback_host(o.api_host) && token.empty())
    throw UsageError("binding the API to " + o.api_host +
                     " (not loopback) requires --api-token, --api-token-file or STORJNET_API_TOKEN");
  NodeConfig config;
  if (!o.network_id.empty()) config.engine.network_id = parse_network_id(o.network_id);
  auto level = spdlog::level::from_str(o.log_level);
  if (level == spdlog::level::off && o.log_level != "off")
    throw UsageError("--log-level \"" + o.log_level + "\": expected trace, debug, info, warn, error, critical or off");
  spdlog::set_level(level);
  std::vector<Endpoint> seeds;
  for (auto& s : o.bootstrap) seeds.push_back(resolve_seed(s));

  // Declared in this order so that the driver (and with it every pending node callback) goes first, then
  // the servers, then the io_context they use.
  asio::io_context http_io;
  std::vector<std::unique_ptr<NodeSlot>> slots;
  api::StatusBoard board(kVersionString, wire::kVersion);  // the status page's view of the nodes (GET /ui)
  std::unique_ptr<RealDriver> driver;

  // --- data dirs: lock, identity, store ---
  for (int i = 0; i < o.nodes; ++i) {
    auto slot = std::make_unique<NodeSlot>();
    slot->dir = fs::path(o.data_dir) / ("node-" + std::to_string(i));
    std::error_code ec;
    fs::create_directories(slot->dir, ec);
    if (ec) throw UsageError("cannot create data dir " + slot->dir.string() + ": " + ec.message());
    slot->lock_fd = lock_dir(slot->dir);
    try {
      slot->identity = Identity::load_or_create(slot->dir);
      slot->storage = make_sqlite_storage(slot->dir / "dht.sqlite");
    } catch (const std::exception& e) {
      throw UsageError(std::string("data dir ") + slot->dir.string() + ": " + e.what());
    }
    slots.push_back(std::move(slot));
  }
  // --- the API token: given, or a fresh random one in the cookie file (removed on a clean stop) ---
  fs::path cookie;
  if (token.empty()) {
    token = api::random_token();
    cookie = fs::path(o.data_dir) / api::kCookieName;
    try {
      api::write_cookie(cookie, token, o.api_cookie_perms == "group");
    } catch (const std::exception& e) {
      throw UsageError(e.what());
    }
  }

  // --- sockets: every API port, then every UDP port ---
  // Each node lives on one io thread (round-robin); more threads than nodes would idle.
  RealDriver::Options driver_options;
  driver_options.threads = static_cast<unsigned>(std::min(o.threads, o.nodes));
  driver = std::make_unique<RealDriver>(driver_options);
  RealDriver* drv = driver.get();
  for (int i = 0; i < o.nodes; ++i) {
    auto& s = *slots[i];
    Node** node_ptr = &s.node;
    api::NodeRunner run = [drv, node_ptr](std::function<void(Node&)> fn) {
      drv->post(**node_ptr, [node_ptr, fn = std::move(fn)] { fn(**node_ptr); });
    };
    s.files = std::make_unique<api::FileTransfers>();
    s.dispatcher = std::make_unique<api::Dispatcher>(run, api::Limits{}, s.files.get());
    api::ServerOptions so;
    so.host = o.api_host;
    so.port = static_cast<uint16_t>(o.api_port == 0 ? 0 : o.api_port + i);
    so.token = token;
    so.public_metrics = o.api_public_metrics;
    so.allowed_hosts = o.api_allow_hosts;
    so.body_limit = o.api_body_limit;
    try {
      s.server = std::make_unique<api::ApiServer>(http_io, so, *s.dispatcher, run);
      s.api_port = s.server->port();
    } catch (const std::exception& e) {
      throw UsageError(std::string("node ") + std::to_string(i) + ": " + e.what());
    }
  }
  std::vector<RealDriver::NodeSpec> specs;
  for (int i = 0; i < o.nodes; ++i) {
    auto& s = *slots[i];
    auto bind = *Endpoint::from_ip(o.host, static_cast<uint16_t>(o.port == 0 ? 0 : o.port + i));
    std::vector<Endpoint> binds{bind};
    if (!o.host6.empty()) binds.push_back(*Endpoint::from_ip(o.host6, bind.port));  // port 0: the IPv4 one's
    specs.push_back({std::move(binds), std::move(*s.identity), config, std::move(s.storage)});
  }
  std::vector<Node*> made;
  try {
    made = driver->add_nodes(std::move(specs));  // every io thread makes its share at once
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }
  for (int i = 0; i < o.nodes; ++i) {
    slots[i]->node = made[i];
    slots[i]->udp = driver->local_endpoint(*made[i]);
  }

  // --- port mapping (UPnP IGD, else NAT-PMP), each node's own UDP port; first attempts before joining ---
  for (auto& s : slots) {
    if (o.no_port_mapping) s->mapping_off = "--no-port-mapping";
    else if (s->udp.family != Endpoint::Family::kV4) s->mapping_off = "not IPv4";
    else if (s->udp.is_loopback()) s->mapping_off = "bound to loopback";
    else if (!s->udp.is_unspecified() && !s->udp.is_private_or_loopback()) s->mapping_off = "bound to a public address";
    else if (o.nodes > kMaxMappedNodes) s->mapping_off = "more than " + std::to_string(kMaxMappedNodes) + " nodes";
    else if (s->udp.is_unspecified() && has_public_ipv4()) s->mapping_off = "the host has a public address";
    if (!s->mapping_off.empty()) continue;
    real::PortMappingOptions mo;
    mo.port = s->udp.port;
    mo.state.lease = std::chrono::seconds(o.port_mapping_lease);
    s->mapper = std::make_unique<real::PortMapper>(mo);
  }
  auto mapping_deadline = std::chrono::steady_clock::now() + kMappingWait;
  for (size_t i = 0; i < slots.size(); ++i) {
    auto& m = slots[i]->mapper;
    if (!m) continue;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(mapping_deadline - std::chrono::steady_clock::now());
    m->wait_first(std::max(left, std::chrono::milliseconds(0)));
    auto st = m->status();
    if (st.state == "mapped")
      spdlog::info("node {}: port mapped by {}: {} -> port {}", i, st.protocol, st.external, st.internal_port);
    else
      spdlog::info("node {}: no port mapping yet ({}): {}", i, st.state, st.last_error.empty() ? "pending" : st.last_error);
  }

  // --- the status page (docs/api.md, "Status page"): every node on the board, each sampled once a second on
  // its own thread; GET /api/network reads them all with the driver paused (RealDriver::post without a node) ---
  driver->call([&] {
    for (auto& s : slots) {
      std::string host = s->server->host();
      if (host.find(':') != std::string::npos) host = "[" + host + "]";
      board.add(*s->node, "http://" + host + ":" + std::to_string(s->api_port), s->udp);
    }
  });
  for (auto& s : slots) {
    s->server->set_udp_stats([drv](Node& n) { return drv->udp_stats(n); });
    s->server->set_extra_metrics([slot = s.get()] { return port_mapping_metrics(*slot); });
  }
  for (size_t i = 0; i < slots.size(); ++i)
    slots[i]->server->set_status_routes(
        {[drv, &board, &slots, i](api::Done done) {
           drv->post(*slots[i]->node, [drv, &board, &slots, i, done] {
             auto status = board.status(i);
             status["udp"] = udp_stats_json(drv->udp_stats(*slots[i]->node));
             status["port_mapping"] = port_mapping_json(*slots[i]);
             done(std::move(status));
           });
         },
         [drv, &board](api::Done done) { drv->post([&board, done] { done(board.network()); }); }});
  asio::steady_timer sampler(http_io);
  std::function<void()> sample_each_second = [&] {
    sampler.expires_after(std::chrono::seconds(1));
    sampler.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      for (size_t i = 0; i < slots.size(); ++i) drv->post(*slots[i]->node, [&board, i] { board.tick(i); });
      sample_each_second();
    });
  };
  sample_each_second();

  // --- start: signals, API, bootstrap ---
  std::promise<int> stop_signal;
  asio::signal_set signals(http_io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    for (auto& s : slots) s->server->stop();
    stop_signal.set_value(sig);
  });
  for (auto& s : slots) s->server->start();
  if (!cookie.empty()) say("storjnetd: API token in " + cookie.string());
  auto work = asio::make_work_guard(http_io);
  std::thread http_thread([&] { http_io.run(); });

  std::atomic<int> pending{o.nodes};
  auto announce = [&](int i, bool joined) {
    auto& s = *slots[i];
    if (s.announced.exchange(true)) return;
    std::string host = s.server->host();
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    say("node " + std::to_string(i) + " id=" + s.node->id().hex() + " udp=" + s.udp.to_string() + " api=http://" +
        host + ":" + std::to_string(s.api_port) + (joined || (i == 0 && seeds.empty()) ? "" : " (not joined yet)"));
    if (--pending == 0) say("storjnetd: " + std::to_string(o.nodes) + " node" + (o.nodes == 1 ? "" : "s") + " ready");
  };
  Endpoint node0 = slots[0]->udp;
  if (node0.is_unspecified()) node0 = *Endpoint::from_ip(node0.family == Endpoint::Family::kV6 ? "::1" : "127.0.0.1", node0.port);
  for (int i = 0; i < o.nodes; ++i) {
    std::vector<Endpoint> node_seeds = seeds;
    if (i > 0) node_seeds.insert(node_seeds.begin(), node0);
    Node* n = slots[i]->node;
    driver->post(*n, [n, node_seeds, i, &announce] { n->dht().bootstrap(node_seeds, [i, &announce](bool ok) { announce(i, ok); }); });
  }
  // A node whose bootstrap takes long is announced anyway: its API is up.
  asio::steady_timer late(http_io, std::chrono::seconds(15));
  late.async_wait([&](const boost::system::error_code& ec) {
    if (ec) return;
    for (int i = 0; i < o.nodes; ++i) announce(i, false);
  });

  // File transfers judge stalls and forget old entries about once a second, each on its node's thread.
  asio::steady_timer file_ticker(http_io);
  std::function<void()> tick_files = [&] {
    file_ticker.expires_after(std::chrono::seconds(1));
    file_ticker.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      for (auto& s : slots)
        driver->post(*s->node, [files = s->files.get(), node = s->node] { files->tick(*node); });
      tick_files();
    });
  };
  asio::post(http_io, tick_files);

  int sig = stop_signal.get_future().get();
  spdlog::info("storjnetd: {} received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  // --- stop: API first, then flush every store (the driver paused), then the driver ---
  asio::post(http_io, [&] {
    late.cancel();
    sampler.cancel();
    file_ticker.cancel();
  });
  work.reset();
  http_io.stop();
  http_thread.join();
  // A store that cannot checkpoint now still has every write committed (WAL); closing it checkpoints.
  driver->call([&] {
    for (size_t i = 0; i < slots.size(); ++i) {
      try {
        slots[i]->node->dht().flush();
      } catch (const std::exception& e) {
        spdlog::warn("node {}: flush: {}", i, e.what());
      }
    }
  });
  driver->stop();
  driver.reset();
  // Remove the port mappings (each bounded), all at once.
  {
    std::vector<std::thread> stopping;
    for (auto& s : slots)
      if (s->mapper) stopping.emplace_back([m = s->mapper.get()] { m->stop(); });
    for (auto& t : stopping) t.join();
  }
  slots.clear();  // servers, dispatchers, locks
  if (!cookie.empty()) {
    std::error_code ec;
    fs::remove(cookie, ec);
  }
  say("storjnetd: stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that went away must not kill the daemon through a write to stdout.
  std::signal(SIGPIPE, SIG_IGN);
  // Logs go to stderr; stdout carries the "node i ..." lines.
  spdlog::set_default_logger(spdlog::stderr_color_mt("storjnetd"));
  Options o;
  CLI::App app{"storjnetd: runs storjnet nodes and their JSON-RPC API (docs/api.md)", "storjnetd"};
  app.set_version_flag("--version", std::string("storjnetd ") + kVersionString + " (protocol " +
                                        std::to_string(wire::kVersion) + ")");
  app.set_config("--config", "", "Read these flags from a TOML/INI file (key = value, e.g. port = 4000)");
  // A key the daemon does not know is a mistake in the file, not something to skip in silence.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--nodes", o.nodes, "Nodes in this process (a local network)")->capture_default_str();
  app.add_option("--threads", o.threads,
                 "io threads the nodes are spread over, round-robin (default: one per core; at most one per node)")
      ->capture_default_str();
  app.add_option("--port", o.port, "UDP port of node 0; node i listens on port+i (0: ephemeral)")->capture_default_str();
  app.add_option("--api-port", o.api_port, "API port of node 0; node i serves on api-port+i (0: ephemeral)")
      ->capture_default_str();
  app.add_option("--host", o.host, "IP address the UDP sockets bind to")->capture_default_str();
  app.add_option("--host6", o.host6,
                 "Also bind an IPv6 UDP socket at this address, same port (e.g. ::): dual-stack nodes; needs an IPv4 --host");
  app.add_option("--api-host", o.api_host, "IP address the API binds to (not loopback: needs a given token)")
      ->capture_default_str();
  app.add_option("--data-dir", o.data_dir, "Node i keeps its key, store and routing table in DATA_DIR/node-i")
      ->capture_default_str();
  app.add_option("--bootstrap", o.bootstrap, "host:port of a node to join through (repeatable)");
  app.add_option("--network-id", o.network_id, "Network id (32-bit, decimal or 0x hex); default STJ1");
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, critical, off")->capture_default_str();
  app.add_option("--api-token", o.api_token,
                 "Bearer token the API requires (visible to other local users in the process list: prefer "
                 "--api-token-file or STORJNET_API_TOKEN). Default: a random token written to DATA_DIR/.cookie");
  app.add_option("--api-token-file", o.api_token_file, "Read the API token from this file (its first line)");
  app.add_option("--api-cookie-perms", o.api_cookie_perms,
                 "Who may read DATA_DIR/.cookie: owner (mode 0600) or group (0640, e.g. a system service's admins)")
      ->capture_default_str();
  app.add_flag("--api-public-metrics", o.api_public_metrics, "Serve GET /metrics without the token");
  app.add_option("--api-allow-host", o.api_allow_hosts,
                 "A Host name the API accepts besides IP addresses and localhost (repeatable)");
  app.add_option("--api-body-limit", o.api_body_limit, "Largest API request body in bytes")->capture_default_str();
  app.add_flag("--no-port-mapping", o.no_port_mapping,
               "Do not ask the router to forward the UDP port (UPnP IGD / NAT-PMP; on by default for nodes bound "
               "to all or private IPv4 addresses; removed on a clean stop)");
  app.add_option("--port-mapping-lease", o.port_mapping_lease,
                 "Lease asked for the port mapping, in seconds (renewed at half)")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "storjnetd: " << e.what() << "\n(run storjnetd --help for the flags)\n";
    return 2;
  }
  try {
    return run(o);
  } catch (const UsageError& e) {
    std::cerr << "storjnetd: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "storjnetd: " << e.what() << '\n';
    return 1;
  }
}
