// The real driver's LAN address (src/real/lan_address.h): a bound private address is the LAN address; a
// loopback or public one is none; a wildcard bind takes the kernel's source address towards a public
// destination, when that is private (none on a host whose route has a public source, or no route).
#include <gtest/gtest.h>

#include "real/lan_address.h"

using namespace storjnet;
using Clock = std::chrono::steady_clock;

TEST(LanAddress, ABoundPrivateAddressIsTheLanAddressLoopbackAndPublicAreNone) {
  real::LanAddress lan;
  auto now = Clock::now();
  auto v4 = Endpoint::Family::kV4;
  EXPECT_EQ(lan.get(v4, *Endpoint::parse("192.168.1.7:4000"), now), Endpoint::parse("192.168.1.7:4000"));
  EXPECT_EQ(lan.get(v4, *Endpoint::parse("10.1.2.3:4001"), now), Endpoint::parse("10.1.2.3:4001"));
  EXPECT_FALSE(lan.get(v4, *Endpoint::parse("127.0.0.1:4000"), now));
  EXPECT_FALSE(lan.get(v4, *Endpoint::parse("198.18.0.11:4000"), now));
  EXPECT_FALSE(lan.get(Endpoint::Family::kV6, *Endpoint::parse("192.168.1.7:4000"), now));  // other family
  EXPECT_EQ(lan.get(Endpoint::Family::kV6, *Endpoint::parse("[fd00::5]:4000"), now), Endpoint::parse("[fd00::5]:4000"));
}

TEST(LanAddress, AWildcardBindTakesTheRouteSourceWhenItIsPrivate) {
  real::LanAddress lan;
  auto bound = *Endpoint::parse("0.0.0.0:4000");
  auto got = lan.get(Endpoint::Family::kV4, bound, Clock::now());
  auto src = real::route_source(Endpoint::Family::kV4);
  if (src && !src->is_loopback() && src->is_private_or_loopback()) {
    ASSERT_TRUE(got);
    EXPECT_EQ(got->addr, src->addr);
    EXPECT_EQ(got->port, 4000);
  } else {
    EXPECT_FALSE(got);  // no route, or a public source address: no LAN address
  }
}
