// Overdue answers in the engine (RpcOptions::on_slow, docs/protocol.md 5, "Lookup"): when a request or a hello
// is told slow, once; the overdue mark of a peer, held at its address and cleared by any answer from it. Driven
// by hand (engine_pair.h).
#include <gtest/gtest.h>

#include "engine_pair.h"
#include "test_env.h"

using namespace storjnet;
using storjnet::test::make_identity;
using storjnet::test::ManualEnv;
using storjnet::test::Pair;

TEST_F(Pair, AHellosOnSlowComesOnceWhenOverdueAsAPeerNeverTimedAndItsAnswerStillCounts) {
  // An address alone has no round trip of its own: a hello is overdue as a request to a peer never timed is
  // (twice every peer's retransmission timeout, at least 250 ms), here before its first retransmission (3 s over
  // 3 attempts: 1 s), which keeps its own timing. A hello answered at once never calls it.
  int slows = 0;
  std::optional<Contact> got;
  RpcOptions o{std::chrono::seconds(3), 3};
  o.on_slow = [&] { ++slows; };
  a.hello(ep_b, [&](std::optional<Contact> c) { got = c; }, o);
  ea.outbox.clear();  // lost
  later(240ms);
  EXPECT_EQ(slows, 0);
  later(20ms);
  EXPECT_EQ(slows, 1);
  EXPECT_EQ(a.stats().retransmits, 0u);
  EXPECT_TRUE(ea.outbox.empty());  // nothing is sent when overdue
  later(730ms);
  EXPECT_EQ(a.stats().retransmits, 0u);
  later(20ms);  // the first attempt's end: 1 s after the hello, not 1 s after the slow notice
  EXPECT_EQ(a.stats().retransmits, 1u);
  EXPECT_EQ(slows, 1);
  ea.outbox.clear();  // lost again
  later(1s);
  EXPECT_EQ(slows, 1);
  pump();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, b.id());

  int prompt = 0;
  got.reset();
  o.on_slow = [&] { ++prompt; };
  a.hello(ep_b, [&](std::optional<Contact> c) { got = c; }, o);
  pump();
  later(5s);
  EXPECT_TRUE(got);
  EXPECT_EQ(prompt, 0);

  // Woken late (400 ms, not at 250): the notice then, and the retransmission still 1 s after the hello.
  int late = 0;
  o.on_slow = [&] { ++late; };
  const uint64_t resent = a.stats().retransmits;
  a.hello(ep_b, [](std::optional<Contact>) {}, o);
  ea.outbox.clear();
  later(400ms);
  EXPECT_EQ(late, 1);
  later(590ms);
  EXPECT_EQ(a.stats().retransmits, resent);
  later(20ms);
  EXPECT_EQ(a.stats().retransmits, resent + 1);
  ea.outbox.clear();
  later(3s);  // its last attempt times out

  // Round trips timed since set the due time: twice every peer's retransmission timeout once that is longer.
  // A request answered after 400 ms gives rto = 400 + 4 * 200 = 1.2 s, due 2.4 s: after the first attempt's end,
  // so the notice comes with the first retransmission, as before the estimate.
  b.set_handler(Method::kMessageNotify, [](const IncomingRequest&, const Reply& r) { r.ok({}); });
  a.request(cb, Method::kMessageNotify, as_bytes("timed"), [](RpcResult&&) {});
  auto sent = ea.outbox;
  ea.outbox.clear();
  later(400ms);
  for (auto& d : sent) b.on_datagram(ep_a, d.data);
  pump();
  int timed = 0;
  o.on_slow = [&] { ++timed; };
  got.reset();
  a.hello(ep_b, [&](std::optional<Contact> c) { got = c; }, o);
  ea.outbox.clear();  // lost
  later(990ms);
  EXPECT_EQ(timed, 0);
  later(20ms);
  EXPECT_EQ(timed, 1);
}

TEST_F(Pair, OnSlowTellsAnOverdueRequestOnceAndTheAnswerStillCounts) {
  // A request lost twice: on_slow runs once, when it is overdue (no answer timed yet: at Engine::kUnknownPeerDue,
  // long before the first retransmission at 1 s), sends nothing then, and the answer to the last copy still reaches the
  // callback. A request answered at once never calls it.
  b.set_handler(Method::kMessageNotify, [](const IncomingRequest&, const Reply& r) { r.ok({}); });
  int slows = 0;
  bool ok = false;
  RpcOptions o{std::chrono::seconds(3), 3};
  o.on_slow = [&] { ++slows; };
  a.request(cb, Method::kMessageNotify, as_bytes("x"), [&](RpcResult&& r) { ok = r.ok(); }, o);
  ea.outbox.clear();  // lost
  later(240ms);
  EXPECT_EQ(slows, 0);
  later(20ms);
  EXPECT_EQ(slows, 1);
  EXPECT_TRUE(ea.outbox.empty());  // overdue, not retransmitted
  EXPECT_EQ(a.stats().retransmits, 0u);
  later(730ms);
  EXPECT_EQ(a.stats().retransmits, 0u);
  later(10ms);
  EXPECT_EQ(a.stats().retransmits, 1u);  // at its attempt's own time, 1 s after the send
  EXPECT_EQ(slows, 1);
  ea.outbox.clear();  // lost again
  later(1100ms);
  EXPECT_EQ(slows, 1);
  pump();
  EXPECT_TRUE(ok);
  EXPECT_EQ(slows, 1);

  int prompt = 0;
  ok = false;
  o.on_slow = [&] { ++prompt; };
  a.request(cb, Method::kMessageNotify, as_bytes("y"), [&](RpcResult&& r) { ok = r.ok(); }, o);
  pump();
  later(5s);
  EXPECT_TRUE(ok);
  EXPECT_EQ(prompt, 0);

  // A floor past the attempt's time: told at the first retransmission, as it is sent.
  int late = 0;
  o.on_slow = [&] { ++late; };
  o.slow_floor = 2s;
  a.request(cb, Method::kMessageNotify, as_bytes("z"), [&](RpcResult&&) {}, o);
  ea.outbox.clear();
  later(900ms);
  EXPECT_EQ(late, 0);
  later(200ms);
  EXPECT_EQ(late, 1);
  EXPECT_EQ(a.stats().retransmits, 3u);
}

TEST_F(Pair, ARequestToAPeerWithAnOverdueRequestIsSlowAtOnceUntilThePeerAnswers) {
  // A request lost: once it is overdue, a new request to the same peer is told slow at once (from a timer, not
  // within request()), and sent all the same. An answer from the peer ends that: the next request waits its time.
  b.set_handler(Method::kMessageNotify, [](const IncomingRequest&, const Reply& r) { r.ok({}); });
  int slow1 = 0, slow2 = 0, slow3 = 0;
  bool ok2 = false;
  RpcOptions o{std::chrono::seconds(3), 3};
  o.on_slow = [&] { ++slow1; };
  a.request(cb, Method::kMessageNotify, as_bytes("1"), [](RpcResult&&) {}, o);
  ea.outbox.clear();  // lost
  later(260ms);
  ASSERT_EQ(slow1, 1);
  o.on_slow = [&] { ++slow2; };
  a.request(cb, Method::kMessageNotify, as_bytes("2"), [&](RpcResult&& r) { ok2 = r.ok(); }, o);
  EXPECT_EQ(slow2, 0);  // not within the call
  EXPECT_EQ(ea.outbox.size(), 1u);  // sent all the same
  later(0ms);
  EXPECT_EQ(slow2, 1);
  pump();  // the second request and its answer
  EXPECT_TRUE(ok2);
  o.on_slow = [&] { ++slow3; };
  a.request(cb, Method::kMessageNotify, as_bytes("3"), [](RpcResult&&) {}, o);
  ea.outbox.clear();
  later(0ms);
  EXPECT_EQ(slow3, 0);  // B answered since: waited for as usual
  later(260ms);
  EXPECT_EQ(slow3, 1);
}

TEST_F(Pair, AnOverdueMarkIsClearedByAnAnswerThatCameThroughARelay) {
  // B answers the request that went overdue through a relay (B's direct path broke; docs/protocol.md 5.3): an
  // answer proves B alive whichever way it came, so the next request to B waits its own time.
  b.set_handler(Method::kMessageNotify, [](const IncomingRequest&, const Reply& r) { r.ok({}); });
  int slow1 = 0, slow2 = 0, slow3 = 0;
  bool ok1 = false;
  RpcOptions o{std::chrono::seconds(3), 3};
  o.on_slow = [&] { ++slow1; };
  a.request(cb, Method::kMessageNotify, as_bytes("1"), [&](RpcResult&& r) { ok1 = r.ok(); }, o);
  auto first = std::move(ea.outbox);  // on its way, slowly
  ea.outbox.clear();
  later(260ms);
  ASSERT_EQ(slow1, 1);
  o.on_slow = [&] { ++slow2; };
  a.request(cb, Method::kMessageNotify, as_bytes("2"), [](RpcResult&&) {}, o);
  ea.outbox.clear();
  later(0ms);
  ASSERT_EQ(slow2, 1);  // the mark holds

  for (auto& d : first) b.on_datagram(ep_a, d.data);
  ASSERT_FALSE(eb.outbox.empty());
  Contact relay = Contact::from_key(make_identity(9).public_key(), *Endpoint::parse("10.0.0.3:4000"));
  for (auto& d : eb.outbox) ASSERT_TRUE(a.on_relayed(relay, d.data));
  eb.outbox.clear();
  ASSERT_TRUE(ok1);
  o.on_slow = [&] { ++slow3; };
  a.request(cb, Method::kMessageNotify, as_bytes("3"), [](RpcResult&&) {}, o);
  ea.outbox.clear();
  later(0ms);
  EXPECT_EQ(slow3, 0) << "a relayed answer left B marked overdue";
  later(2s);
  EXPECT_EQ(slow3, 1);  // and its own wait still ends in a notice
}

TEST_F(Pair, AnOverdueMarkHoldsOnlyAtItsAddressAndNotForRequestsThatWaitByDesign) {
  // B's key named at a false address (a liar's answer): the request there goes overdue, and a request to B at its
  // own address still waits its own time. A request that waits on others by design (rtt_sample false: a
  // dial-back ask) marks nothing when it goes overdue.
  Contact false_b = Contact::from_key(b.identity().public_key(), *Endpoint::parse("10.0.0.9:4000"));
  int slow_false = 0, slow_real = 0;
  RpcOptions o{std::chrono::seconds(3), 3};
  o.on_slow = [&] { ++slow_false; };
  a.request(false_b, Method::kMessageNotify, as_bytes("1"), [](RpcResult&&) {}, o);
  later(260ms);
  ASSERT_EQ(slow_false, 1);
  o.on_slow = [&] { ++slow_real; };
  a.request(cb, Method::kMessageNotify, as_bytes("2"), [](RpcResult&&) {}, o);
  later(0ms);
  EXPECT_EQ(slow_real, 0);
  later(260ms);
  EXPECT_EQ(slow_real, 1);

  ManualEnv ec{3};
  Engine c{ec, make_identity(3)};
  Contact to_b = Contact::from_key(b.identity().public_key(), ep_b);
  int slow_ask = 0, slow_next = 0;
  RpcOptions ask{std::chrono::seconds(12), 4};
  ask.rtt_sample = false;
  ask.on_slow = [&] { ++slow_ask; };
  c.request(to_b, Method::kMessageNotify, as_bytes("ask"), [](RpcResult&&) {}, ask);
  ec.advance(3100ms);
  c.on_wake();
  ASSERT_EQ(slow_ask, 1);
  o.on_slow = [&] { ++slow_next; };
  c.request(to_b, Method::kMessageNotify, as_bytes("next"), [](RpcResult&&) {}, o);
  c.on_wake();
  EXPECT_EQ(slow_next, 0);
}
