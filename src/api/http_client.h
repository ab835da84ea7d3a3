// A small synchronous HTTP/1.1 client (Boost.Beast) for the storjnet CLI and the API tests. One connection,
// kept alive across requests and reopened when the server closed it. Not thread-safe: one per thread.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace storjnet::api {

struct ApiUrl {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";  // path of the JSON-RPC endpoint
};
// "http://host:port[/path]", "http://[::1]:port", "host:port"; nullopt otherwise (https is not supported).
std::optional<ApiUrl> parse_api_url(std::string_view url);

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
};

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port, std::string token = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(60));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Throws std::runtime_error("cannot reach ...", "timed out", ...) when no response arrives.
  HttpResponse request(std::string_view method, std::string_view target, std::string body = {},
                       std::string_view content_type = "application/json");
  HttpResponse post(std::string_view target, std::string body) { return request("POST", target, std::move(body)); }
  HttpResponse get(std::string_view target) { return request("GET", target); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace storjnet::api
