// CompactBucket (src/common/compact_bucket.h): the 8-byte token bucket of a session's budgets answers as
// TokenBucket does: many small refills add up exactly, a full bucket reads full, the millisecond stamp wraps
// at 2^32, and a gap of 2^31 ms or more refills it.
#include <gtest/gtest.h>

#include "common/compact_bucket.h"
#include "common/token_bucket.h"

using namespace storjnet;
using namespace std::chrono_literals;

TEST(CompactBucket, ManySmallRefillsAddUpAsOneLargeOne) {
  // 10 tokens/s: 3,000 refills 0.3 ms apart (900 ms) give 9 tokens, as one refill 900 ms later does (to a
  // float's rounding over 900 additions: about 1e-4 token).
  CompactBucket many{0, TimePoint{}}, one{0, TimePoint{}};
  TimePoint t{};
  for (int i = 0; i < 3000; ++i) {
    t += 300us;
    many.refill(10, 100, t);
  }
  one.refill(10, 100, t);
  EXPECT_NEAR(many.tokens, 9.0, 1e-3);
  EXPECT_NEAR(one.tokens, 9.0, 1e-4);
  TokenBucket wide{0, TimePoint{}};
  wide.refill(10, 100, t);
  EXPECT_NEAR(many.tokens, wide.tokens, 1e-3);
}

TEST(CompactBucket, TakesUntilEmptyAndRefillsToBurstThenReadsFull) {
  CompactBucket b{2, TimePoint{}};
  EXPECT_TRUE(b.take(1, 2, TimePoint{}));
  EXPECT_TRUE(b.take(1, 2, TimePoint{}));
  EXPECT_FALSE(b.take(1, 2, TimePoint{}));
  EXPECT_FALSE(b.full(2));
  b.refill(1, 2, TimePoint{10s});
  EXPECT_TRUE(b.full(2));
  // Bursts that are no float exactly still read full once refilled to them.
  for (double burst : {0.1, 0.3, 1.0 / 3, 7.7, 1e6 + 0.1}) {
    CompactBucket c{0, TimePoint{}};
    c.refill(burst, burst, TimePoint{1h});
    EXPECT_TRUE(c.full(burst)) << burst;
  }
}

TEST(CompactBucket, TheMillisecondStampWrapsAndALongGapRefills) {
  // Across the 2^32 ms wrap (49.7 days), one second still adds one second's tokens.
  TimePoint before_wrap = std::chrono::milliseconds((1ull << 32) - 500);
  CompactBucket b{0, before_wrap};
  b.refill(1, 10, before_wrap + 1s);
  EXPECT_NEAR(b.tokens, 1.0, 1e-6);
  // A gap of 2^31 ms (24.8 days) or more is one that refilled the bucket.
  CompactBucket idle{0, TimePoint{}};
  idle.refill(0.001, 3, std::chrono::milliseconds(1ull << 31));
  EXPECT_TRUE(idle.full(3));
}
