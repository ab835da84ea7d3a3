#include "api/http_server.h"

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "api/auth.h"
#include "api/metrics.h"
#include "api/ui_assets.h"

namespace storjnet::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Open connections, in total and by client address (sessions may end on any thread of the io_context).
struct Admission {
  std::mutex mu;
  size_t total = 0;
  std::map<asio::ip::address, size_t> by_client;

  std::optional<Refusal> admit(const asio::ip::address& a, const ServerOptions& o) {
    std::lock_guard lock(mu);
    if (total >= o.max_connections) return Refusal::kConnections;
    size_t& mine = by_client[a];
    if (mine >= o.max_connections_per_client) return Refusal::kClientConnections;
    ++mine;
    ++total;
    return std::nullopt;
  }
  void release(const asio::ip::address& a) {
    std::lock_guard lock(mu);
    --total;
    auto it = by_client.find(a);
    if (it != by_client.end() && --it->second == 0) by_client.erase(it);
  }
};

struct ApiServer::Impl : std::enable_shared_from_this<ApiServer::Impl> {
  asio::io_context& io;
  ServerOptions opts;
  Dispatcher& dispatcher;
  NodeRunner run;
  StatusRoutes status_routes;
  UdpStatsSource udp_stats;
  std::function<std::string()> extra_metrics;
  tcp::acceptor acceptor;
  std::shared_ptr<Admission> admission = std::make_shared<Admission>();
  ApiRefusals refusals;
  bool stopped = false;

  Impl(asio::io_context& i, ServerOptions o, Dispatcher& d, NodeRunner r)
      : io(i), opts(std::move(o)), dispatcher(d), run(std::move(r)), acceptor(i) {}

  void accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ApiServer::Impl> server, asio::ip::address client)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), server_(std::move(server)),
        admission_(server_->admission), client_(client) {}
  ~Session() { admission_->release(client_); }

  void start() { read(); }

 private:
  using Response = http::response<http::string_body>;
  using Request = http::request<http::string_body>;

  // Headers first (the first request's within header_timeout of the accept), checked before any body byte
  // is read.
  void read() {
    parser_.emplace();
    parser_->body_limit(server_->opts.body_limit);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(first_ ? server_->opts.header_timeout : server_->opts.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    // A declared body over the limit is reported with the header; it is answered after the checks.
    bool too_big = ec == http::error::body_limit;
    if (ec && !too_big) {
      if (ec == beast::error::timeout && first_) server_->refusals.add(Refusal::kSlowHeaders);
      return close();
    }
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    ++seq_;
    if (auto r = refusal(req)) return refuse(*r);
    first_ = false;
    if (too_big || parser_->is_done()) return on_read(ec);
    stream_.expires_after(server_->opts.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  static std::string_view sv(beast::string_view v) { return {v.data(), v.size()}; }

  // Why the request must not be served, judged on its headers alone.
  std::optional<Refusal> refusal(const Request& req) const {
    const auto& o = server_->opts;
    if (req.find(http::field::origin) != req.end()) return Refusal::kOrigin;
    if (!host_allowed(sv(req[http::field::host]), o.allowed_hosts)) return Refusal::kHost;
    std::string_view target = sv(req.target());
    // The status page's files hold no data (the page asks for the token, docs/api.md "Status page").
    bool page = req.method() == http::verb::get && find_ui_asset(target.substr(0, target.find('?')));
    bool open = target == "/health" || (target == "/metrics" && o.public_metrics) || page;
    if (!o.token.empty() && !open && !bearer_matches(sv(req[http::field::authorization]), o.token))
      return Refusal::kUnauthorized;
    if (req.method() == http::verb::post && !is_json_content_type(sv(req[http::field::content_type])))
      return Refusal::kContentType;
    return std::nullopt;
  }

  void refuse(Refusal r) {
    server_->refusals.add(r);
    keep_alive_ = false;
    switch (r) {
      case Refusal::kOrigin:
        return send_status(http::status::forbidden, "refused: requests from web pages (an Origin header) are not served\n");
      case Refusal::kHost:
        return send_status(http::status::forbidden,
                           "refused: the Host header must be an IP address, localhost, or a name given with "
                           "--api-allow-host\n");
      case Refusal::kUnauthorized: {
        Response res{http::status::unauthorized, version_};
        res.set(http::field::www_authenticate, "Bearer");
        return send_text(std::move(res), "missing or wrong bearer token (see docs/api.md, Authentication)\n",
                         "text/plain");
      }
      case Refusal::kContentType:
        return send_status(http::status::unsupported_media_type, "refused: the body must be Content-Type: application/json\n");
      default:
        return close();
    }
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return send_json(http::status::payload_too_large,
                       Dispatcher::error_response(nullptr, kInvalidRequest,
                                                  "request body too large (at most " +
                                                      std::to_string(server_->opts.body_limit) + " bytes)"));
    }
    if (ec) return close();
    auto& req = parser_->get();
    std::string target(req.target());
    if (target == "/" || target == "/rpc") {
      if (req.method() != http::verb::post) return send_status(http::status::method_not_allowed, "use POST\n");
      arm_timeout();
      server_->dispatcher.handle_body(req.body(), completion([](Session& s, std::optional<json> r) {
        if (!r) {
          Response res{http::status::no_content, s.version_};
          return s.send(std::move(res));
        }
        s.send_json(http::status::ok, *r);
      }));
      return;
    }
    if (target == "/metrics" || target == "/health") {
      if (req.method() != http::verb::get) return send_status(http::status::method_not_allowed, "use GET\n");
      arm_timeout();
      bool metrics = target == "/metrics";
      const ApiCounters* counters = &server_->dispatcher.counters();
      const ApiRefusals* refusals = &server_->refusals;
      auto done = completion([metrics](Session& s, std::optional<json> r) {
        if (metrics) {
          Response res{http::status::ok, s.version_};
          return s.send_text(std::move(res), r->get<std::string>(), "text/plain; version=0.0.4; charset=utf-8");
        }
        s.send_json(http::status::ok, *r);
      });
      server_->run([metrics, counters, refusals, udp = server_->udp_stats, extra = server_->extra_metrics,
                    done](Node& n) {
        if (metrics) {
          std::optional<UdpStats> u;
          if (udp) u = udp(n);
          std::string text = render_metrics(n, *counters, refusals, u ? &*u : nullptr);
          if (extra) text += extra();
          return done(json(std::move(text)));
        }
        done(json{{"status", "ok"}, {"id", n.id().hex()}, {"peers", n.dht().peer_count()}});
      });
      return;
    }
    if (serve_status_page(req)) return;
    send_status(http::status::not_found, "not found: POST / for JSON-RPC, GET /metrics, GET /health, GET /ui\n");
  }

  // The status page: its files, and the JSON it reads. False when the request is for neither.
  bool serve_status_page(const Request& req) {
    std::string_view target = sv(req.target());
    std::string_view path = target.substr(0, target.find('?'));
    const auto& routes = server_->status_routes;
    const auto& route = path == "/api/status" ? routes.status : routes.network;
    if (path == "/api/status" || path == "/api/network") {
      if (!route) return false;
      if (req.method() != http::verb::get) return send_status(http::status::method_not_allowed, "use GET\n"), true;
      arm_timeout();
      route(completion([](Session& s, std::optional<json> r) {
        Response res{http::status::ok, s.version_};
        res.set(http::field::cache_control, "no-store");
        s.send_text(std::move(res), Dispatcher::dump(*r) + "\n", "application/json");
      }));
      return true;
    }
    const UiAsset* asset = find_ui_asset(path);
    if (!asset) return false;
    if (req.method() != http::verb::get) return send_status(http::status::method_not_allowed, "use GET\n"), true;
    Response res{http::status::ok, version_};
    // Only its own files run, it is never framed, and it loads nothing from elsewhere.
    res.set("Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    res.set(http::field::x_frame_options, "DENY");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.set(http::field::cache_control, "no-cache");
    send_text(std::move(res), std::string(asset->body), asset->content_type);
    return true;
  }

  // A completion callable from any thread: runs `fn` on the session's executor, unless the request already
  // timed out or the session is gone.
  template <class F>
  Done completion(F fn) {
    std::weak_ptr<Session> weak = shared_from_this();
    auto ex = stream_.get_executor();
    uint64_t seq = seq_;
    return [weak, ex, seq, fn](std::optional<json> r) {
      asio::post(ex, [weak, seq, fn, r = std::move(r)]() mutable {
        auto self = weak.lock();
        if (!self || self->seq_ != seq || self->answered_) return;
        self->answered_ = true;
        self->timer_.cancel();
        fn(*self, std::move(r));
      });
    };
  }

  void arm_timeout() {
    answered_ = false;
    // The timer's handler keeps the session alive while the node works.
    timer_.expires_after(server_->opts.request_timeout);
    timer_.async_wait([self = shared_from_this(), seq = seq_](beast::error_code ec) {
      if (ec || self->seq_ != seq || self->answered_) return;
      self->answered_ = true;
      self->keep_alive_ = false;
      self->send_json(http::status::gateway_timeout,
                      Dispatcher::error_response(nullptr, kInternalError, "internal error: the request timed out"));
    });
  }

  void send_status(http::status status, std::string text) {
    Response res{status, version_};
    send_text(std::move(res), std::move(text), "text/plain");
  }
  void send_json(http::status status, const json& body) {
    Response res{status, version_};
    send_text(std::move(res), Dispatcher::dump(body) + "\n", "application/json");
  }
  void send_text(Response res, std::string body, std::string_view type) {
    res.set(http::field::content_type, beast::string_view(type.data(), type.size()));
    res.body() = std::move(body);
    send(std::move(res));
  }
  void send(Response res) {
    res.set(http::field::server, "storjnetd");
    res.keep_alive(keep_alive_);
    res.prepare_payload();
    auto sp = std::make_shared<Response>(std::move(res));
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *sp, [self = shared_from_this(), sp](beast::error_code ec, size_t) {
      if (ec || !self->keep_alive_) return self->close();
      self->read();
    });
  }

  // Closing with unread request bytes in the socket would reset the connection and could destroy the
  // response still in flight (the client then sees "broken pipe" instead of our 413): after shutting down
  // our side, drain what the client still sends, for at most a second, then close.
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    drain_buf_ = std::make_shared<std::array<char, 16 * 1024>>();
    stream_.expires_after(std::chrono::seconds(1));
    drain();
  }
  void drain() {
    stream_.async_read_some(asio::buffer(*drain_buf_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->stream_.close();
      self->drain();
    });
  }
  std::shared_ptr<std::array<char, 16 * 1024>> drain_buf_;

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<ApiServer::Impl> server_;
  std::shared_ptr<Admission> admission_;
  asio::ip::address client_;
  bool first_ = true;  // no request passed the checks yet on this connection
  bool keep_alive_ = true;
  unsigned version_ = 11;
  uint64_t seq_ = 0;
  bool answered_ = true;
};

}  // namespace

void ApiServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped || !self->acceptor.is_open()) return;
    if (!ec) {
      beast::error_code ignore;
      auto client = socket.remote_endpoint(ignore).address();
      if (auto r = self->admission->admit(client, self->opts)) {
        self->refusals.add(*r);
        socket.close(ignore);
      } else {
        std::make_shared<Session>(std::move(socket), self, client)->start();
      }
    }
    self->accept();
  });
}

ApiServer::ApiServer(asio::io_context& io, ServerOptions options, Dispatcher& dispatcher, NodeRunner run)
    : impl_(std::make_shared<Impl>(io, std::move(options), dispatcher, std::move(run))) {
  auto& o = impl_->opts;
  beast::error_code ec;
  auto addr = asio::ip::make_address(o.host, ec);
  if (ec) throw std::runtime_error("bad API address \"" + o.host + "\": " + ec.message());
  tcp::endpoint ep(addr, o.port);
  std::string where = (addr.is_v6() ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on TCP " + where + " for the API: " + ec.message());
}

ApiServer::~ApiServer() {
  beast::error_code ec;
  impl_->stopped = true;
  impl_->acceptor.close(ec);
}

void ApiServer::set_status_routes(StatusRoutes routes) { impl_->status_routes = std::move(routes); }
void ApiServer::set_udp_stats(UdpStatsSource source) { impl_->udp_stats = std::move(source); }
void ApiServer::set_extra_metrics(std::function<std::string()> source) { impl_->extra_metrics = std::move(source); }

void ApiServer::start() { impl_->accept(); }

void ApiServer::stop() {
  impl_->stopped = true;
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

uint16_t ApiServer::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

const std::string& ApiServer::host() const { return impl_->opts.host; }

const ApiRefusals& ApiServer::refusals() const { return impl_->refusals; }

}  // namespace storjnet::api
