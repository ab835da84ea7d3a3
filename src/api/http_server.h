// ApiServer: the HTTP front of a node's user API (Boost.Beast): JSON-RPC 2.0 on POST / (and /rpc),
// Prometheus text on GET /metrics, and GET /health.
//
// It runs on its own io_context (never the driver's thread): a JSON-RPC call posts to the node through the
// NodeRunner and the response is written when the node's callback fires. Several connections at once,
// keep-alive, a body cap (413 and a -32600 error beyond it), and a per-request timeout (504).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "api/json_rpc.h"

namespace boost::asio {
class io_context;
}

namespace storjnet::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                 // 0: ephemeral
  std::string token;                 // non-empty: every request but GET /health needs "Authorization: Bearer <token>"
  size_t body_limit = 1024 * 1024;   // bytes of a request body
  size_t max_connections = 256;      // open at once; more are closed at accept
  std::chrono::milliseconds request_timeout{30'000};  // from a complete request to its response
  std::chrono::milliseconds idle_timeout{60'000};     // keep-alive connection without a request
};

class ApiServer {
 public:
  // Opens, binds and listens (nothing is accepted before start()). Throws std::runtime_error with the reason
  // when the address is bad or cannot be bound. `dispatcher` must outlive the server's io_context work.
  ApiServer(boost::asio::io_context& io, ServerOptions options, Dispatcher& dispatcher, NodeRunner run);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Starts accepting. Call on the io_context's thread, or before it runs.
  void start();
  // Stops accepting (open connections finish their current request). Call on the io_context's thread.
  void stop();
  uint16_t port() const;
  const std::string& host() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace storjnet::api
