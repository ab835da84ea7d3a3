// Dual-stack nodes over real UDP sockets (docs/protocol.md 5, "Addresses"; RealDriver::add_node with two
// addresses): one IPv4 and one IPv6 socket on the same port, each datagram sent on its destination's family;
// an IPv4-only and an IPv6-only node exchange a DHT value through dual-stack ones. Loopback only (127.0.0.1
// and ::1); it fails (never skips) when the host cannot bind the IPv6 loopback.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "real_await.h"
#include "storjnet/real_driver.h"

using namespace storjnet;

namespace {

using test::await;

Endpoint any_port(const char* ip) { return *Endpoint::from_ip(ip, 0); }

}  // namespace

TEST(DualStackReal, V4OnlyAndV6OnlyNodesShareValuesThroughDualStackNodes) {
  RealDriver driver;
  std::vector<Node*> dual;
  try {
    for (int i = 0; i < 4; ++i)
      dual.push_back(&driver.add_node({any_port("127.0.0.1"), any_port("::1")}, Identity::generate()));
  } catch (const std::runtime_error& e) {
    // Not a skip: a machine without ::1 (IPv6 disabled) cannot show dual-stack nodes, and CI must say so.
    FAIL() << "cannot bind the IPv6 loopback (::1): " << e.what();
  }
  auto eps = driver.local_endpoints(*dual[0]);
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].family, Endpoint::Family::kV4);
  EXPECT_EQ(eps[1].family, Endpoint::Family::kV6);
  EXPECT_EQ(eps[0].port, eps[1].port);  // the second socket takes the first one's port
  EXPECT_THROW(driver.add_node({any_port("127.0.0.1"), any_port("127.0.0.1")}, Identity::generate()),
               std::invalid_argument);
  for (size_t i = 1; i < dual.size(); ++i)
    ASSERT_TRUE(await<bool>(driver, [&](auto done) { dual[i]->dht().bootstrap(eps, done); }));
  Node& v4 = driver.add_node(any_port("127.0.0.1"), Identity::generate());
  Node& v6 = driver.add_node(any_port("::1"), Identity::generate());
  ASSERT_TRUE(await<bool>(driver, [&](auto done) { v4.dht().bootstrap({eps[0]}, done); }));
  ASSERT_TRUE(await<bool>(driver, [&](auto done) { v6.dht().bootstrap({eps[1]}, done); }));

  // The dual-stack seed heard every other dual-stack node on both families (the second address enters once
  // its check ping is answered there: polled, with a deadline).
  auto both = [&] {
    return driver.call(*dual[0], [&] {
      size_t n = 0;
      for (const Contact& c : dual[0]->dht().peers()) n += c.alt.valid() && c.alt.family != c.endpoint.family;
      return n;
    });
  };
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (both() < dual.size() - 1 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(both(), dual.size() - 1);
  // The v6-only node knows the dual-stack nodes at their IPv6 addresses only.
  driver.call(v6, [&] {
    for (const Contact& c : v6.dht().peers()) EXPECT_EQ(c.endpoint.family, Endpoint::Family::kV6);
  });

  auto put = await<PutResult>(driver, [&](auto done) {
    v4.dht().put("dual-real", as_bytes(std::string("from v4")), [done](const PutResult& r) { done(r); });
  });
  ASSERT_TRUE(put.ok) << put.error;
  auto got = await<GetResult>(driver, [&](auto done) { v6.dht().get("dual-real", v4.id(), done); });
  ASSERT_TRUE(got.value);
  EXPECT_EQ(std::string(got.value->begin(), got.value->end()), "from v4");
}
