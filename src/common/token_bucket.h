// TokenBucket: `rate` tokens a second, at most `burst` held; take() spends one. Rate and burst are passed on
// each call (they live in the caller's config), so a bucket is two words. Time going backwards adds nothing.
#pragma once
#include <algorithm>

#include "storjnet/environment.h"

namespace storjnet {

struct TokenBucket {
  double tokens = 0;
  TimePoint at{};

  void refill(double rate, double burst, TimePoint now) {
    double elapsed = std::chrono::duration<double>(now - at).count();
    tokens = std::min(burst, tokens + std::max(0.0, elapsed) * rate);
    at = now;
  }
  // True (one token spent) when a token is there after refilling.
  bool take(double rate, double burst, TimePoint now) {
    refill(rate, burst, now);
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }
};

}  // namespace storjnet
