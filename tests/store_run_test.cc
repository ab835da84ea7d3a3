// StoreRun driven by hand: a fake store function that records each store and answers when the test says.
#include <gtest/gtest.h>

#include <map>

#include "dht/store_run.h"

using namespace storjnet;
using namespace storjnet::dht;

namespace {
Contact node(uint8_t n) {
  PublicKey key{};
  key[0] = n;
  key[31] = 0x77;
  return Contact::from_key(key, Endpoint::v4(0x0a000000u + n, 4000));
}

struct FakeStores {
  std::vector<NodeId> sent;                                     // in order
  std::map<NodeId, std::function<void(StoreAnswer)>> pending;   // not answered yet
  std::map<NodeId, StoreAnswer> at_once;                        // answered before the store function returns
  StoreFn fn() {
    return [this](const Contact& to, std::function<void(StoreAnswer)> done) {
      sent.push_back(to.id);
      if (auto a = at_once.find(to.id); a != at_once.end()) return done(a->second);
      pending[to.id] = std::move(done);
    };
  }
  void answer(const Contact& c, StoreAnswer a) {
    auto done = std::move(pending.at(c.id));
    pending.erase(c.id);
    done(a);
  }
};

struct Outcome {
  std::vector<size_t> first_acks;
  std::vector<StoreTally> done;
};

std::shared_ptr<StoreRun> run_with(FakeStores& f, Outcome& o, size_t want) {
  return StoreRun::make(f.fn(), want, [&o](size_t acks) { o.first_acks.push_back(acks); },
                        [&o](StoreTally t) { o.done.push_back(t); });
}
}  // namespace

TEST(StoreRun, StoresOnTheFirstWantedTargetsAndARefusalIsNotReplaced) {
  FakeStores f;
  Outcome o;
  Contact a = node(1), c = node(3), d = node(4);
  auto run = run_with(f, o, 2);
  run->place({a, c, d});
  EXPECT_EQ(f.sent, (std::vector<NodeId>{a.id, c.id}));  // d is not needed
  f.answer(a, true);
  ASSERT_EQ(o.first_acks, (std::vector<size_t>{1}));
  EXPECT_TRUE(o.done.empty());
  run->place({d});  // once only
  f.answer(c, false);
  EXPECT_EQ(f.sent.size(), 2u);
  ASSERT_EQ(o.done.size(), 1u);
  EXPECT_EQ(o.done[0].acks, 1u);
  EXPECT_EQ(o.done[0].refused, 1u);  // a refusal is not replaced
  EXPECT_TRUE(o.done[0].missed.empty());
  EXPECT_EQ(o.first_acks.size(), 1u);
}

TEST(StoreRun, ATargetThatDoesNotAnswerPassesItsTurnOnToTheNextNotYetTried) {
  FakeStores f;
  Outcome o;
  Contact a = node(1), b = node(2), e = node(3), g = node(4);
  auto run = run_with(f, o, 2);
  run->place({a, b, a, e, g});  // a listed twice: stored on once
  EXPECT_EQ(f.sent, (std::vector<NodeId>{a.id, b.id}));
  f.answer(a, std::nullopt);  // a's turn goes to e (a itself is not tried again)
  EXPECT_EQ(f.sent.back(), e.id);
  f.answer(e, true);
  EXPECT_EQ(o.first_acks, (std::vector<size_t>{1}));
  EXPECT_TRUE(o.done.empty());
  f.answer(b, std::nullopt);  // b's turn goes to g
  EXPECT_EQ(f.sent.back(), g.id);
  f.answer(g, true);
  EXPECT_EQ(f.sent.size(), 4u);
  ASSERT_EQ(o.done.size(), 1u);
  EXPECT_EQ(o.done[0].acks, 2u);
  EXPECT_EQ(o.done[0].missed, (std::vector<NodeId>{a.id, b.id}));  // a put forgets a placement that lost a store
  EXPECT_EQ(o.done[0].refused, 0u);
  EXPECT_EQ(o.first_acks.size(), 1u);
}

TEST(StoreRun, AnswersGivenBeforeTheStoreFunctionReturnsEndTheRunExactlyOnce) {
  FakeStores f;
  Outcome o;
  Contact a = node(1), b = node(2), c = node(3), d = node(4);
  f.at_once = {{a.id, std::nullopt}, {b.id, true}, {c.id, true}, {d.id, true}};
  auto run = run_with(f, o, 2);
  run->place({a, b, c, d});
  EXPECT_EQ(f.sent, (std::vector<NodeId>{a.id, b.id, c.id}));  // a's turn went to b, the second store to c
  ASSERT_EQ(o.done.size(), 1u);
  EXPECT_EQ(o.done[0].acks, 2u);
  EXPECT_EQ(o.done[0].missed, std::vector<NodeId>{a.id});
  EXPECT_EQ(o.first_acks, (std::vector<size_t>{1}));
}

TEST(StoreRun, AnEmptyPlacementEndsAtOnce) {
  FakeStores f;
  Outcome o;
  auto run = run_with(f, o, 2);
  run->place({});
  EXPECT_TRUE(f.sent.empty());
  ASSERT_EQ(o.done.size(), 1u);
  EXPECT_EQ(o.done[0].acks, 0u);
  EXPECT_TRUE(o.first_acks.empty());
}
