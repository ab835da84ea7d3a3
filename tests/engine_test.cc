// Engine over a hand-driven environment: every datagram is passed by the test, so tampering, replay and
// forgery can be injected precisely.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine_pair.h"
#include "test_env.h"
#include "wire/datagram.h"

using namespace storjnet;
using storjnet::test::make_identity;
using storjnet::test::ManualEnv;
using storjnet::test::Pair;

TEST_F(Pair, PingAnswersWithResponderId) {
  std::optional<NodeId> got;
  bool called = false;
  a.ping(cb, [&](std::optional<NodeId> id) { called = true, got = id; });
  pump();
  ASSERT_TRUE(called);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, b.id());
}

TEST_F(Pair, StunAnswersTheSourceAddress) {
  std::optional<Endpoint> got;
  a.stun(cb, [&](std::optional<Endpoint> e) { got = e; });
  pump();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, ep_a);
}

TEST_F(Pair, HelloLearnsTheKeyFromAnAddress) {
  std::optional<Contact> got;
  a.hello(ep_b, [&](std::optional<Contact> c) { got = c; });
  pump();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, b.id());
  EXPECT_EQ(got->key, b.identity().public_key());
  // A hello reply nobody asked for is dropped and counted.
  Bytes unsolicited = wire::encode_hello_reply(a.config().network_id, {b.identity().public_key(), 12345});
  a.on_datagram(ep_b, unsolicited);
  EXPECT_EQ(a.drops().get(DropReason::kUnexpectedResponse), 1u);
}

TEST_F(Pair, TamperedDatagramsAreDroppedAndCounted) {
  int served = 0;
  b.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply& r) { ++served, r.ok({}); });
  a.request(cb, Method::kMessageNotify, as_bytes("hello"), [](RpcResult&&) {});
  ASSERT_EQ(ea.outbox.size(), 1u);
  Bytes good = ea.outbox[0].data;
  ea.outbox.clear();

  Bytes body = good;
  body.back() ^= 0x01;  // ciphertext / tag
  b.on_datagram(ep_a, body);
  Bytes nonce = good;
  nonce[40] ^= 0x01;  // nonce is associated data
  b.on_datagram(ep_a, nonce);
  EXPECT_EQ(b.drops().get(DropReason::kAuthFailed), 2u);

  Bytes key = good;
  key[6] ^= 0x01;  // claims another sender key
  b.on_datagram(ep_a, key);
  EXPECT_GE(b.drops().get(DropReason::kAuthFailed) + b.drops().get(DropReason::kBadKey), 3u);
  EXPECT_EQ(served, 0);

  b.on_datagram(ep_a, good);
  EXPECT_EQ(served, 1);
  b.on_datagram(ep_a, good);  // replayed
  EXPECT_EQ(b.drops().get(DropReason::kReplay), 1u);
  EXPECT_EQ(served, 1);
}

TEST_F(Pair, ForgedSenderIsRejected) {
  // C seals with its own key but claims to be A: B derives the A-B key and the tag fails.
  ManualEnv ec{3};
  Engine c{ec, make_identity(3)};
  int served = 0;
  b.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply&) { ++served; });
  c.request(cb, Method::kMessageNotify, as_bytes("forged"), [](RpcResult&&) {});
  Bytes forged = ec.outbox.at(0).data;
  std::copy(a.identity().public_key().begin(), a.identity().public_key().end(), forged.begin() + 6);
  b.on_datagram(ep_a, forged);
  EXPECT_EQ(b.drops().get(DropReason::kAuthFailed), 1u);
  EXPECT_EQ(served, 0);
  EXPECT_EQ(b.session_count(), 0u);  // no state kept for unauthenticated senders
}

TEST_F(Pair, MalformedDatagramsOfEveryKindAreCounted) {
  a.ping(cb, [](auto) {});
  Bytes good = ea.outbox.at(0).data;
  auto send = [&](Bytes d) { b.on_datagram(ep_a, d); };
  send(Bytes(good.begin(), good.begin() + 4));
  send(Bytes(1400, 0x01));
  Bytes v = good;
  v[0] = 9;
  send(v);
  Bytes net = good;
  net[3] ^= 0xff;
  send(net);
  Bytes garbage(200);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 7 + 3);
  garbage[0] = wire::kVersion;
  garbage[1] = 3;
  std::copy(good.begin() + 2, good.begin() + 6, garbage.begin() + 2);
  send(garbage);
  const auto& d = b.drops();
  EXPECT_EQ(d.get(DropReason::kTruncated), 1u);
  EXPECT_EQ(d.get(DropReason::kOversized), 1u);
  EXPECT_EQ(d.get(DropReason::kBadVersion), 1u);
  EXPECT_EQ(d.get(DropReason::kWrongNetwork), 1u);
  EXPECT_EQ(d.get(DropReason::kBadKey) + d.get(DropReason::kAuthFailed), 1u);
  EXPECT_EQ(b.session_count(), 0u);
}

TEST_F(Pair, RequestRetriesThenTimesOut) {
  std::optional<NodeId> got = NodeId();
  bool called = false;
  a.ping(cb, [&](std::optional<NodeId> id) { called = true, got = id; });
  EXPECT_EQ(ea.outbox.size(), 1u);
  for (int i = 0; i < 10 && !called; ++i) {
    ea.advance(700ms);
    a.on_wake();
  }
  EXPECT_TRUE(called);
  EXPECT_FALSE(got);
  EXPECT_EQ(ea.outbox.size(), 3u);  // 3 attempts by default
  EXPECT_EQ(a.stats().retransmits, 2u);
  EXPECT_EQ(a.pending_rpcs(), 0u);
}

TEST_F(Pair, RetransmittedRequestIsAnsweredAfterLoss) {
  std::optional<NodeId> got;
  a.ping(cb, [&](std::optional<NodeId> id) { got = id; });
  ea.outbox.clear();  // first transmission lost
  ea.advance(700ms);
  a.on_wake();
  pump();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, b.id());
}

// Retransmission timing (RttEstimate): a request's attempts wait total/attempts (here 1 s / 2), or longer when
// the peer's answers are known to take longer; the total stays.
namespace {
const RpcOptions kLookupLike{std::chrono::seconds(1), 2};

// A request from A that B answers `delay` after it arrives (A's retransmissions in between are lost).
// Returns whether A got the answer.
bool slow_request(Pair& t, Duration delay) {
  bool ok = false;
  t.a.request(t.cb, Method::kMessageNotify, as_bytes("x"), [&](RpcResult&& r) { ok = r.ok(); }, kLookupLike);
  for (auto& d : t.ea.outbox) t.b.on_datagram(t.ep_a, d.data);
  t.ea.outbox.clear();
  auto answer = std::move(t.eb.outbox);
  t.eb.outbox.clear();
  t.ea.advance(delay);
  t.a.on_wake();
  t.ea.outbox.clear();
  for (auto& d : answer) t.a.on_datagram(t.ep_b, d.data);
  return ok;
}
}  // namespace

// A peer whose answers spread widely (a loaded one), all within the share so far: the estimate grows past the
// share, and answers that take longer than the share are then waited for instead of asked twice.
void warm_up_spread(Pair& t) {
  t.b.set_handler(Method::kMessageNotify, [](const IncomingRequest&, const Reply& r) { r.ok({}); });
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(slow_request(t, i % 2 ? 450ms : 100ms));
  ASSERT_EQ(t.a.stats().retransmits, 0u);
}

TEST_F(Pair, AnswersSlowerThanTheShareAreWaitedForOnceTheEstimateKnowsThePeer) {
  warm_up_spread(*this);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(slow_request(*this, 700ms)) << i;
  EXPECT_EQ(a.stats().retransmits, 0u);  // before the estimate: each of the five was sent twice
}

TEST_F(Pair, AFastPeersLostRequestIsStillRetriedAtTheShare) {
  std::optional<NodeId> got;
  for (int i = 0; i < 5; ++i) {  // quick answers: the estimate is far below the share
    a.ping(cb, [&](std::optional<NodeId> id) { got = id; }, kLookupLike);
    pump();
  }
  got.reset();
  a.ping(cb, [&](std::optional<NodeId> id) { got = id; }, kLookupLike);
  ea.outbox.clear();  // lost
  ea.advance(499ms);
  a.on_wake();
  EXPECT_TRUE(ea.outbox.empty());
  ea.advance(1ms);
  a.on_wake();
  EXPECT_EQ(ea.outbox.size(), 1u);
  pump();
  ASSERT_TRUE(got);
}

TEST_F(Pair, ALongEstimateKeepsTheRequestsTotalTimeout) {
  warm_up_spread(*this);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(slow_request(*this, 900ms));
  ASSERT_EQ(a.stats().retransmits, 0u);  // the estimate is past the share
  bool called = false;
  a.request(cb, Method::kMessageNotify, as_bytes("x"), [&](RpcResult&& r) { called = true; EXPECT_FALSE(r.ok()); },
            kLookupLike);
  ea.outbox.clear();  // B is gone
  ea.advance(999ms);
  a.on_wake();
  EXPECT_FALSE(called);
  ea.advance(1ms);
  a.on_wake();
  EXPECT_TRUE(called);
  // An answer could not have come back in the time left: no retransmission was sent.
  EXPECT_EQ(a.stats().retransmits, 0u);
}

TEST_F(Pair, UnknownMethodAnswersAnErrorAndCounts) {
  RpcResult res;
  a.request(cb, Method::kQuasarNotify, {}, [&](RpcResult&& r) { res = std::move(r); });
  pump();
  EXPECT_EQ(res.status, RpcStatus::kRemoteError);
  EXPECT_EQ(res.error, "unknown method");
  EXPECT_EQ(b.drops().get(DropReason::kUnknownMethod), 1u);
}

TEST_F(Pair, EachMethodReachesTheHandlerSetLastForIt) {
  std::string got;
  b.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply& r) { got += "old;", r.ok({}); });
  b.set_handler(Method::kQuasarNotify, [&](const IncomingRequest&, const Reply& r) { got += "quasar;", r.ok({}); });
  b.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply& r) { got += "new;", r.ok({}); });
  int answered = 0;
  for (Method m : {Method::kMessageNotify, Method::kQuasarNotify, Method::kStreamOpen})
    a.request(cb, m, {}, [&](RpcResult&& r) { answered += r.status == RpcStatus::kOk; });
  pump();
  EXPECT_EQ(got, "new;quasar;");
  EXPECT_EQ(answered, 2);
  EXPECT_EQ(b.drops().get(DropReason::kUnknownMethod), 1u);  // stream_open: no handler set
}

TEST_F(Pair, LargeMessagesAreFragmentedAndReassembled) {
  Bytes big(64 * 1024);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i ^ (i >> 8));
  Bytes seen;
  b.set_handler(Method::kMessageNotify, [&](const IncomingRequest& req, const Reply& r) {
    seen.assign(req.payload.begin(), req.payload.end());
    r.ok(req.payload);
  });
  Bytes echoed;
  a.request(cb, Method::kMessageNotify, big, [&](RpcResult&& r) { echoed = std::move(r.payload); });
  EXPECT_GT(ea.outbox.size(), 50u);
  for (auto& s : ea.outbox) EXPECT_LE(s.data.size(), wire::kMaxDatagram);
  // Deliver in reverse order with every fragment duplicated.
  auto out = std::move(ea.outbox);
  ea.outbox.clear();
  for (auto it = out.rbegin(); it != out.rend(); ++it) {
    b.on_datagram(ep_a, it->data);
    b.on_datagram(ep_a, it->data);
  }
  EXPECT_EQ(seen, big);
  pump();
  EXPECT_EQ(echoed, big);
  EXPECT_EQ(b.reassembly_bytes(), 0u);
}

// A third engine C whose find_node is rate-limited under `cfg`; counts the requests it serves.
struct LimitedPeer {
  ManualEnv env{9};
  Engine engine;
  Contact contact;
  int served = 0;
  explicit LimitedPeer(const EngineConfig& cfg)
      : engine(env, make_identity(9), cfg),
        contact(Contact::from_key(engine.identity().public_key(), *Endpoint::parse("10.0.0.3:4000"))) {
    engine.set_rate_limited(Method::kFindNode);
    engine.set_handler(Method::kFindNode, [this](const IncomingRequest&, const Reply& r) { ++served, r.ok({}); });
  }
};

TEST_F(Pair, PerPeerRateLimitDropsExcessRequests) {
  EngineConfig cfg;
  cfg.peer_request_rate = 10;
  cfg.peer_request_burst = 5;
  LimitedPeer peer(cfg);
  ManualEnv& ec = peer.env;
  Engine& c = peer.engine;
  const Contact& cc = peer.contact;
  int& served = peer.served;
  int ok = 0, limited = 0;
  for (int i = 0; i < 20; ++i)
    a.request(cc, Method::kFindNode, {}, [&](RpcResult&& r) {
      ok += r.ok();
      limited += r.status == RpcStatus::kRemoteError && r.error == "rate limited";
    });
  for (auto& s : ea.outbox) c.on_datagram(ep_a, s.data);
  EXPECT_EQ(served, 5);
  EXPECT_EQ(c.drops().get(DropReason::kRateLimited), 15u);
  for (auto& s : ec.outbox) a.on_datagram(cc.endpoint, s.data);
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(limited, 15);
  // Unlimited methods (ping) are still served.
  std::optional<NodeId> pong;
  ea.outbox.clear();
  ec.outbox.clear();
  a.ping(cc, [&](auto id) { pong = id; });
  for (auto& s : ea.outbox) c.on_datagram(ep_a, s.data);
  for (auto& s : ec.outbox) a.on_datagram(cc.endpoint, s.data);
  EXPECT_TRUE(pong);
}

// ---------------------------------------------------------------- idle sessions (docs/protocol.md 1.4)

namespace {
// Advances both clocks by `d` in steps of one second, running each engine's due timers (the idle sweep).
void idle(ManualEnv& ea, Engine& a, ManualEnv& eb, Engine& b, Duration d) {
  for (Duration t{0}; t < d; t += 1s) {
    ea.advance(1s);
    eb.advance(1s);
    a.on_wake();
    b.on_wake();
  }
}
}  // namespace

TEST_F(Pair, IdleSessionIsShrunkAndRemadeOnDemand) {
  std::optional<NodeId> pong;
  a.ping(cb, [&](auto id) { pong = id; });
  pump();
  ASSERT_TRUE(pong);
  ASSERT_EQ(a.session_count(), 1u);
  ASSERT_EQ(b.session_count(), 1u);
  idle(ea, a, eb, b, a.config().session_idle - 2s);
  EXPECT_EQ(b.session_count(), 1u);  // not idle long enough yet
  idle(ea, a, eb, b, a.config().session_idle);
  EXPECT_EQ(a.session_count(), 0u);
  EXPECT_EQ(b.session_count(), 0u);
  EXPECT_EQ(b.dormant_sessions(), 1u);
  EXPECT_EQ(b.stats().sessions_idled, 1u);
  // A request after the drop re-makes both sessions without any extra datagram or key work.
  uint64_t derivations = b.stats().key_derivations, out = a.stats().datagrams_out + b.stats().datagrams_out;
  pong.reset();
  a.ping(cb, [&](auto id) { pong = id; });
  pump();
  ASSERT_TRUE(pong);
  EXPECT_EQ(*pong, b.id());
  EXPECT_EQ(a.stats().datagrams_out + b.stats().datagrams_out, out + 2);
  EXPECT_EQ(b.stats().key_derivations, derivations);
  EXPECT_EQ(b.session_count(), 1u);
  EXPECT_EQ(b.dormant_sessions(), 0u);
  EXPECT_EQ(b.drops().total(), 0u);
}

TEST_F(Pair, ReplayIntoAShrunkOrRemadeSessionIsRefused) {
  // B shrinks its session with A while A keeps its own (A's session never idles): A's next datagram carries
  // the same epoch and a higher counter, and only it is accepted; captured datagrams of the old one are not.
  EngineConfig keep;
  keep.session_idle = Duration::zero();
  ManualEnv ek{11};
  Engine k{ek, make_identity(11), keep};
  int served = 0;
  b.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply& r) { ++served, r.ok({}); });
  k.request(cb, Method::kMessageNotify, as_bytes("one"), [](RpcResult&&) {});
  k.request(cb, Method::kMessageNotify, as_bytes("two"), [](RpcResult&&) {});
  ASSERT_EQ(ek.outbox.size(), 2u);
  Bytes first = ek.outbox[0].data, second = ek.outbox[1].data;
  ek.outbox.clear();
  b.on_datagram(ep_a, second);  // the first one is still "in flight" when B shrinks the session
  for (auto& s : eb.outbox) k.on_datagram(ep_b, s.data);
  eb.outbox.clear();
  EXPECT_EQ(served, 1);
  idle(ek, k, eb, b, b.config().session_idle + 31s);
  ek.outbox.clear();  // K's retransmissions of the first request, never delivered
  ASSERT_EQ(b.session_count(), 0u);
  ASSERT_EQ(b.dormant_sessions(), 1u);
  ASSERT_EQ(k.session_count(), 1u);
  // Replays of the old session's datagrams, delivered late or captured: refused before any key work.
  uint64_t derivations = b.stats().key_derivations;
  b.on_datagram(ep_a, second);
  b.on_datagram(ep_a, first);
  EXPECT_EQ(b.drops().get(DropReason::kReplay), 2u);
  EXPECT_EQ(b.session_count(), 0u);
  EXPECT_EQ(b.stats().key_derivations, derivations);
  // A's next request (same session, next counter) re-makes B's session; the old datagrams stay refused.
  bool ok = false;
  k.request(cb, Method::kMessageNotify, as_bytes("three"), [&](RpcResult&& r) { ok = r.ok(); });
  for (auto& s : ek.outbox) b.on_datagram(ep_a, s.data);
  ek.outbox.clear();
  for (auto& s : eb.outbox) k.on_datagram(ep_b, s.data);
  eb.outbox.clear();
  EXPECT_TRUE(ok);
  EXPECT_EQ(served, 2);
  ASSERT_EQ(b.session_count(), 1u);
  b.on_datagram(ep_a, first);
  b.on_datagram(ep_a, second);
  EXPECT_EQ(b.drops().get(DropReason::kReplay), 4u);
  EXPECT_EQ(served, 2);

  // Both ends shrink: A's re-made session has a newer epoch, and the old one's datagrams are stale at B.
  ea.outbox.clear();
  a.request(cb, Method::kMessageNotify, as_bytes("four"), [](RpcResult&&) {});
  Bytes old = ea.outbox.at(0).data;
  pump();
  EXPECT_EQ(served, 3);
  idle(ea, a, eb, b, b.config().session_idle + 31s);
  ASSERT_EQ(a.session_count(), 0u);
  a.request(cb, Method::kMessageNotify, as_bytes("five"), [&](RpcResult&& r) { ok = r.ok(); });
  pump();
  EXPECT_EQ(served, 4);
  b.on_datagram(ep_a, old);
  EXPECT_EQ(b.drops().get(DropReason::kStaleSession), 1u);
  EXPECT_EQ(served, 4);
}

TEST_F(Pair, SessionWithASpentRateBudgetIsNotShrunk) {
  // Re-made, a session starts with full budgets: one that has not refilled yet stays, so idling cannot buy a
  // peer more than its rate.
  EngineConfig cfg;
  cfg.peer_request_rate = 0.01;
  cfg.peer_request_burst = 3;
  cfg.session_idle = 10s;
  LimitedPeer peer(cfg);
  ManualEnv& ec = peer.env;
  Engine& c = peer.engine;
  const Contact& cc = peer.contact;
  int& served = peer.served;
  auto burst = [&](int n) {
    for (int i = 0; i < n; ++i) a.request(cc, Method::kFindNode, {}, [](RpcResult&&) {});
    for (auto& s : ea.outbox) c.on_datagram(ep_a, s.data);
    ea.outbox.clear();
    for (auto& s : ec.outbox) a.on_datagram(cc.endpoint, s.data);
    ec.outbox.clear();
  };
  burst(3);
  EXPECT_EQ(served, 3);
  idle(ea, a, ec, c, 60s);  // 0.6 tokens back: not full
  EXPECT_EQ(c.session_count(), 1u);
  burst(1);
  EXPECT_EQ(served, 3);  // still limited
  EXPECT_EQ(c.drops().get(DropReason::kRateLimited), 1u);
}

TEST(EngineMemory, SessionsAndFloorsStayBoundedUnderManyPeers) {
  EngineConfig cfg;
  cfg.max_sessions = 16;
  cfg.max_dormant_sessions = 32;
  ManualEnv eb{2};
  Engine b{eb, make_identity(2), cfg};
  int served = 0;
  b.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply& r) { ++served, r.ok({}); });
  for (uint64_t i = 0; i < 200; ++i) {
    storjnet::test::Forger peer(storjnet::test::test_identity(1000 + i), b.identity().public_key());
    b.on_datagram(Endpoint::v4(0x0a010000u + static_cast<uint32_t>(i), 4000), peer.request(Method::kMessageNotify, {}));
    EXPECT_LE(b.session_count(), 16u);
    EXPECT_LE(b.dormant_sessions(), 32u);
  }
  EXPECT_EQ(served, 200);
  EXPECT_GT(b.stats().sessions_evicted, 0u);
  // Idle: every session shrinks to a floor, and the floors stay bounded.
  for (int s = 0; s < 120; ++s) {
    eb.advance(1s);
    b.on_wake();
  }
  EXPECT_EQ(b.session_count(), 0u);
  EXPECT_LE(b.dormant_sessions(), 32u);
}

// An answer that waits on other requests (a dial-back ask, answered after a third node's probe:
// RpcOptions::rtt_sample false) is no round-trip sample: slow ones leave the estimate alone, and a later request
// to the peer is still retried at its share. Sampled, the same answers would have pushed the estimate past it.
TEST_F(Pair, AnAnswerThatWaitsOnOthersIsNoRoundTripSample) {
  b.set_handler(Method::kMessageNotify, [](const IncomingRequest&, const Reply& r) { r.ok({}); });
  auto retried_at_share = [&](bool rtt_sample) {
    for (int i = 0; i < 4; ++i) {  // answered 3 s later
      bool ok = false;
      a.request(cb, Method::kMessageNotify, as_bytes("x"), [&](RpcResult&& r) { ok = r.ok(); },
                RpcOptions{std::chrono::seconds(10), 1, rtt_sample});
      for (auto& d : ea.outbox) b.on_datagram(ep_a, d.data);
      ea.outbox.clear();
      auto answer = std::move(eb.outbox);
      eb.outbox.clear();
      ea.advance(std::chrono::seconds(3));
      a.on_wake();
      for (auto& d : answer) a.on_datagram(ep_b, d.data);
      EXPECT_TRUE(ok);
    }
    a.request(cb, Method::kMessageNotify, as_bytes("y"), [](RpcResult&&) {}, kLookupLike);
    ea.outbox.clear();  // lost
    ea.advance(std::chrono::milliseconds(500));
    a.on_wake();
    bool retried = !ea.outbox.empty();
    ea.outbox.clear();
    ea.advance(std::chrono::seconds(5));  // the request ends
    a.on_wake();
    return retried;
  };
  EXPECT_TRUE(retried_at_share(false));
  EXPECT_FALSE(retried_at_share(true));
}
