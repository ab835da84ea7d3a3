// A burst through one node's JSON-RPC API (issue 15, "bursts without loss"): 10 real nodes, one batch of 300
// dht_put to node 0 whose DHT gate is smaller than the burst. Every put answers true or the busy error
// (-32002), never a silent false, and every value that answered true is read back right through another node.
#include <gtest/gtest.h>

#include <future>

#include "api/json_rpc.h"
#include "storjnet/real_driver.h"

using namespace storjnet;
using api::json;

namespace {

struct Net {
  RealDriver driver;
  std::vector<Node*> nodes;
  std::vector<std::unique_ptr<api::Dispatcher>> dispatchers;

  Net(int n, api::Limits limits) {
    auto lo = *Endpoint::parse("127.0.0.1:1");
    lo.port = 0;
    for (int i = 0; i < n; ++i) {
      Node* node = &driver.add_node(lo, Identity::generate());
      nodes.push_back(node);
      api::NodeRunner run = [this, node](std::function<void(Node&)> fn) {
        driver.post([node, fn = std::move(fn)] { fn(*node); });
      };
      dispatchers.push_back(std::make_unique<api::Dispatcher>(run, limits));
    }
    auto ep0 = driver.local_endpoint(*nodes[0]);
    std::promise<void> joined;
    auto pending = std::make_shared<int>(n - 1);
    driver.post([&] {
      for (int i = 1; i < n; ++i)
        nodes[i]->dht().bootstrap({ep0}, [&joined, pending](bool) {
          if (--*pending == 0) joined.set_value();
        });
    });
    EXPECT_EQ(joined.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  }
  ~Net() { driver.stop(); }

  // The batch's answers by id, waiting at most `limit`.
  std::map<size_t, json> batch(int node, const json& requests, std::chrono::seconds limit = std::chrono::seconds(180)) {
    auto p = std::make_shared<std::promise<std::optional<json>>>();
    auto f = p->get_future();
    dispatchers[node]->handle(requests, [p](std::optional<json> r) { p->set_value(std::move(r)); });
    std::map<size_t, json> out;
    if (f.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "the batch was not answered within " << limit.count() << " s";
      return out;
    }
    auto r = f.get();
    if (!r || !r->is_array()) return out;
    for (auto& e : *r) out[e["id"].get<size_t>()] = e;
    return out;
  }
};

json request(const std::string& method, json params, size_t id) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
}

}  // namespace

TEST(ApiBurst, ABatchOfPutsAnswersTrueOrBusyAndEveryTruePutIsReadable) {
  const int kNodes = 10, kPuts = 300;
  api::Limits limits;
  limits.dht_gate = {.active = 32, .queued = 200, .queued_bytes = 16u << 20};  // smaller than the burst
  Net net(kNodes, limits);

  json puts = json::array();
  for (int i = 0; i < kPuts; ++i) puts.push_back(request("dht_put", {"burst-" + std::to_string(i), i}, i));
  auto answers = net.batch(0, puts);
  ASSERT_EQ(answers.size(), static_cast<size_t>(kPuts));
  std::vector<int> stored;
  int busy = 0;
  for (auto& [id, r] : answers) {
    if (r.contains("result")) {
      EXPECT_EQ(r["result"], true) << r.dump();
      stored.push_back(static_cast<int>(id));
      continue;
    }
    ASSERT_TRUE(r.contains("error")) << r.dump();
    EXPECT_EQ(r["error"]["code"], api::kBusy) << "put " << id << ": " << r.dump();
    EXPECT_TRUE(r["error"]["message"].get<std::string>().starts_with("busy")) << r.dump();
    ++busy;
  }
  // The gate takes 32 running and 200 waiting: at least those are stored; the rest may be refused, clearly.
  EXPECT_GE(stored.size(), 232u);
  EXPECT_LE(busy, kPuts - 232);
  EXPECT_EQ(net.dispatchers[0]->dht_gate_stats().refused, static_cast<uint64_t>(busy));
  EXPECT_EQ(net.dispatchers[0]->counters().errors[5].load(), static_cast<uint64_t>(busy));

  // Every stored value, read through another node (one batch per node).
  std::vector<json> gets(kNodes);
  for (size_t k = 0; k < stored.size(); ++k) {
    int node = 1 + static_cast<int>(k % (kNodes - 1));
    if (gets[node].is_null()) gets[node] = json::array();
    gets[node].push_back(request("dht_get", {"burst-" + std::to_string(stored[k])}, stored[k]));
  }
  size_t right = 0;
  for (int node = 1; node < kNodes; ++node) {
    if (gets[node].is_null()) continue;
    for (auto& [id, r] : net.batch(node, gets[node])) {
      EXPECT_EQ(r["result"], static_cast<int>(id)) << "get through node " << node << ": " << r.dump();
      right += r["result"] == static_cast<int>(id);
    }
  }
  EXPECT_EQ(right, stored.size());
}

TEST(ApiBurst, TheDefaultGateTakesABatchOfAThousandWithoutBusy) {
  // A burst the default gate queues whole (32 running, 4,096 waiting): nothing is refused.
  const int kNodes = 6, kPuts = 1000;
  Net net(kNodes, api::Limits{});
  json puts = json::array();
  for (int i = 0; i < kPuts; ++i) puts.push_back(request("dht_put", {"whole-" + std::to_string(i), "v"}, i));
  auto answers = net.batch(0, puts);
  ASSERT_EQ(answers.size(), static_cast<size_t>(kPuts));
  int busy = 0, other = 0;
  for (auto& [id, r] : answers) {
    if (r.contains("error")) (r["error"]["code"] == api::kBusy ? busy : other) += 1;
  }
  EXPECT_EQ(busy, 0);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(net.dispatchers[0]->dht_gate_stats().started, static_cast<uint64_t>(kPuts));
  EXPECT_EQ(net.dispatchers[0]->dht_gate_stats().active, 0u);
}
