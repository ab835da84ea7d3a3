// storjnetd as a real process: every JSON-RPC method over HTTP against 50 nodes, the error codes, restart
// on the same data dir, concurrent clients, and the startup errors.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "api/auth.h"
#include "api_test_util.h"

using namespace storjnet;
using namespace storjnet::test;

namespace {

constexpr int kNodes = 50;

class ApiDaemon : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name()).string(); }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Three io threads whatever the machine's core count: the nodes of one daemon live on different threads.
  void start(int nodes = kNodes, std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--threads", "3"});
    daemon_ = std::make_unique<Daemon>();
    ASSERT_TRUE(start_daemon(*daemon_, nodes, dir_ + "/data", extra, &base_)) << "storjnetd did not start";
    ASSERT_EQ(daemon_->nodes.size(), static_cast<size_t>(nodes));
    ASSERT_EQ(daemon_->node_lines, static_cast<size_t>(nodes));
  }
  // The daemon's default token, from the cookie it wrote to its data dir.
  std::string token() { return api::read_token_file(dir_ + "/data/.cookie").value_or(""); }
  Rpc rpc(int i) { return Rpc(daemon_->nodes[i].api_port, token()); }
  uint16_t udp_port(int i) { return static_cast<uint16_t>(std::stoi(daemon_->nodes[i].udp.substr(daemon_->nodes[i].udp.rfind(':') + 1))); }

  std::string dir_;
  std::unique_ptr<Daemon> daemon_;
  int base_ = 0;
};

TEST_F(ApiDaemon, FiftyNodesPrintOneLinePerNodeOnTheirPorts) {
  start();
  std::set<std::string> ids;
  for (int i = 0; i < kNodes; ++i) {
    const auto& n = daemon_->nodes[i];
    EXPECT_EQ(n.id.size(), 40u);
    ids.insert(n.id);
    EXPECT_EQ(n.udp, "127.0.0.1:" + std::to_string(base_ + i));
    EXPECT_EQ(n.api_port, base_ + kNodes + i);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kNodes));
  EXPECT_EQ(daemon_->stop(), 0);
  EXPECT_EQ(daemon_->lines.back(), "storjnetd: stopped");
}

TEST_F(ApiDaemon, DhtMethodsOverHttp) {
  start();
  for (int i : {0, 7, 49}) EXPECT_EQ(rpc(i).call("dht_id"), daemon_->nodes[i].id);

  auto peers = rpc(7).call("dht_peers");
  ASSERT_TRUE(peers.is_array());
  EXPECT_FALSE(peers.empty());
  for (auto& p : peers) {
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(p[0].get<std::string>().size(), 40u);
    EXPECT_EQ(p[1], "127.0.0.1");
    EXPECT_TRUE(p[2].is_number_unsigned());
  }

  json value = {{"a", json::array({1, 2, "x"})}, {"b", nullptr}, {"c", 1.5}};
  EXPECT_EQ(rpc(3).call("dht_put", {"k1", value}), true);
  EXPECT_EQ(rpc(40).call("dht_get", {"k1"}), value);
  EXPECT_EQ(rpc(3).call("dht_get", {"k1"}), value);
  // Named params, strings and scalars as values.
  EXPECT_EQ(rpc(11).call("dht_put", {{"key", "k2"}, {"value", "just a string"}}), true);
  EXPECT_EQ(rpc(12).call("dht_get", {{"key", "k2"}}), "just a string");
  EXPECT_EQ(rpc(13).call("dht_put", {"k3", 42}), true);
  EXPECT_EQ(rpc(29).call("dht_get", {"k3"}), 42);
  EXPECT_TRUE(rpc(20).call("dht_get", {"no such key"}).is_null());

  auto stun = rpc(5).call("dht_stun");
  EXPECT_EQ(stun, json::array({"127.0.0.1", udp_port(5)}));

  EXPECT_EQ(rpc(2).call("dht_find", {daemon_->nodes[30].id}), json::array({"127.0.0.1", udp_port(30)}));
  // Uppercase hex is accepted too.
  std::string upper = daemon_->nodes[31].id;
  for (auto& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_EQ(rpc(2).call("dht_find", {upper}), json::array({"127.0.0.1", udp_port(31)}));
  EXPECT_TRUE(rpc(2).call("dht_find", {std::string(40, '0')}).is_null());
}

TEST_F(ApiDaemon, MessageMethodsOverHttp) {
  start();
  const auto& to = daemon_->nodes[9].id;
  EXPECT_EQ(rpc(4).call("message_send", {to, {{"hello", 1}}}), true);
  EXPECT_EQ(rpc(4).call("message_send", {{"hexnodeid", to}, {"message", "second"}}), true);
  EXPECT_EQ(rpc(9).call("message_list"), json({{daemon_->nodes[4].id, json::array({{{"hello", 1}}, "second"})}}));
  EXPECT_EQ(rpc(9).call("message_list"), json::object());
  // To ourselves: queued locally.
  EXPECT_EQ(rpc(6).call("message_send", {daemon_->nodes[6].id, json::array({1, 2})}), true);
  EXPECT_EQ(rpc(6).call("message_list"), json({{daemon_->nodes[6].id, json::array({json::array({1, 2})})}}));
}

TEST_F(ApiDaemon, PubsubMethodsOverHttp) {
  start();
  EXPECT_TRUE(rpc(10).call("pubsub_subscribe", {"t1"}).is_null());
  EXPECT_TRUE(rpc(33).call("pubsub_subscribe", {{"topic", "t1"}}).is_null());
  EXPECT_EQ(rpc(10).call("pubsub_subscriptions"), json::array({"t1"}));
  // A subscription takes effect once its holders have it (a lookup and a ping each, docs/protocol.md 8.3):
  // publish until both subscribers have an event, then each has every event it got exactly once.
  json got = json::array(), got33 = json::array();
  int published = 0;
  EXPECT_TRUE(eventually([&] {
    if (got.empty() || got33.empty()) {
      EXPECT_TRUE(rpc(20).call("pubsub_publish", {"t1", {{"n", ++published}}}).is_null());
    }
    for (auto& e : rpc(10).call("pubsub_events", {"t1"})) got.push_back(e);
    for (auto& e : rpc(33).call("pubsub_events", {"t1"})) got33.push_back(e);
    return !got.empty() && !got33.empty();
  }));
  // Events still in flight come later; a queue handed out is emptied (nothing is handed out twice).
  for (auto& e : rpc(10).call("pubsub_events", {"t1"})) got.push_back(e);
  for (const json* g : {&got, &got33}) {
    std::set<int> seen;
    for (const auto& e : *g) {
      EXPECT_TRUE(seen.insert(e.at("n").get<int>()).second) << "duplicate " << e.dump();
      EXPECT_GE(e.at("n").get<int>(), 1);
      EXPECT_LE(e.at("n").get<int>(), published);
    }
  }
  EXPECT_TRUE(rpc(10).call("pubsub_unsubscribe", {"t1"}).is_null());
  EXPECT_EQ(rpc(10).call("pubsub_subscriptions"), json::array());
}

TEST_F(ApiDaemon, StreamMethodsOverHttp) {
  start();
  auto a = rpc(11), b = rpc(12);
  auto sid = a.call("stream_open", {daemon_->nodes[12].id});
  ASSERT_TRUE(sid.is_string()) << sid;
  std::string s = sid.get<std::string>();
  EXPECT_EQ(s.size(), 64u);
  EXPECT_EQ(a.call("stream_list"), json({{s, json::array({daemon_->nodes[12].id, 0})}}));
  EXPECT_EQ(a.call("stream_write", {s, "68656c6c6f"}), 5);
  EXPECT_TRUE(eventually([&] {
    auto l = b.call("stream_list");
    return l.contains(s) && l[s][1] == 5;
  }));
  EXPECT_EQ(b.call("stream_list")[s][0], daemon_->nodes[11].id);
  EXPECT_EQ(b.call("stream_read", {s, 2}), "6865");
  EXPECT_EQ(b.call("stream_read", {{"streamid", s}}), "6c6c6f");
  EXPECT_EQ(b.call("stream_read", {s}), "");
  EXPECT_EQ(b.call("stream_write", {{"streamid", s}, {"hexdata", "FF00"}}), 2);
  EXPECT_TRUE(eventually([&] { return a.call("stream_list")[s][1] == 2; }));
  EXPECT_EQ(a.call("stream_read", {s, nullptr}), "ff00");
  EXPECT_EQ(a.call("stream_close", {s}), true);
  EXPECT_TRUE(a.call("stream_read", {s}).is_null());
  EXPECT_TRUE(a.call("stream_write", {s, "00"}).is_null());
  EXPECT_EQ(a.call("stream_close", {s}), false);
  EXPECT_TRUE(eventually([&] { return b.call("stream_read", {s}).is_null(); }));
  EXPECT_EQ(a.call("stream_list"), json::object());
}

TEST_F(ApiDaemon, ErrorCodesOverHttp) {
  start();
  auto r = rpc(0);
  auto code = [](const json& resp) { return resp.at("error").at("code").get<int>(); };
  // -32700
  auto res = r.post_body("{\"jsonrpc\":\"2.0\",");
  EXPECT_EQ(res.status, 200);
  json j = json::parse(res.body);
  EXPECT_EQ(code(j), -32700);
  EXPECT_TRUE(j["id"].is_null());
  // -32600
  EXPECT_EQ(code(r.raw({{"jsonrpc", "1.0"}, {"id", 1}, {"method", "dht_id"}})), -32600);
  EXPECT_EQ(code(r.raw({{"jsonrpc", "2.0"}, {"id", 1}, {"method", 5}})), -32600);
  EXPECT_EQ(code(r.raw({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "dht_id"}, {"params", "x"}})), -32600);
  EXPECT_EQ(code(r.raw({{"jsonrpc", "2.0"}, {"id", json::object()}, {"method", "dht_id"}})), -32600);
  EXPECT_EQ(code(r.raw(json::array())), -32600);
  EXPECT_EQ(code(r.raw(5)), -32600);
  // -32601, id echoed
  j = r.raw({{"jsonrpc", "2.0"}, {"id", "abc"}, {"method", "no_such_method"}});
  EXPECT_EQ(code(j), -32601);
  EXPECT_EQ(j["id"], "abc");
  // -32602: count, type, bad hex, wrong id length, value too large, names
  EXPECT_EQ(r.error_code("dht_get", json::array()), -32602);
  EXPECT_EQ(r.error_code("dht_get", {"a", "b"}), -32602);
  EXPECT_EQ(r.error_code("dht_id", {1}), -32602);
  EXPECT_EQ(r.error_code("dht_get", {1}), -32602);
  EXPECT_EQ(r.error_code("dht_find", {std::string(40, 'z')}), -32602);
  EXPECT_EQ(r.error_code("dht_find", {"abcd"}), -32602);
  EXPECT_EQ(r.error_code("message_send", {std::string(42, 'a'), 1}), -32602);
  EXPECT_EQ(r.error_code("stream_close", {std::string(40, 'a')}), -32602);
  EXPECT_EQ(r.error_code("stream_write", {std::string(64, 'a'), "abc"}), -32602);
  EXPECT_EQ(r.error_code("stream_write", {std::string(64, 'a'), "zz"}), -32602);
  EXPECT_EQ(r.error_code("stream_read", {std::string(64, 'a'), -1}), -32602);
  EXPECT_EQ(r.error_code("stream_read", {std::string(64, 'a'), "1"}), -32602);
  EXPECT_EQ(r.error_code("dht_put", {"big", std::string(70 * 1024, 'x')}), -32602);
  EXPECT_EQ(r.error_code("pubsub_publish", {"t", std::string(9 * 1024, 'x')}), -32602);
  EXPECT_EQ(r.error_code("pubsub_subscribe", {std::string(300, 't')}), -32602);
  EXPECT_EQ(r.error_code("dht_get", {{"kee", "x"}}), -32602);
  EXPECT_EQ(r.error_code("dht_put", {{"key", "x"}}), -32602);
  j = r.request("dht_put", {"big", std::string(70 * 1024, 'x')});
  EXPECT_NE(j["error"]["message"].get<std::string>().find("too large"), std::string::npos) << j;
  // Batch: answers in order, notifications unanswered.
  json batch = json::array({{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "dht_id"}},
                            {{"jsonrpc", "2.0"}, {"method", "dht_id"}},
                            {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "nope"}},
                            7,
                            {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "dht_get"}, {"params", {{"key", "nothing"}}}}});
  j = r.raw(batch);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j[0]["result"], daemon_->nodes[0].id);
  EXPECT_EQ(code(j[1]), -32601);
  EXPECT_EQ(code(j[2]), -32600);
  EXPECT_EQ(j[3]["id"], 3);
  EXPECT_TRUE(j[3]["result"].is_null());
  // Notifications: no response at all.
  res = r.post_body(R"({"jsonrpc":"2.0","method":"dht_id"})");
  EXPECT_EQ(res.status, 204);
  EXPECT_TRUE(res.body.empty());
  res = r.post_body(R"([{"jsonrpc":"2.0","method":"dht_id"},{"jsonrpc":"2.0","method":"nope"}])");
  EXPECT_EQ(res.status, 204);
  // HTTP level: body cap, unknown path, wrong verb, deep nesting.
  res = r.post_body(std::string(2 * 1024 * 1024, ' '));
  EXPECT_EQ(res.status, 413);
  EXPECT_EQ(code(json::parse(res.body)), -32600);
  Rpc r2(daemon_->nodes[0].api_port, token());
  EXPECT_EQ(r2.get("/nope").status, 404);
  EXPECT_EQ(r2.get("/").status, 405);
  res = r2.post_body(std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_EQ(code(json::parse(res.body)), -32600);
  // The node is undisturbed.
  EXPECT_EQ(r2.call("dht_id"), daemon_->nodes[0].id);
  EXPECT_EQ(r2.call("dht_put", {"after", true}), true);
  // Metrics and health.
  res = r2.get("/metrics");
  EXPECT_EQ(res.status, 200);
  for (const char* m : {"storjnet_rpc_requests_total{method=\"kademlia_find_node\",direction=\"in\"}",
                        "storjnet_drops_total{reason=\"auth_failed\"}", "storjnet_dht_lookup_duration_seconds_bucket",
                        "storjnet_dht_lookup_rounds_bucket", "storjnet_dht_stored_values", "storjnet_queue_depth",
                        "storjnet_streams_open", "storjnet_api_calls_total{method=\"dht_put\"}",
                        "storjnet_api_errors_total{code=\"-32602\"}", "storjnet_api_errors_total{code=\"-32002\"}",
                        "storjnet_udp_kernel_drops_total", "storjnet_udp_send_queue_drops_total",
                        "storjnet_udp_buffer_bytes{direction=\"receive\"}"})
    EXPECT_NE(res.body.find(m), std::string::npos) << m;
  res = r2.get("/health");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(json::parse(res.body)["status"], "ok");
  // The status page shows the node's UDP socket (docs/api.md, GET /api/status "udp").
  res = r2.get("/api/status");
  EXPECT_EQ(res.status, 200);
  auto udp = json::parse(res.body)["udp"];
  EXPECT_GT(udp["rcvbuf"].get<int>(), 0) << udp.dump();
  EXPECT_EQ(udp["send_queue_drops"], 0) << udp.dump();
}

// Port mapping (docs/api.md, "port_mapping"): off for nodes on loopback (no router to ask), and off when asked;
// the netlab test (tests/netlab) maps for real.
TEST_F(ApiDaemon, PortMappingIsOffOnLoopbackAndWithTheFlag) {
  start(1);
  auto pm = json::parse(rpc(0).get("/api/status").body)["port_mapping"];
  EXPECT_EQ(pm["state"], "off") << pm.dump();
  EXPECT_EQ(pm["reason"], "bound to loopback") << pm.dump();
  EXPECT_EQ(rpc(0).get("/metrics").body.find("storjnet_port_mapping"), std::string::npos);
  EXPECT_EQ(daemon_->stop(), 0);
  start(1, {"--no-port-mapping"});
  pm = json::parse(rpc(0).get("/api/status").body)["port_mapping"];
  EXPECT_EQ(pm["enabled"], false) << pm.dump();
  EXPECT_EQ(pm["reason"], "--no-port-mapping") << pm.dump();
  EXPECT_EQ(daemon_->stop(), 0);
}

TEST_F(ApiDaemon, RestartOnTheSameDataDirKeepsIdsAndValues) {
  start();
  std::vector<std::string> ids;
  for (auto& n : daemon_->nodes) ids.push_back(n.id);
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(rpc(i * 5).call("dht_put", {"persist-" + std::to_string(i), {{"i", i}}}), true);
  ASSERT_EQ(daemon_->stop(SIGTERM), 0);
  EXPECT_EQ(daemon_->lines.back(), "storjnetd: stopped");

  daemon_ = std::make_unique<Daemon>();
  std::vector<std::string> args = {"--nodes",    std::to_string(kNodes),       "--port",      std::to_string(base_),
                                   "--api-port", std::to_string(base_ + kNodes), "--host",    "127.0.0.1",
                                   "--data-dir", dir_ + "/data",               "--log-level", "warn"};
  ASSERT_TRUE(daemon_->start(args));
  ASSERT_EQ(daemon_->nodes.size(), static_cast<size_t>(kNodes));
  for (int i = 0; i < kNodes; ++i) EXPECT_EQ(daemon_->nodes[i].id, ids[i]);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rpc(49 - i * 3).call("dht_get", {"persist-" + std::to_string(i)}), json({{"i", i}}));
  EXPECT_FALSE(rpc(17).call("dht_peers").empty());
  EXPECT_EQ(daemon_->stop(SIGINT), 0);
}

TEST_F(ApiDaemon, EightConcurrentClientsGetCorrectAnswers) {
  start();
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  std::vector<std::string> errors(8);
  const std::string tok = token();
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      try {
        int a = t * 6, b = t * 6 + 3;
        Rpc ra(daemon_->nodes[a].api_port, tok), rb(daemon_->nodes[b].api_port, tok);
        std::string topic = "topic-" + std::to_string(t);
        ra.call("pubsub_subscribe", {topic});
        for (int i = 0; i < 10; ++i) {
          std::string key = "c-" + std::to_string(t) + "-" + std::to_string(i);
          if (ra.call("dht_put", {key, {{"t", t}, {"i", i}}}) != true) throw std::runtime_error("put " + key);
          if (rb.call("dht_get", {key}) != json({{"t", t}, {"i", i}})) throw std::runtime_error("get " + key);
          if (ra.call("dht_id") != daemon_->nodes[a].id) throw std::runtime_error("id");
          if (rb.call("dht_peers").empty()) throw std::runtime_error("peers");
          if (ra.call("message_send", {daemon_->nodes[b].id, i}) != true) throw std::runtime_error("send");
          if (ra.error_code("dht_find", {"xyz"}) != -32602) throw std::runtime_error("error code");
          auto subs = ra.call("pubsub_subscriptions");
          if (std::find(subs.begin(), subs.end(), json(topic)) == subs.end()) throw std::runtime_error("subscriptions");
          json batch = ra.raw(json::array({{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "dht_id"}},
                                           {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "dht_get"}, {"params", {key}}}}));
          if (batch.size() != 2 || batch[1]["result"] != json({{"t", t}, {"i", i}})) throw std::runtime_error("batch");
        }
        json msgs = rb.call("message_list");
        json want = json::array();
        for (int i = 0; i < 10; ++i) want.push_back(i);
        if (msgs[daemon_->nodes[a].id] != want) throw std::runtime_error("message_list " + msgs.dump());
        auto sid = ra.call("stream_open", {daemon_->nodes[b].id});
        if (!sid.is_string()) throw std::runtime_error("stream_open");
        if (ra.call("stream_write", {sid, "0102"}) != 2) throw std::runtime_error("stream_write");
        if (ra.call("stream_close", {sid}) != true) throw std::runtime_error("stream_close");
      } catch (const std::exception& e) {
        errors[t] = e.what();
        ++failures;
      }
    });
  }
  for (auto& c : clients) c.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(errors[t], "") << "client " << t;
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(daemon_->stop(), 0);
}

TEST_F(ApiDaemon, TokenIsRequiredOffLoopbackAndChecked) {
  Daemon d;
  ASSERT_FALSE(d.start({"--nodes", "1", "--port", "0", "--api-port", "0", "--api-host", "0.0.0.0", "--data-dir",
                        dir_ + "/t"}));
  EXPECT_EQ(d.wait_exit(), 2);
  start(2, {"--api-host", "0.0.0.0", "--api-token", "s3cret"});
  Rpc no_token(daemon_->nodes[1].api_port);
  EXPECT_EQ(no_token.post_body(R"({"jsonrpc":"2.0","id":1,"method":"dht_id"})").status, 401);
  EXPECT_EQ(no_token.get("/metrics").status, 401);
  EXPECT_EQ(no_token.get("/health").status, 200);
  Rpc wrong(daemon_->nodes[1].api_port, "nope");
  EXPECT_EQ(wrong.post_body(R"({"jsonrpc":"2.0","id":1,"method":"dht_id"})").status, 401);
  Rpc with(daemon_->nodes[1].api_port, "s3cret");
  EXPECT_EQ(with.call("dht_id"), daemon_->nodes[1].id);
}

// With no token given, the daemon writes a random one to DATA_DIR/.cookie (owner-only) and requires it;
// a token can also come from a file or the environment (then no cookie is written).
TEST_F(ApiDaemon, CookieByDefaultOrATokenFromAFileOrTheEnvironment) {
  start(1);
  auto cookie = std::filesystem::path(dir_) / "data" / ".cookie";
  ASSERT_TRUE(std::filesystem::exists(cookie));
  EXPECT_EQ(std::filesystem::status(cookie).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(token().size(), 64u);
  Rpc none(daemon_->nodes[0].api_port);
  EXPECT_EQ(none.post_body(R"({"jsonrpc":"2.0","id":1,"method":"dht_id"})").status, 401);
  EXPECT_EQ(none.get("/metrics").status, 401);  // metrics need the token unless --api-public-metrics
  EXPECT_EQ(none.get("/health").status, 200);
  EXPECT_EQ(rpc(0).call("dht_id"), daemon_->nodes[0].id);
  EXPECT_EQ(rpc(0).get("/metrics").status, 200);
  EXPECT_EQ(daemon_->stop(), 0);
  EXPECT_FALSE(std::filesystem::exists(cookie));  // removed on a clean stop

  std::ofstream(dir_ + "/token.txt") << "from-a-file\n";
  start(1, {"--api-token-file", dir_ + "/token.txt", "--api-public-metrics"});
  EXPECT_FALSE(std::filesystem::exists(cookie));
  EXPECT_EQ(Rpc(daemon_->nodes[0].api_port, "from-a-file").call("dht_id"), daemon_->nodes[0].id);
  EXPECT_EQ(Rpc(daemon_->nodes[0].api_port).get("/metrics").status, 200);
  EXPECT_EQ(daemon_->stop(), 0);

  ::setenv("STORJNET_API_TOKEN", "from-the-environment", 1);
  start(1);
  ::unsetenv("STORJNET_API_TOKEN");
  EXPECT_FALSE(std::filesystem::exists(cookie));
  EXPECT_EQ(Rpc(daemon_->nodes[0].api_port, "from-the-environment").call("dht_id"), daemon_->nodes[0].id);
  EXPECT_EQ(Rpc(daemon_->nodes[0].api_port, "wrong").post_body(R"({"jsonrpc":"2.0","id":1,"method":"dht_id"})").status,
            401);
  EXPECT_EQ(daemon_->stop(), 0);
}

TEST_F(ApiDaemon, BadFlagsAndUnusablePortsOrDirsExitWithTwo) {
  auto run = [&](std::vector<std::string> args) {
    Daemon d;
    EXPECT_FALSE(d.start(args));
    return d.wait_exit();
  };
  EXPECT_EQ(run({"--no-such-flag"}), 2);
  EXPECT_EQ(run({"--nodes", "0", "--data-dir", dir_ + "/x"}), 2);
  EXPECT_EQ(run({"--threads", "0", "--data-dir", dir_ + "/x"}), 2);
  EXPECT_EQ(run({"--nodes", "10", "--port", "65530", "--data-dir", dir_ + "/x"}), 2);
  EXPECT_EQ(run({"--port", "0", "--api-port", "0", "--host", "not-an-ip", "--data-dir", dir_ + "/x"}), 2);
  EXPECT_EQ(run({"--port", "0", "--api-port", "0", "--log-level", "loud", "--data-dir", dir_ + "/x"}), 2);
  EXPECT_EQ(run({"--port", "0", "--api-port", "0", "--network-id", "xyz", "--data-dir", dir_ + "/x"}), 2);
  // A data dir that is a file.
  std::ofstream(dir_ + "/file") << "x";
  EXPECT_EQ(run({"--port", "0", "--api-port", "0", "--data-dir", dir_ + "/file"}), 2);
  // Ports taken by a running daemon, and its data dir locked.
  start(2);
  EXPECT_EQ(run({"--nodes", "2", "--port", "0", "--api-port", std::to_string(daemon_->nodes[1].api_port), "--data-dir",
                 dir_ + "/other"}),
            2);
  EXPECT_EQ(run({"--nodes", "2", "--port", std::to_string(base_), "--api-port", "0", "--host", "127.0.0.1",
                 "--data-dir", dir_ + "/other2"}),
            2);
  EXPECT_EQ(run({"--nodes", "2", "--port", "0", "--api-port", "0", "--data-dir", dir_ + "/data"}), 2);
  // Config file.
  std::ofstream(dir_ + "/conf.toml") << "nodes = 2\nport = 0\napi-port = 0\nhost = \"127.0.0.1\"\ndata-dir = \"" << dir_
                                     << "/fromconf\"\n";
  Daemon d;
  ASSERT_TRUE(d.start({"--config", dir_ + "/conf.toml"}));
  EXPECT_EQ(d.nodes.size(), 2u);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/fromconf/node-1/identity.key"));
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(daemon_->stop(), 0);
}

}  // namespace
