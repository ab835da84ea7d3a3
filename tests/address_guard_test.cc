// AddressGuard (src/engine/address_guard.h) driven by hand: the 3x rule while unproven, proven pairs kept
// apart from the unproven table, and both bounded.
#include "engine/address_guard.h"

#include <gtest/gtest.h>

using namespace storjnet;

namespace {
PublicKey key_of(uint32_t i) {
  PublicKey pk{};
  for (int b = 0; b < 4; ++b) pk[b] = static_cast<uint8_t>(i >> (8 * b));
  pk[31] = 0x5a;
  return pk;
}
Endpoint ep_of(uint32_t i) { return Endpoint::v4(0x0a000000u | (i & 0xffffff), 4000); }
}  // namespace

TEST(AddressGuard, AnUnprovenPairGetsThreeTimesWhatItSentAndAProvenOneAnything) {
  DropCounters drops;
  AddressGuard g(AmplificationLimits{}, drops);
  TimePoint t{};
  Endpoint a = ep_of(1), b = ep_of(2);
  PublicKey k = key_of(1);
  g.received(a, k, 100, t);
  EXPECT_TRUE(g.allow(a, k, 300, false, t));
  EXPECT_FALSE(g.allow(a, k, 1, false, t));  // the 3x budget is spent
  EXPECT_TRUE(g.allow(b, k, 5000, true, t));  // our own initiative towards an address never heard from
  g.prove(a, k, t);
  EXPECT_TRUE(g.proven(a, k));
  EXPECT_FALSE(g.proven(a, key_of(2)));  // straight after the same address: the proof is for that key
  EXPECT_TRUE(g.proven(a, k));
  EXPECT_FALSE(g.proven(b, k));         // the proof is for that address
  EXPECT_FALSE(g.proven(a, key_of(2))); // and that key
  EXPECT_TRUE(g.allow(a, k, 1 << 20, false, t));
  EXPECT_FALSE(g.echo(a, k, 12345, t));  // proven: no challenge outstanding
  EXPECT_EQ(g.entries(), 1u);
}

TEST(AddressGuard, AFloodOfUnprovenPairsNeverEvictsAProvenOne) {
  DropCounters drops;
  AmplificationLimits lim;
  lim.max_entries = 64;
  AddressGuard g(lim, drops);
  TimePoint t{};
  g.received(ep_of(0), key_of(0), 100, t);
  g.prove(ep_of(0), key_of(0), t);
  for (uint32_t i = 1; i < 10000; ++i) g.received(ep_of(i), key_of(i), 100, t + std::chrono::milliseconds(i));
  EXPECT_TRUE(g.proven(ep_of(0), key_of(0)));
  EXPECT_LE(g.entries(), 2 * lim.max_entries);
  // Proven pairs are bounded too: the least recently used go first.
  for (uint32_t i = 1; i < 1000; ++i) g.prove(ep_of(i), key_of(i), t + std::chrono::seconds(20 + i));
  EXPECT_LE(g.entries(), 2 * lim.max_entries);
  EXPECT_TRUE(g.proven(ep_of(999), key_of(999)));
  EXPECT_FALSE(g.proven(ep_of(0), key_of(0)));  // the oldest proof was evicted
}

TEST(AddressGuard, HeldAnswersAreReleasedOnceTheAddressIsProven) {
  DropCounters drops;
  AddressGuard g(AmplificationLimits{}, drops);
  TimePoint t{};
  Endpoint a = ep_of(7);
  PublicKey k = key_of(7);
  g.received(a, k, 10, t);
  EXPECT_FALSE(g.allow(a, k, 100, false, t));
  EXPECT_TRUE(g.hold(a, k, Bytes(100, 1), t));
  uint64_t token = g.challenge_token(a, k, 99, t);
  EXPECT_TRUE(g.echo(a, k, token, t));
  EXPECT_TRUE(g.proven(a, k));
  auto out = g.release(a, k);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].size(), 100u);
  EXPECT_FALSE(g.holding());
  EXPECT_EQ(g.entries(), 1u);  // only the proof is left
}

TEST(AddressGuard, AnIdleUnprovenPairIsForgottenAndComesBackWithNoWiderBudget) {
  DropCounters drops;
  AddressGuard g(AmplificationLimits{}, drops);
  TimePoint t = std::chrono::hours(1);
  for (uint32_t i = 0; i < 500; ++i) g.received(ep_of(i), key_of(i), 100, t);  // answered once, never again
  Endpoint a = ep_of(1000);
  PublicKey k = key_of(1000);
  g.received(a, k, 100, t);
  EXPECT_TRUE(g.allow(a, k, 300, false, t));  // its budget is spent
  Endpoint h = ep_of(2000);
  PublicKey hk = key_of(2000);
  g.received(h, hk, 10, t);
  EXPECT_TRUE(g.hold(h, hk, Bytes(100, 1), t));  // an answer waits for its proof
  EXPECT_EQ(g.entries(), 502u);

  TimePoint later = t + AddressGuard::kUnprovenIdle;
  g.received(ep_of(5000), key_of(5000), 100, later);  // a new pair: the idle ones are forgotten meanwhile
  EXPECT_EQ(g.entries(), 2u);                         // the new one, and the one with an answer held
  EXPECT_TRUE(g.holding());
  // The forgotten peer starts again from what arrives next: three times that, no more.
  g.received(a, k, 10, later);
  EXPECT_FALSE(g.allow(a, k, 31, false, later));
  EXPECT_TRUE(g.allow(a, k, 30, false, later));
}
