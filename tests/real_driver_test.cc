#include <gtest/gtest.h>

#include <future>

#include "storjnet/real_driver.h"

using namespace storjnet;

TEST(RealDriver, ThreeNodesPingAndStunOverLoopback) {
  RealDriver driver;
  std::vector<Node*> nodes;
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  for (int i = 0; i < 3; ++i) nodes.push_back(&driver.add_node(lo, Identity::generate()));
  std::vector<Endpoint> eps;
  for (auto* n : nodes) eps.push_back(driver.local_endpoint(*n));
  for (auto& e : eps) EXPECT_NE(e.port, 0);

  // Every node pings every other by address (first contact), then stuns it.
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = 0; j < 3; ++j) {
      if (i == j) continue;
      std::promise<std::optional<Contact>> p;
      driver.post([&] { nodes[i]->ping_address(eps[j], [&p](auto c) { p.set_value(c); }); });
      auto c = p.get_future().get();
      ASSERT_TRUE(c) << i << "->" << j;
      EXPECT_EQ(c->id, driver.call([&] { return nodes[j]->id(); }));
      std::promise<std::optional<Endpoint>> s;
      driver.post([&] { nodes[i]->stun(*c, [&s](auto e) { s.set_value(e); }); });
      auto seen = s.get_future().get();
      ASSERT_TRUE(seen);
      EXPECT_EQ(*seen, eps[i]);
    }
  }
}

TEST(RealDriver, BindFailureIsAClearError) {
  RealDriver driver;
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  Node& n = driver.add_node(lo, Identity::generate());
  Endpoint taken = driver.local_endpoint(n);
  try {
    driver.add_node(taken, Identity::generate());
    FAIL() << "second bind on a taken port succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot bind"), std::string::npos);
  }
}
