// ApiServer: the HTTP front of a node's user API (Boost.Beast): JSON-RPC 2.0 on POST / (and /rpc),
// Prometheus text on GET /metrics, GET /health, and the status page (GET /ui, its files, and the JSON it
// reads: GET /api/status, GET /api/network; docs/api.md, "Status page").
//
// It runs on its own io_context (never a driver's io thread): a JSON-RPC call posts to the node through the
// NodeRunner and the response is written when the node's callback fires. Several connections at once,
// keep-alive, a body cap (413 and a -32600 error beyond it), and a per-request timeout (504).
//
// Locked down for a local API (docs/api.md, "Authentication"): a request's headers must arrive within
// header_timeout and are checked before its body is read; a request with an Origin header (a web page),
// a Host that is not an IP literal, localhost or an allowed name (DNS rebinding), a missing or wrong bearer
// token, or a POST body that is not JSON is refused and its connection closed; connections are capped in
// total and per client address. Every refusal is counted (ApiRefusals, shown in /metrics).
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/json_rpc.h"
#include "storjnet/udp_stats.h"

namespace boost::asio {
class io_context;
}

namespace storjnet::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                 // 0: ephemeral
  std::string token;                 // non-empty: every request but GET /health needs "Authorization: Bearer <token>"
  bool public_metrics = false;       // GET /metrics without the token
  std::vector<std::string> allowed_hosts;  // Host names accepted besides IP literals and localhost
  size_t body_limit = 1024 * 1024;   // bytes of a request body
  size_t max_connections = 256;      // open at once; more are closed at accept
  size_t max_connections_per_client = 32;             // open at once from one client address
  std::chrono::milliseconds header_timeout{5'000};    // a connection's first request headers, from accept
  std::chrono::milliseconds request_timeout{30'000};  // from a complete request to its response
  std::chrono::milliseconds idle_timeout{60'000};     // keep-alive connection without a request
};

// Requests and connections refused before reaching the dispatcher, by reason (readable from any thread).
enum class Refusal : uint8_t {
  kUnauthorized, kOrigin, kHost, kContentType, kSlowHeaders, kConnections, kClientConnections, kCount
};
inline constexpr std::array<std::string_view, static_cast<size_t>(Refusal::kCount)> kRefusalNames = {
    "unauthorized", "origin", "host", "content_type", "slow_headers", "connections", "client_connections"};
struct ApiRefusals {
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Refusal::kCount)> by_reason{};
  void add(Refusal r) { by_reason[static_cast<size_t>(r)].fetch_add(1); }
  uint64_t get(Refusal r) const { return by_reason[static_cast<size_t>(r)].load(); }
};

// The status page's data: GET /api/status and GET /api/network (the token is required as for every route but
// /health and the page's own files) answer what these produce; each calls its Done once, from any thread.
// Unset, those paths answer 404.
struct StatusRoutes {
  std::function<void(Done)> status;   // this node (api/status.h, node_status)
  std::function<void(Done)> network;  // every node of the process (api/status.h, network_entry)
};
// The node's UDP socket as its driver sees it (RealDriver::udp_stats), for GET /metrics; run on the node's thread.
using UdpStatsSource = std::function<UdpStats(Node&)>;

class ApiServer {
 public:
  // Opens, binds and listens (nothing is accepted before start()). Throws std::runtime_error with the reason
  // when the address is bad or cannot be bound. `dispatcher` must outlive the server's io_context work.
  ApiServer(boost::asio::io_context& io, ServerOptions options, Dispatcher& dispatcher, NodeRunner run);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Before start().
  void set_status_routes(StatusRoutes routes);
  // Before start(). Unset, /metrics has no storjnet_udp_* families.
  void set_udp_stats(UdpStatsSource source);
  // Before start(). Whole metric families (exposition text) appended to /metrics, produced on the node's
  // thread (storjnetd: its port mapper's storjnet_port_mapping_*).
  void set_extra_metrics(std::function<std::string()> source);
  // Starts accepting. Call on the io_context's thread, or before it runs.
  void start();
  // Stops accepting (open connections finish their current request). Call on the io_context's thread.
  void stop();
  uint16_t port() const;
  const std::string& host() const;
  const ApiRefusals& refusals() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace storjnet::api
