#include "api/http_client.h"

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <stdexcept>

namespace storjnet::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::optional<ApiUrl> parse_api_url(std::string_view url) {
  ApiUrl out;
  if (url.starts_with("http://")) url.remove_prefix(7);
  else if (url.find("://") != std::string_view::npos) return std::nullopt;
  auto slash = url.find('/');
  if (slash != std::string_view::npos) {
    out.target = std::string(url.substr(slash));
    url = url.substr(0, slash);
  }
  std::string_view host = url, port;
  if (url.starts_with("[")) {
    auto close = url.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = url.substr(1, close - 1);
    auto rest = url.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else if (auto colon = url.rfind(':'); colon != std::string_view::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  out.host = std::string(host);
  if (!port.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) return std::nullopt;
    out.port = static_cast<uint16_t>(p);
  }
  return out;
}

struct HttpClient::Impl {
  std::string host;
  uint16_t port;
  std::string token;
  std::chrono::milliseconds timeout;
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  std::string where() const { return "http://" + host + ":" + std::to_string(port); }

  // Runs the io_context until the pending operation completes; throws on error.
  void finish(beast::error_code& ec, const char* what) {
    io.restart();
    io.run();
    if (ec == beast::error::timeout) throw std::runtime_error(std::string(what) + " " + where() + ": timed out");
    if (ec) throw std::runtime_error(std::string(what) + " " + where() + ": " + ec.message());
  }

  void connect() {
    stream.reset();
    buffer.clear();
    beast::error_code ec;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec) throw std::runtime_error("cannot resolve " + host + ": " + ec.message());
    stream.emplace(io);
    stream->expires_after(timeout);
    stream->async_connect(results, [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
    finish(ec, "cannot reach");
  }

  HttpResponse once(http::request<http::string_body>& req) {
    beast::error_code ec;
    stream->expires_after(timeout);
    http::async_write(*stream, req, [&ec](beast::error_code e, size_t) { ec = e; });
    io.restart();
    io.run();
    // A server may answer (413) and stop reading before the whole body was sent: read its answer anyway.
    bool early_answer = ec == asio::error::broken_pipe || ec == asio::error::connection_reset;
    if (ec && !early_answer) finish(ec, "cannot send to");
    beast::error_code write_ec = ec;
    ec = {};
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    stream->expires_after(timeout);
    http::async_read(*stream, buffer, parser, [&ec](beast::error_code e, size_t) { ec = e; });
    if (early_answer) {
      io.restart();
      io.run();
      if (ec) finish(write_ec, "cannot send to");
    } else {
      finish(ec, "no response from");
    }
    auto& res = parser.get();
    HttpResponse out;
    out.status = res.result_int();
    out.body = std::move(res.body());
    out.content_type = std::string(res[http::field::content_type]);
    if (!res.keep_alive()) stream.reset();
    return out;
  }
};

HttpClient::HttpClient(std::string host, uint16_t port, std::string token, std::chrono::milliseconds timeout)
    : impl_(new Impl{std::move(host), port, std::move(token), timeout, {}, {}, {}}) {}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::request(std::string_view method, std::string_view target, std::string body,
                                 std::string_view content_type) {
  http::request<http::string_body> req{http::string_to_verb({method.data(), method.size()}),
                                       beast::string_view(target.data(), target.size()), 11};
  req.set(http::field::host, impl_->host);
  req.set(http::field::user_agent, "storjnet-cli");
  if (!impl_->token.empty()) req.set(http::field::authorization, "Bearer " + impl_->token);
  if (!body.empty() || method == "POST") req.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  req.body() = std::move(body);
  req.keep_alive(true);
  req.prepare_payload();
  bool reused = impl_->stream.has_value();
  if (!reused) impl_->connect();
  try {
    return impl_->once(req);
  } catch (const std::runtime_error& e) {
    // A timeout may mean the server is working on it: never send a request twice then.
    if (!reused || std::string_view(e.what()).find("timed out") != std::string_view::npos) throw;
  }
  // The kept-alive connection was closed by the server meanwhile: once more on a fresh one.
  impl_->connect();
  return impl_->once(req);
}

}  // namespace storjnet::api
