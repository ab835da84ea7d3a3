// The port mapper's decisions (src/real/port_map_state.h) without a router: results and time are fed in.
#include <gtest/gtest.h>

#include "real/port_map_state.h"

namespace storjnet::real {
namespace {

using namespace std::chrono_literals;
using Action = PortMapState::Action;
using Phase = PortMapState::Phase;

Endpoint ext(uint16_t port = 4000) { return *Endpoint::from_ip("198.20.0.1", port); }
TimePoint at(Duration d) { return TimePoint{d}; }

TEST(PortMapState, MapsAtOnceAndRenewsAtHalfTheLease) {
  PortMapState s;
  EXPECT_EQ(s.phase(), Phase::kStarting);
  EXPECT_EQ(s.next(at(0s)), Action::kMap);
  s.on_mapped("upnp", ext(), 1h, at(2s));
  EXPECT_EQ(s.phase(), Phase::kMapped);
  EXPECT_EQ(*s.external(), ext());
  EXPECT_EQ(*s.expires_at(), at(1h + 2s));
  EXPECT_EQ(*s.wake_at(), at(30min + 2s));
  EXPECT_EQ(s.next(at(30min)), Action::kNone);
  EXPECT_EQ(s.next(at(30min + 2s)), Action::kMap);
  s.on_mapped("upnp", ext(), 1h, at(30min + 3s));
  EXPECT_EQ(s.renewals(), 1u);
  EXPECT_EQ(*s.mapped_at(), at(2s));  // the first mapping, kept across renewals
  EXPECT_EQ(*s.wake_at(), at(60min + 3s));
}

TEST(PortMapState, FailuresBackOffDoublingToTheCap) {
  PortMapState::Config c;
  c.retry_min = 30s;
  c.retry_max = 4min;
  PortMapState s(c);
  TimePoint t = at(0s);
  std::vector<Duration> waits;
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(s.next(t), Action::kMap);
    s.on_failed("upnp: no device answered discovery", t);
    EXPECT_EQ(s.phase(), Phase::kFailed);
    waits.push_back(*s.wake_at() - t);
    EXPECT_EQ(s.next(t + waits.back() - 1ms), Action::kNone);
    t += waits.back();
  }
  EXPECT_EQ(waits, (std::vector<Duration>{30s, 60s, 120s, 240s, 240s, 240s}));
  EXPECT_EQ(s.failures(), 6u);
  EXPECT_EQ(s.last_error(), "upnp: no device answered discovery");
  // A success resets the backoff.
  s.on_mapped("natpmp", ext(), 1h, t);
  EXPECT_EQ(s.consecutive_failures(), 0u);
  s.on_failed("x", t + 30min);
  EXPECT_EQ(*s.wake_at(), t + 30min + 30s);
}

TEST(PortMapState, FailedRenewalsKeepTheMappingUntilItsLeaseEndsThenItIsLost) {
  PortMapState::Config c;
  c.retry_min = 10min;  // longer than what is left of the lease at the second failure
  PortMapState s(c);
  s.on_mapped("upnp", ext(), 1h, at(0s));
  TimePoint t = at(30min);
  ASSERT_EQ(s.next(t), Action::kMap);
  s.on_failed("upnp: AddPortMapping: -3", t);
  EXPECT_EQ(s.phase(), Phase::kMapped);  // still held
  int retries = 0;
  while (retries < 100) {
    t = *s.wake_at();
    s.tick(t);
    if (s.phase() != Phase::kMapped) break;
    ASSERT_LT(t, at(1h)) << "a held mapping is only retried before its lease ends";
    ASSERT_EQ(s.next(t), Action::kMap);
    s.on_failed("upnp: AddPortMapping: -3", t);
    ++retries;
  }
  EXPECT_GT(retries, 1);
  EXPECT_EQ(s.phase(), Phase::kLost);
  EXPECT_FALSE(s.external());
  // Lost: tried again as a fresh mapping.
  t = *s.wake_at();
  EXPECT_EQ(s.next(t), Action::kMap);
  s.on_mapped("upnp", ext(), 1h, t);
  EXPECT_EQ(s.phase(), Phase::kMapped);
  EXPECT_EQ(*s.mapped_at(), t);
}

TEST(PortMapState, ExpiryWithoutAnAttemptIsSeenByTick) {
  PortMapState s;
  s.on_mapped("upnp", ext(), 1h, at(0s));
  s.tick(at(59min));
  EXPECT_EQ(s.phase(), Phase::kMapped);
  s.tick(at(1h));
  EXPECT_EQ(s.phase(), Phase::kLost);
}

TEST(PortMapState, PermanentAndShortLeases) {
  PortMapState s;
  s.on_mapped("upnp", ext(), 0s, at(0s));  // IGD v1 "permanent": renewed anyway (routers restart)
  EXPECT_FALSE(s.expires_at());
  EXPECT_EQ(*s.wake_at(), at(PortMapState::kPermanentRenew));
  s.tick(at(100h));
  EXPECT_EQ(s.phase(), Phase::kMapped);
  PortMapState t;
  t.on_mapped("natpmp", ext(), 1s, at(0s));  // a router granting 1 s is not asked 2x a second
  EXPECT_EQ(*t.wake_at(), at(PortMapState::kMinLease / 2));
}

TEST(PortMapState, StopRemovesAHeldMappingOnce) {
  PortMapState s;
  s.on_mapped("upnp", ext(), 1h, at(0s));
  s.stop();
  EXPECT_EQ(s.next(at(1s)), Action::kRemove);
  EXPECT_EQ(*s.wake_at(), at(0s));
  s.on_removed();
  EXPECT_EQ(s.phase(), Phase::kStopped);
  EXPECT_EQ(s.next(at(2h)), Action::kNone);
  EXPECT_FALSE(s.wake_at());
  EXPECT_FALSE(s.external());
}

TEST(PortMapState, StopWithoutAMappingRemovesNothing) {
  PortMapState s;
  s.on_failed("natpmp: no answer", at(0s));
  s.stop();
  EXPECT_EQ(s.next(at(1h)), Action::kNone);
  EXPECT_FALSE(s.wake_at());
  EXPECT_EQ(s.phase(), Phase::kStopped);
}

TEST(PortMapState, AMappingGrantedAfterStopIsRemoved) {
  PortMapState s;
  ASSERT_EQ(s.next(at(0s)), Action::kMap);  // the attempt starts, then stop() comes while it waits on the router
  s.stop();
  s.on_mapped("upnp", ext(), 1h, at(1s));
  EXPECT_EQ(s.next(at(1s)), Action::kRemove);
  s.on_removed();
  EXPECT_EQ(s.next(at(2s)), Action::kNone);
  EXPECT_EQ(s.phase(), Phase::kStopped);
}

TEST(PortMapState, ALostMappingIsNotRemovedAtStop) {
  PortMapState s;
  s.on_mapped("upnp", ext(), 1h, at(0s));
  s.tick(at(2h));
  s.stop();
  EXPECT_EQ(s.next(at(2h)), Action::kNone);
}

}  // namespace
}  // namespace storjnet::real
