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

TEST(StoreRun, EarlyStoresCountOnlyOnceChosenAndTheirEarlierAnswersAreTaken) {
  FakeStores f;
  Outcome o;
  Contact a = node(1), b = node(2), c = node(3), d = node(4);
  auto run = run_with(f, o, 2);
  run->early(a);
  run->early(b);
  run->early(a);  // once per node
  EXPECT_EQ(f.sent, (std::vector<NodeId>{a.id, b.id}));
  f.answer(a, true);
  f.answer(b, true);
  EXPECT_TRUE(o.first_acks.empty());  // nothing counts before the placement is known
  run->place({a, c, d});              // b is not among the 2 chosen: its acknowledgement never counts
  ASSERT_EQ(o.first_acks, (std::vector<size_t>{1}));  // a's, taken from its early answer
  EXPECT_EQ(f.sent, (std::vector<NodeId>{a.id, b.id, c.id}));  // a is not stored on twice; d is not needed
  EXPECT_TRUE(o.done.empty());
  run->early(d);  // too late: the placement is known
  EXPECT_EQ(f.sent.size(), 3u);
  f.answer(c, false);
  ASSERT_EQ(o.done.size(), 1u);
  EXPECT_EQ(o.done[0].acks, 1u);
  EXPECT_EQ(o.done[0].refused, 1u);  // a refusal is not replaced
}

TEST(StoreRun, ATargetThatDoesNotAnswerPassesItsTurnOnToAnEarlyStoreWhichIsAdopted) {
  FakeStores f;
  Outcome o;
  Contact a = node(1), b = node(2), e = node(3), g = node(4);
  auto run = run_with(f, o, 2);
  run->early(e);
  run->place({a, b, e, g});
  EXPECT_EQ(f.sent, (std::vector<NodeId>{e.id, a.id, b.id}));
  f.answer(a, std::nullopt);  // a's turn goes to e, whose store is already out: adopted, not sent again
  EXPECT_EQ(f.sent.size(), 3u);
  f.answer(e, true);
  EXPECT_EQ(o.first_acks, (std::vector<size_t>{1}));
  EXPECT_TRUE(o.done.empty());
  f.answer(b, std::nullopt);  // b's turn goes to g
  EXPECT_EQ(f.sent.back(), g.id);
  f.answer(g, true);
  ASSERT_EQ(o.done.size(), 1u);
  EXPECT_EQ(o.done[0].acks, 2u);
  EXPECT_EQ(o.first_acks.size(), 1u);
}

TEST(StoreRun, AnswersGivenBeforeTheStoreFunctionReturnsEndTheRunExactlyOnce) {
  FakeStores f;
  Outcome o;
  Contact a = node(1), b = node(2), c = node(3), d = node(4);
  f.at_once = {{a.id, std::nullopt}, {b.id, true}, {c.id, true}, {d.id, true}};
  auto run = run_with(f, o, 2);
  run->early(c);  // answered at once, not counted yet
  run->place({a, b, c, d});
  EXPECT_EQ(f.sent, (std::vector<NodeId>{c.id, a.id, b.id}));  // a's turn went to c, adopted
  ASSERT_EQ(o.done.size(), 1u);
  EXPECT_EQ(o.done[0].acks, 2u);
  EXPECT_EQ(o.first_acks, (std::vector<size_t>{1}));
}

TEST(StoreRun, EarlyStoresAreBoundedAndAnEmptyPlacementEndsAtOnce) {
  FakeStores f;
  Outcome o;
  auto run = run_with(f, o, 2);
  for (uint8_t n = 1; n <= 10; ++n) run->early(node(n));  // a liar's path naming many "near" nodes
  EXPECT_EQ(f.sent.size(), 2u);
  run->place({});
  ASSERT_EQ(o.done.size(), 1u);
  EXPECT_EQ(o.done[0].acks, 0u);
  f.answer(node(1), true);  // an early store that was never chosen answers late: nothing more happens
  EXPECT_EQ(o.done.size(), 1u);
  EXPECT_TRUE(o.first_acks.empty());
}
