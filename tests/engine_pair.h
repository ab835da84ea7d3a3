// Pair: two engines over hand-driven environments (tests/test_env.h), A at 10.0.0.1 and B at 10.0.0.2, for the
// engine's tests (engine_test.cc, engine_slow_test.cc). Every datagram is passed by the test.
#pragma once
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "test_env.h"

namespace storjnet::test {

inline Identity make_identity(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed[0] = n;
  seed[1] = 0x77;
  return Identity::from_seed(seed);
}

struct Pair : ::testing::Test {
  ManualEnv ea{1}, eb{2};
  Engine a{ea, make_identity(1)}, b{eb, make_identity(2)};
  Endpoint ep_a = *Endpoint::parse("10.0.0.1:4000"), ep_b = *Endpoint::parse("10.0.0.2:4000");
  Contact ca = Contact::from_key(a.identity().public_key(), ep_a);
  Contact cb = Contact::from_key(b.identity().public_key(), ep_b);

  // Delivers everything A sent to B and vice versa until both outboxes are empty.
  void pump() { test::pump(ea, a, ep_a, eb, b, ep_b); }
  // A's clock moves on by d, and A runs what fell due.
  void later(Duration d) {
    ea.advance(d);
    a.on_wake();
  }
};

}  // namespace storjnet::test
