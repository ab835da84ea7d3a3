// The JSON-RPC dispatcher without HTTP: request validation, error codes, batches, notifications, named
// params, and a few methods against nodes on a RealDriver.
#include <gtest/gtest.h>

#include <future>

#include "api/file_transfers.h"
#include "api/http_client.h"
#include "api/json_rpc.h"
#include "api/metrics.h"
#include "storjnet/real_driver.h"
#include "temp_dir.h"

using namespace storjnet;
using api::json;

namespace {

class Dispatch : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lo = *Endpoint::parse("127.0.0.1:1");
    lo.port = 0;
    for (int i = 0; i < 2; ++i) nodes_.push_back(&driver_.add_node(lo, Identity::generate()));
    for (int i = 0; i < 2; ++i) {
      Node* n = nodes_[i];
      runners_.push_back([this, n](std::function<void(Node&)> fn) { driver_.post([n, fn = std::move(fn)] { fn(*n); }); });
      dispatchers_.push_back(std::make_unique<api::Dispatcher>(runners_.back()));
    }
  }
  void TearDown() override { driver_.stop(); }

  // The response to `body` (nullopt: none), waiting for the node.
  std::optional<json> send(const std::string& body, int node = 0) {
    std::promise<std::optional<json>> p;
    dispatchers_[node]->handle_body(body, [&p](std::optional<json> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  json call(const std::string& method, json params, int node = 0) {
    auto r = send(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}}.dump(), node);
    return r ? *r : json();
  }
  int code(const std::string& method, json params) {
    json r = call(method, params);
    return r.contains("error") ? r["error"]["code"].get<int>() : 0;
  }

  RealDriver driver_;
  std::vector<Node*> nodes_;
  std::vector<api::NodeRunner> runners_;
  std::vector<std::unique_ptr<api::Dispatcher>> dispatchers_;
};

TEST(DispatchPut, AFailedPutAnswersAnErrorThatSaysWhy) {
  // A node alone: no replica can acknowledge, so the put fails once put_timeout has passed.
  RealDriver driver;
  NodeConfig cfg;
  cfg.dht.put_timeout = 300ms;
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;  // any free port
  Node& n = driver.add_node(lo, Identity::generate(), cfg);
  api::Dispatcher d([&driver, &n](std::function<void(Node&)> fn) { driver.post([&n, fn = std::move(fn)] { fn(n); }); });
  std::promise<std::optional<json>> p;
  d.handle_body(R"({"jsonrpc":"2.0","id":7,"method":"dht_put","params":["k",1]})",
                [&p](std::optional<json> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  driver.stop();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->contains("error")) << r->dump();
  EXPECT_EQ((*r)["error"]["code"], api::kNotStored);
  EXPECT_EQ((*r)["error"]["message"], "not stored: no node among the k closest acknowledged the store");
}

TEST_F(Dispatch, ParseErrorAndInvalidRequests) {
  for (std::string body : {"", "{", "nul", "[1,", "\"\\x\""}) {
    auto r = send(body);
    ASSERT_TRUE(r) << body;
    EXPECT_EQ((*r)["error"]["code"], -32700) << body;
    EXPECT_TRUE((*r)["id"].is_null());
  }
  for (std::string body : {"5", "\"x\"", "null", "[]", R"({"method":"dht_id","id":1})", R"({"jsonrpc":2,"method":"dht_id","id":1})",
                           R"({"jsonrpc":"2.0","id":1})", R"({"jsonrpc":"2.0","method":["dht_id"],"id":1})",
                           R"({"jsonrpc":"2.0","method":"dht_id","id":[1]})", R"({"jsonrpc":"2.0","method":"dht_id","params":3,"id":1})"}) {
    auto r = send(body);
    ASSERT_TRUE(r) << body;
    EXPECT_EQ((*r)["error"]["code"], -32600) << body;
  }
  auto deep = send(std::string(1000, '[') + std::string(1000, ']'));
  ASSERT_TRUE(deep);
  EXPECT_EQ((*deep)["error"]["code"], -32600);
}

TEST_F(Dispatch, MethodNotFoundEchoesTheId) {
  auto r = send(R"({"jsonrpc":"2.0","method":"dht_nope","id":"q"})");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["error"]["code"], -32601);
  EXPECT_EQ((*r)["id"], "q");
  EXPECT_FALSE(send(R"({"jsonrpc":"2.0","method":"dht_nope"})"));  // notification: no answer even for errors
}

TEST_F(Dispatch, InvalidParams) {
  EXPECT_EQ(code("dht_id", {1}), -32602);
  EXPECT_EQ(code("dht_get", json::array()), -32602);
  EXPECT_EQ(code("dht_get", {json::array()}), -32602);
  EXPECT_EQ(code("dht_get", {std::string(5000, 'k')}), -32602);
  EXPECT_EQ(code("dht_put", {"k", std::string(64 * 1024, 'v')}), -32602);  // 64 KiB + quotes
  EXPECT_EQ(code("dht_find", {"0123456789abcdef0123456789abcdef0123456g"}), -32602);
  EXPECT_EQ(code("dht_find", {"0123456789abcdef0123456789abcdef01234567aa"}), -32602);
  EXPECT_EQ(code("stream_read", {std::string(64, '0'), -5}), -32602);
  EXPECT_EQ(code("stream_read", {std::string(64, '0'), 1.5}), -32602);
  EXPECT_EQ(code("stream_read", {std::string(63, '0')}), -32602);
  EXPECT_EQ(code("stream_write", {std::string(64, '0'), "abc"}), -32602);
  EXPECT_EQ(code("message_send", {nodes_[1]->id().hex(), std::string(kMaxMessageJson, 'm')}), -32602);
  EXPECT_EQ(code("pubsub_events", {""}), -32602);
  EXPECT_EQ(code("dht_get", {{"key", "a"}, {"extra", 1}}), -32602);
  EXPECT_EQ(code("dht_put", {{"value", 1}}), -32602);
  auto r = call("dht_find", {"abcd"});
  EXPECT_NE(r["error"]["message"].get<std::string>().find("length"), std::string::npos) << r;
  r = call("dht_find", {std::string(40, 'x')});
  EXPECT_NE(r["error"]["message"].get<std::string>().find("hex"), std::string::npos) << r;
}

TEST_F(Dispatch, NamedParamsBatchesAndNotifications) {
  EXPECT_EQ(call("dht_id", json::object())["result"], nodes_[0]->id().hex());
  EXPECT_EQ(call("dht_id", json::array(), 1)["result"], nodes_[1]->id().hex());
  auto r = send(json::array({{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "dht_id"}},
                             {{"jsonrpc", "2.0"}, {"method", "dht_id"}},
                             {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "stream_list"}},
                             {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "dht_get"}, {"params", {1}}}})
                    .dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0]["id"], 1);
  EXPECT_EQ((*r)[0]["result"], nodes_[0]->id().hex());
  EXPECT_EQ((*r)[1]["id"], 2);
  EXPECT_TRUE((*r)[1]["result"].is_object());
  EXPECT_EQ((*r)[2]["error"]["code"], -32602);
  EXPECT_FALSE(send(R"([{"jsonrpc":"2.0","method":"dht_id"},{"jsonrpc":"2.0","method":"dht_peers"}])"));
  EXPECT_FALSE(send(R"({"jsonrpc":"2.0","method":"message_list"})"));
}

TEST_F(Dispatch, StreamMethodsOnUnknownStreams) {
  std::string sid(64, 'a');
  EXPECT_TRUE(call("stream_read", {sid})["result"].is_null());
  EXPECT_TRUE(call("stream_write", {sid, "00"})["result"].is_null());
  EXPECT_EQ(call("stream_close", {sid})["result"], false);
  EXPECT_EQ(call("stream_list", json::array())["result"], json::object());
}

TEST_F(Dispatch, MetricsRenderAndCount) {
  call("dht_id", json::array());
  code("dht_get", json::array());
  std::string text = driver_.call([&] { return api::render_metrics(*nodes_[0], dispatchers_[0]->counters()); });
  EXPECT_NE(text.find("storjnet_api_calls_total{method=\"dht_id\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("storjnet_api_errors_total{code=\"-32602\"} 1"), std::string::npos);
  EXPECT_NE(text.find("# TYPE storjnet_dht_lookup_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("storjnet_drops_total{reason=\"replay\"} 0"), std::string::npos);
}

TEST(ApiUrl, Parses) {
  auto u = api::parse_api_url("http://127.0.0.1:5003");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 5003);
  EXPECT_EQ(u->target, "/");
  u = api::parse_api_url("http://[::1]:80/rpc");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->target, "/rpc");
  EXPECT_FALSE(api::parse_api_url("https://x:1"));
  EXPECT_FALSE(api::parse_api_url("http://x:99999"));
  EXPECT_FALSE(api::parse_api_url("http://:5"));
}

TEST(ApiJson, DepthIsBounded) {
  bool deep = false;
  EXPECT_FALSE(api::parse_json(std::string(100, '[') + std::string(100, ']'), &deep));
  EXPECT_TRUE(deep);
  EXPECT_TRUE(api::parse_json(std::string(10, '[') + std::string(10, ']')));
}

}  // namespace

namespace {

// The file_* methods: parameter checks, and a process without file transfers says so.
TEST_F(Dispatch, FileMethodsCheckTheirParams) {
  EXPECT_EQ(code("file_send", json::array({std::string(40, 'a'), "relative/path"})), api::kInvalidParams);
  EXPECT_EQ(code("file_receive", json::array({"dir"})), api::kInvalidParams);
  EXPECT_EQ(code("file_cancel", json::array({-1})), api::kInvalidParams);
  json r = call("file_transfers", json::array());
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["message"], "this process has no file transfers");
}

TEST_F(Dispatch, FileReceiveModeGoesOnAndOff) {
  api::FileTransfers files;
  api::Dispatcher d(runners_[0], {}, &files);
  auto ask = [&](const std::string& method, json params) {
    std::promise<std::optional<json>> p;
    d.handle_body(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}}.dump(),
                  [&p](std::optional<json> r) { p.set_value(std::move(r)); });
    return p.get_future().get().value_or(json());
  };
  auto dir = test::temp_dir("dispatch-files");
  json on = ask("file_receive", json{{"dir", dir.string()}, {"max_size", 1000}});
  EXPECT_EQ(on["result"], (json{{"dir", dir.string()}, {"max_size", 1000}})) << on.dump();
  EXPECT_EQ(ask("file_transfers", json::array())["result"],
            (json{{"receive", {{"dir", dir.string()}, {"max_size", 1000}}}, {"transfers", json::array()}}));
  json bad = ask("file_receive", json::array({(dir / "missing").string()}));
  EXPECT_EQ(bad["error"]["code"], api::kFileError) << bad.dump();
  EXPECT_EQ(ask("file_receive", json::array({nullptr}))["result"], json(nullptr));
  EXPECT_EQ(ask("file_cancel", json::array({12}))["result"], false);
  std::filesystem::remove_all(dir);
}

}  // namespace
