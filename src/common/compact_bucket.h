// CompactBucket: a TokenBucket (common/token_bucket.h) in 8 bytes instead of 16, for budgets held once per peer
// by the hundred (an engine's sessions): the tokens as a float, the time of the last refill in whole
// milliseconds modulo 2^32. Elapsed time is the difference of two truncated stamps, so the refills of many
// calls add up exactly (no time is lost to rounding; the bucket lags real time by under 1 ms). A gap of 2^31 ms
// (24.8 days) or more reads as one that refilled the bucket, as it would have at any rate: refills then answer
// the same as TokenBucket's whatever the gap. Time never goes backwards in an engine (Environment::now).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>

#include "storjnet/environment.h"

namespace storjnet {

struct CompactBucket {
  float tokens = 0;
  uint32_t at_ms = 0;

  CompactBucket() = default;
  CompactBucket(double initial, TimePoint now) : tokens(static_cast<float>(initial)), at_ms(stamp(now)) {}

  void refill(double rate, double burst, TimePoint now) {
    uint32_t ms = stamp(now);
    uint32_t elapsed = ms - at_ms;
    at_ms = ms;
    double t = elapsed >= (1u << 31) ? burst : std::min(burst, tokens + elapsed * rate / 1000.0);
    tokens = static_cast<float>(t);
  }
  // Whether the bucket holds `burst` (as refilled to it: the float of the same value).
  bool full(double burst) const { return tokens >= static_cast<float>(burst); }
  // True (one token spent) when a token is there after refilling.
  bool take(double rate, double burst, TimePoint now) {
    refill(rate, burst, now);
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  // `t` in whole milliseconds modulo 2^32: differences of two stamps are right for gaps under 49 days.
  static uint32_t stamp(TimePoint t) {
    return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(t).count());
  }
};

}  // namespace storjnet
