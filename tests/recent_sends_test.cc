// RecentSends (src/engine/recent_sends.h) driven by hand: what it answers over its window, sends made while
// handling a datagram not counting for it, old addresses forgotten without changing an answer (and their room
// given back), the bound, and the wrap of its millisecond stamps.
#include "engine/recent_sends.h"

#include <gtest/gtest.h>

using namespace storjnet;
using namespace std::chrono_literals;

namespace {
Endpoint ep_of(uint32_t i, uint16_t port = 4000) { return Endpoint::v4(0x0a000000u | (i & 0xffffff), port); }
constexpr TimePoint kStart = std::chrono::hours(1);
}  // namespace

TEST(RecentSends, AnAddressSentToWithinTheWindowAnyPortIsSent) {
  RecentSends r;
  r.sent(ep_of(1, 4000), kStart, 1);
  EXPECT_TRUE(r.sent_before(ep_of(1, 9999), kStart + 1s, 2));  // another port of the same address
  EXPECT_TRUE(r.sent_before(ep_of(1), kStart + RecentSends::kWindow, 3));
  EXPECT_FALSE(r.sent_before(ep_of(1), kStart + RecentSends::kWindow + 1s, 4));
  EXPECT_FALSE(r.sent_before(ep_of(2), kStart + 1s, 5));
}

TEST(RecentSends, ASendWhileHandlingADatagramDoesNotCountForIt) {
  RecentSends r;
  r.sent(ep_of(1), kStart, 7);                           // an answer to datagram 7
  EXPECT_FALSE(r.sent_before(ep_of(1), kStart, 7));      // not before datagram 7 arrived
  EXPECT_TRUE(r.sent_before(ep_of(1), kStart + 1s, 8));  // before datagram 8 it was
}

TEST(RecentSends, OldAddressesAreForgottenAsSendsGoOnAndAnswersStayTheSame) {
  RecentSends r;
  for (uint32_t i = 0; i < 500; ++i) r.sent(ep_of(i), kStart, 1);
  EXPECT_EQ(r.entries(), 500u);
  // Ten minutes on, one send: the 500 old addresses are gone (they answered "not sent" already).
  TimePoint later = kStart + 2 * RecentSends::kWindow;
  for (uint32_t i = 0; i < 500; ++i) EXPECT_FALSE(r.sent_before(ep_of(i), later, 2));
  r.sent(ep_of(1000), later, 2);
  EXPECT_EQ(r.entries(), 1u);
  EXPECT_TRUE(r.sent_before(ep_of(1000), later + 1s, 3));
  // An address is kept while a datagram handled late may still find it "sent" (kWindow, plus kGrace).
  TimePoint t = later + RecentSends::kWindow + RecentSends::kGrace;  // past the next expiry (later + kWindow / 2)
  r.sent(ep_of(1001), t, 3);  // 1000 was sent to exactly kWindow + kGrace ago: kept
  EXPECT_EQ(r.entries(), 2u);
  TimePoint t2 = t + RecentSends::kWindow / 2;
  r.sent(ep_of(1002), t2, 4);  // now 1000 is past both
  EXPECT_EQ(r.entries(), 2u);
  EXPECT_FALSE(r.sent_before(ep_of(1000), t2, 5));
  EXPECT_TRUE(r.sent_before(ep_of(1001), t2, 5));
}

TEST(RecentSends, AFullTableOfFreshAddressesAnswersSentForEveryAddressUntilTheWindowPasses) {
  RecentSends r(64);
  for (uint32_t i = 0; i < 64; ++i) r.sent(ep_of(i), kStart, 1);
  r.sent(ep_of(64), kStart, 1);  // full of fresh entries: cleared, and conservative for kWindow
  EXPECT_LE(r.entries(), 64u);
  EXPECT_TRUE(r.sent_before(ep_of(5000), kStart + 1s, 2));  // never claims an unsolicited datagram
  EXPECT_FALSE(r.sent_before(ep_of(5000), kStart + RecentSends::kWindow + 1s, 3));
}

TEST(RecentSends, TheTableGivesItsSpareRoomBackWhenOldAddressesAreForgotten) {
  RecentSends r;
  for (uint32_t i = 0; i < 4000; ++i) r.sent(ep_of(i), kStart, 1);
  EXPECT_GE(r.capacity(), 4000u);
  TimePoint later = kStart + 2 * RecentSends::kWindow;
  r.sent(ep_of(5000), later, 2);  // the 4000 are forgotten, and their room with them
  EXPECT_EQ(r.entries(), 1u);
  EXPECT_LE(r.capacity(), 64u);
  EXPECT_TRUE(r.sent_before(ep_of(5000), later + 1s, 3));
  EXPECT_FALSE(r.sent_before(ep_of(1), later + 1s, 3));
}

TEST(RecentSends, AnswersStayRightWhereTheMillisecondStampWraps) {
  RecentSends r;
  TimePoint t = std::chrono::milliseconds((uint64_t{1} << 32) - 500);  // the stamp wraps 0.5 s later
  r.sent(ep_of(1), t, 1);
  EXPECT_TRUE(r.sent_before(ep_of(1), t + 1s, 2));
  EXPECT_TRUE(r.sent_before(ep_of(1), t - 1s, 2));  // a datagram that arrived before the send, handled after it
  EXPECT_FALSE(r.sent_before(ep_of(1), t + RecentSends::kWindow + 1s, 3));
  r.sent(ep_of(2), t + RecentSends::kWindow + RecentSends::kGrace + 1s, 3);  // forgets 1 past the wrap
  EXPECT_EQ(r.entries(), 1u);
}
