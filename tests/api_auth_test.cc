// The local API's lock-down (docs/api.md, "Authentication") against an in-process ApiServer and raw HTTP:
// each refusal (no or wrong token, a browser Origin, a foreign Host, a body that is not JSON, slow headers,
// too many connections) closes the request before the dispatcher sees it and is counted; headers are
// judged before the body is read.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <thread>

#include "api/auth.h"
#include "api/http_server.h"
#include "api/json_rpc.h"
#include "api_test_util.h"
#include "storjnet/real_driver.h"

using namespace storjnet;
using namespace storjnet::api;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* kToken = "0123456789abcdef";
constexpr const char* kBody = R"({"jsonrpc":"2.0","id":1,"method":"dht_id"})";

Endpoint loopback_any_port() {
  auto e = *Endpoint::parse("127.0.0.1:1");
  e.port = 0;
  return e;
}

// One node behind an ApiServer on 127.0.0.1, its HTTP side on its own thread.
struct Server {
  RealDriver driver;
  Node* node;
  NodeRunner run;
  Dispatcher dispatcher;
  asio::io_context io;
  std::unique_ptr<ApiServer> server;
  std::thread thread;

  explicit Server(ServerOptions o)
      : node(&driver.add_node(loopback_any_port(), Identity::generate())),
        run([this](std::function<void(Node&)> fn) { driver.post([this, fn = std::move(fn)] { fn(*node); }); }),
        dispatcher(run) {
    o.token = kToken;
    server = std::make_unique<ApiServer>(io, o, dispatcher, run);
    server->start();
    thread = std::thread([this] {
      auto work = asio::make_work_guard(io);
      io.run();
    });
  }
  ~Server() {
    asio::post(io, [this] { server->stop(); io.stop(); });
    thread.join();
    driver.stop();
  }
  uint16_t port() const { return server->port(); }
  uint64_t refused(Refusal r) const { return server->refusals().get(r); }
};

// A raw client connection with a receive timeout (so a broken server fails the test instead of hanging it).
struct Raw {
  asio::io_context io;
  tcp::socket s{io};
  explicit Raw(uint16_t port) {
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    timeval tv{20, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void send(const std::string& text) { asio::write(s, asio::buffer(text)); }
  // Everything until the server closes (or the timeout).
  std::string read_all() {
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (!ec) {
      size_t n = s.read_some(asio::buffer(buf), ec);
      out.append(buf, n);
    }
    return out;
  }
};

// The status code of the server's answer to one raw request ("Connection: close" added); 0 when the
// server closed without answering.
int status_of(uint16_t port, const std::string& head, const std::string& body = "") {
  Raw r(port);
  r.send(head + "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  std::string res = r.read_all();
  if (!res.starts_with("HTTP/1.1 ")) return 0;
  return std::stoi(res.substr(9, 3));
}

std::string post(const std::string& extra, const std::string& host = "127.0.0.1",
                 const std::string& type = "application/json") {
  std::string h = "POST / HTTP/1.1\r\nHost: " + host + "\r\n";
  if (!type.empty()) h += "Content-Type: " + type + "\r\n";
  return h + extra;
}
const std::string kAuth = std::string("Authorization: Bearer ") + kToken + "\r\n";

}  // namespace

TEST(ApiAuth, HelpersCompareTokensAndJudgeHostsAndTypes) {
  EXPECT_TRUE(bearer_matches("Bearer abc", "abc"));
  EXPECT_FALSE(bearer_matches("Bearer abd", "abc"));
  EXPECT_FALSE(bearer_matches("Bearer abcd", "abc"));
  EXPECT_FALSE(bearer_matches("abc", "abc"));
  EXPECT_FALSE(bearer_matches("", "abc"));
  for (auto h : {"127.0.0.1", "127.0.0.1:5000", "[::1]:5000", "::1", "localhost", "LOCALHOST:80", "localhost.",
                 "app.localhost:1", "10.1.2.3:9", "node.lan:5000"})
    EXPECT_TRUE(host_allowed(h, {"Node.LAN"})) << h;
  for (auto h : {"", "evil.example", "evil.example:5000", "localhost.evil.example", "127.0.0.1.nip.io", "[::1"})
    EXPECT_FALSE(host_allowed(h, {"node.lan"})) << h;
  EXPECT_TRUE(is_json_content_type("application/json"));
  EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
  EXPECT_FALSE(is_json_content_type(""));
  EXPECT_FALSE(is_json_content_type("text/plain"));
  EXPECT_FALSE(is_json_content_type("application/x-www-form-urlencoded"));
  EXPECT_EQ(random_token().size(), 64u);
  EXPECT_NE(random_token(), random_token());
}

TEST(ApiAuth, EachRefusalIsAnsweredAndCounted) {
  ServerOptions o;
  o.allowed_hosts = {"node.lan"};
  Server s(o);
  uint16_t p = s.port();
  EXPECT_EQ(status_of(p, post(kAuth), kBody), 200);
  EXPECT_EQ(status_of(p, post(kAuth, "localhost:" + std::to_string(p)), kBody), 200);
  EXPECT_EQ(status_of(p, post(kAuth, "[::1]:" + std::to_string(p)), kBody), 200);
  EXPECT_EQ(status_of(p, post(kAuth, "node.lan"), kBody), 200);
  EXPECT_EQ(status_of(p, post(kAuth, "127.0.0.1", "application/json; charset=utf-8"), kBody), 200);
  // No token, a wrong one, one of another length.
  EXPECT_EQ(status_of(p, post(""), kBody), 401);
  EXPECT_EQ(status_of(p, post("Authorization: Bearer 0123456789abcdeF\r\n"), kBody), 401);
  EXPECT_EQ(status_of(p, post("Authorization: Bearer x\r\n"), kBody), 401);
  EXPECT_EQ(s.refused(Refusal::kUnauthorized), 3u);
  // A web page's request (even with the token: a page cannot have it, but never serve one).
  EXPECT_EQ(status_of(p, post(kAuth + "Origin: http://evil.example\r\n"), kBody), 403);
  EXPECT_EQ(status_of(p, post("Origin: null\r\n"), kBody), 403);
  EXPECT_EQ(s.refused(Refusal::kOrigin), 2u);
  // DNS rebinding: a name that is not ours.
  EXPECT_EQ(status_of(p, post(kAuth, "evil.example:" + std::to_string(p)), kBody), 403);
  EXPECT_EQ(status_of(p, "POST / HTTP/1.1\r\nContent-Type: application/json\r\n" + kAuth, kBody), 403);  // no Host
  EXPECT_EQ(s.refused(Refusal::kHost), 2u);
  // A body that is not JSON by its type (a form post needs no CORS preflight).
  EXPECT_EQ(status_of(p, post(kAuth, "127.0.0.1", "text/plain"), kBody), 415);
  EXPECT_EQ(status_of(p, post(kAuth, "127.0.0.1", "application/x-www-form-urlencoded"), kBody), 415);
  EXPECT_EQ(status_of(p, post(kAuth, "127.0.0.1", ""), kBody), 415);
  EXPECT_EQ(s.refused(Refusal::kContentType), 3u);
  // Health is open; metrics need the token and show the refusals.
  EXPECT_EQ(status_of(p, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"), 200);
  EXPECT_EQ(status_of(p, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"), 401);
  Raw m(p);
  m.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" + kAuth + "Connection: close\r\n\r\n");
  std::string metrics = m.read_all();
  EXPECT_NE(metrics.find("storjnet_api_refused_total{reason=\"origin\"} 2"), std::string::npos);
  EXPECT_NE(metrics.find("storjnet_api_refused_total{reason=\"unauthorized\"} 4"), std::string::npos);
  // None of the refused requests reached the dispatcher.
  EXPECT_EQ(s.dispatcher.counters().requests.load(), 5u);
}

// A request's headers are judged before its body is read: a wrong token announcing a large body is
// answered at once, without the body ever being sent.
TEST(ApiAuth, HeadersAreCheckedBeforeTheBodyIsRead) {
  Server s({});
  Raw r(s.port());
  r.send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer nope\r\n"
         "Content-Length: 900000\r\n\r\n");
  std::string res = r.read_all();
  EXPECT_TRUE(res.starts_with("HTTP/1.1 401")) << res;
  EXPECT_EQ(s.refused(Refusal::kUnauthorized), 1u);
}

// Headers that do not arrive within header_timeout (slowloris) get the connection closed, unanswered.
TEST(ApiAuth, SlowHeadersAreCutOff) {
  ServerOptions o;
  o.header_timeout = std::chrono::milliseconds(300);
  Server s(o);
  Raw slow(s.port()), silent(s.port());
  slow.send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(slow.read_all(), "");
  EXPECT_EQ(silent.read_all(), "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));  // generous: the limit is 0.3 s
  // (Beast closes the socket on the timeout before the handler that counts it runs.)
  EXPECT_TRUE(test::eventually([&] { return s.refused(Refusal::kSlowHeaders) == 2; }));
}

// Connections are capped per client address and in total; refused ones are closed at accept and counted,
// and a closed connection frees its place.
TEST(ApiAuth, ConnectionsAreCappedPerClientAndInTotal) {
  ServerOptions o;
  o.max_connections_per_client = 3;
  Server s(o);
  {
    std::vector<std::unique_ptr<Raw>> held;
    for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<Raw>(s.port()));
    Raw extra(s.port());
    EXPECT_EQ(extra.read_all(), "");
    EXPECT_EQ(s.refused(Refusal::kClientConnections), 1u);
  }
  EXPECT_TRUE(test::eventually([&] { return status_of(s.port(), post(kAuth), kBody) == 200; }));

  ServerOptions t;
  t.max_connections = 2;
  Server s2(t);
  Raw a(s2.port()), b(s2.port()), c(s2.port());
  EXPECT_EQ(c.read_all(), "");
  EXPECT_EQ(s2.refused(Refusal::kConnections), 1u);
}
