// The DHT over real UDP sockets on 127.0.0.1: 20 nodes in one process, and a restart from SQLite.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "real_await.h"
#include "storjnet/real_driver.h"

using namespace storjnet;

namespace {

Endpoint loopback_any() {
  auto e = *Endpoint::parse("127.0.0.1:1");
  e.port = 0;
  return e;
}

using test::await;

struct Network {
  RealDriver driver;
  std::vector<Node*> nodes;
  std::vector<Endpoint> eps;

  void add(size_t n, NodeConfig cfg = {}) {
    for (size_t i = 0; i < n; ++i) {
      nodes.push_back(&driver.add_node(loopback_any(), Identity::generate(), cfg));
      eps.push_back(driver.local_endpoint(*nodes.back()));
    }
  }
  bool join_all() {
    for (size_t i = 1; i < nodes.size(); ++i)
      if (!await<bool>(driver, [&](auto done) { nodes[i]->dht().bootstrap({eps[0]}, done); })) return false;
    return true;
  }
};

}  // namespace

TEST(DhtReal, TwentyNodesPutGetFindStunPeers) {
  Network net;
  net.add(20);
  ASSERT_TRUE(net.join_all());

  for (int j = 0; j < 10; ++j) {
    std::string key = "real-key-" + std::to_string(j), value = "value-" + std::to_string(j * 7);
    auto put = await<PutResult>(net.driver, [&](auto done) {
      net.nodes[j]->dht().put(key, as_bytes(value), [done](const PutResult& r) { done(r); });
    });
    EXPECT_TRUE(put.ok) << put.error;
    auto got = await<GetResult>(net.driver, [&](auto done) { net.nodes[19 - j]->dht().get(key, done); });
    ASSERT_TRUE(got.value) << key;
    EXPECT_EQ(std::string(got.value->begin(), got.value->end()), value);
  }
  auto missing = await<GetResult>(net.driver, [&](auto done) { net.nodes[3]->dht().get("never-put", done); });
  EXPECT_FALSE(missing.value);

  // dht_find: online node, self (its own address as stun sees it), and offline.
  NodeId target = net.driver.call([&] { return net.nodes[12]->id(); });
  auto online = await<std::optional<Endpoint>>(net.driver, [&](auto done) { net.nodes[4]->dht().find(target, done); });
  ASSERT_TRUE(online);
  EXPECT_EQ(*online, net.eps[12]);
  NodeId self_id = net.driver.call([&] { return net.nodes[4]->id(); });
  auto self = await<std::optional<Endpoint>>(net.driver, [&](auto done) { net.nodes[4]->dht().find(self_id, done); });
  ASSERT_TRUE(self);
  EXPECT_EQ(*self, net.eps[4]);
  auto stun = await<std::optional<Endpoint>>(net.driver, [&](auto done) { net.nodes[7]->dht().stun(done); });
  ASSERT_TRUE(stun);
  EXPECT_EQ(*stun, net.eps[7]);

  auto peers = net.driver.call([&] { return net.nodes[5]->dht().peers(); });
  EXPECT_GE(peers.size(), 10u);
  for (auto& p : peers) {
    auto it = std::find(net.eps.begin(), net.eps.end(), p.endpoint);
    ASSERT_NE(it, net.eps.end()) << p.endpoint.to_string();
    size_t idx = static_cast<size_t>(it - net.eps.begin());
    EXPECT_EQ(p.id, net.driver.call([&] { return net.nodes[idx]->id(); }));
  }

  {
    // A node that joins and then goes away.
    RealDriver other;
    Node& gone = other.add_node(loopback_any(), Identity::generate());
    ASSERT_TRUE(await<bool>(other, [&](auto done) { gone.dht().bootstrap({net.eps[0]}, done); }));
    NodeId gone_id = other.call([&] { return gone.id(); });
    auto seen = await<std::optional<Endpoint>>(net.driver, [&](auto done) { net.nodes[9]->dht().find(gone_id, done); });
    EXPECT_TRUE(seen);
    other.stop();
    auto t0 = std::chrono::steady_clock::now();
    auto offline = await<std::optional<Endpoint>>(net.driver, [&](auto done) { net.nodes[9]->dht().find(gone_id, done); });
    EXPECT_FALSE(offline);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(6));
  }

}

TEST(DhtReal, RestartFromSqliteServesValuesAndRejoinsWithoutSeeds) {
  auto dir = std::filesystem::temp_directory_path() / ("storjnet-restart-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  Network others;
  others.add(8);
  ASSERT_TRUE(others.join_all());
  NodeId first_id;
  {
    RealDriver d;
    Node& n = d.add_node(loopback_any(), Identity::load_or_create(dir), {}, make_sqlite_storage(dir / "dht.sqlite"));
    first_id = d.call([&] { return n.id(); });
    ASSERT_TRUE(await<bool>(d, [&](auto done) { n.dht().bootstrap({others.eps[0]}, done); }));
    for (int j = 0; j < 5; ++j) {
      std::string key = "persist-" + std::to_string(j);
      auto r = await<PutResult>(d, [&](auto done) { n.dht().put(key, as_bytes(key + "!"), [done](const PutResult& x) { done(x); }); });
      ASSERT_TRUE(r.ok);
    }
    d.call([&] { n.dht().flush(); });
  }  // stopped: socket closed, node destroyed
  RealDriver d;
  Node& n = d.add_node(loopback_any(), Identity::load_or_create(dir), {}, make_sqlite_storage(dir / "dht.sqlite"));
  EXPECT_EQ(d.call([&] { return n.id(); }), first_id);
  // No seeds: it rejoins through the routing table it saved.
  ASSERT_TRUE(await<bool>(d, [&](auto done) { n.dht().bootstrap({}, done); }));
  EXPECT_GE(d.call([&] { return n.dht().peers().size(); }), 5u);
  for (int j = 0; j < 5; ++j) {
    std::string key = "persist-" + std::to_string(j);
    auto got = await<GetResult>(d, [&](auto done) { n.dht().get(key, done); });
    ASSERT_TRUE(got.value);
    EXPECT_TRUE(got.local);  // served from its own store, as acknowledged before the restart
    EXPECT_EQ(std::string(got.value->begin(), got.value->end()), key + "!");
  }
  // And the others reach it again under its new address.
  auto found = await<std::optional<Endpoint>>(others.driver, [&](auto done) { others.nodes[3]->dht().find(first_id, done); });
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, d.local_endpoint(n));
  d.stop();
  std::filesystem::remove_all(dir);
}
