// OpGate (src/api/op_gate.h): the API's admission gate for DHT calls. The running bound, first-come-first-served
// order, refusal beyond the queue's entry and byte bounds (an attack of huge params), exactly-once starts, and
// releases from other threads.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "api/op_gate.h"

using storjnet::api::OpGate;
using storjnet::api::OpGateLimits;
using Ticket = std::shared_ptr<OpGate::Ticket>;

namespace {

// Submits operations that record their start and keep their ticket until the test releases it.
struct Recorder {
  std::vector<int> started;      // operation numbers, in start order
  std::vector<Ticket> tickets;   // by start order
  OpGate gate;                   // destroyed first: what still waits is dropped, the tickets then end harmlessly
  explicit Recorder(OpGateLimits l) : gate(l) {}
  bool submit(int op, size_t bytes = 1) {
    return gate.submit(bytes, [this, op](Ticket t) {
      started.push_back(op);
      tickets.push_back(std::move(t));
    });
  }
};

}  // namespace

TEST(OpGate, RunsAtMostTheActiveBoundAndStartsTheRestInArrivalOrder) {
  Recorder r({.active = 3, .queued = 100, .queued_bytes = 1 << 20});
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(r.submit(i));
  EXPECT_EQ(r.started, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(r.gate.stats().active, 3u);
  EXPECT_EQ(r.gate.stats().queued, 7u);
  // Each end starts exactly one more, oldest first, whichever operation ends.
  r.tickets[1]->release();
  EXPECT_EQ(r.started, (std::vector<int>{0, 1, 2, 3}));
  r.tickets[1]->release();  // a second release of the same ticket is ignored
  EXPECT_EQ(r.started.size(), 4u);
  r.tickets[0].reset();     // dropping the last copy ends it too
  r.tickets[3]->release();
  EXPECT_EQ(r.started, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  for (size_t i = 0; i < r.tickets.size(); ++i)
    if (r.tickets[i]) r.tickets[i]->release();
  // Releasing as they come: everything runs, in order, each once.
  for (size_t i = 0; i < r.tickets.size(); ++i)
    if (r.tickets[i]) r.tickets[i]->release();
  EXPECT_EQ(r.started, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(r.gate.stats().queued, 0u);
  EXPECT_EQ(r.gate.stats().queued_bytes, 0u);
  EXPECT_EQ(r.gate.stats().started, 10u);
}

TEST(OpGate, RefusesBeyondTheQueueBoundAndAcceptsAgainOnceItDrains) {
  Recorder r({.active = 2, .queued = 5, .queued_bytes = 1 << 20});
  int refused = 0;
  for (int i = 0; i < 20; ++i) refused += !r.submit(i);
  EXPECT_EQ(refused, 13);  // 2 running, 5 waiting
  EXPECT_EQ(r.gate.stats().refused, 13u);
  EXPECT_EQ(r.started, (std::vector<int>{0, 1}));
  r.tickets[0]->release();
  EXPECT_TRUE(r.submit(100));   // one place freed in the queue
  EXPECT_FALSE(r.submit(101));
  while (r.gate.stats().active) {
    for (size_t i = 0; i < r.tickets.size(); ++i) r.tickets[i]->release();  // releases start more: by index
  }
  // A refused operation never starts: the started ones are the 7 admitted plus the late one, once each.
  EXPECT_EQ(r.started, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 100}));
}

TEST(OpGate, HugeParamsCannotPassTheByteBound) {
  // An attacker queues operations of 1 MiB of params each behind a stuck one: the queue's bytes stay within the
  // bound however many are sent, and small operations still fit once space frees up.
  const size_t kBound = 16u << 20;
  Recorder r({.active = 1, .queued = 4096, .queued_bytes = kBound});
  EXPECT_TRUE(r.submit(-1, 100));  // runs, and is stuck
  int accepted = 0;
  for (int i = 0; i < 1000; ++i) {
    accepted += r.submit(i, 1u << 20);
    ASSERT_LE(r.gate.stats().queued_bytes, kBound);
  }
  EXPECT_EQ(accepted, 16);
  EXPECT_FALSE(r.submit(5000, kBound + 1));  // larger than the bound on its own: never queued
  EXPECT_FALSE(r.submit(5001, 1));           // the bound is full to the byte
  r.tickets[0]->release();                   // one huge op starts and leaves the queue
  EXPECT_EQ(r.gate.stats().queued_bytes, 15u << 20);
  EXPECT_TRUE(r.submit(5002, 1000));
  EXPECT_EQ(r.started.size(), 2u);
}

TEST(OpGate, AStartThatEndsAtOnceDoesNotRecurse) {
  // 100,000 operations that each end inside their own start while many wait: the stack stays flat (a nested
  // start would overflow it) and every one runs once.
  OpGate gate({.active = 1, .queued = 200000, .queued_bytes = 1u << 30});
  std::vector<int> order;
  Ticket first;
  gate.submit(1, [&](Ticket t) { first = std::move(t); });
  const int n = 100000;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(gate.submit(1, [&order, i](Ticket t) { order.push_back(i); t->release(); }));
  first->release();
  ASSERT_EQ(order.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(order[i], i);
  EXPECT_EQ(gate.stats().active, 0u);
}

TEST(OpGate, ReleasesFromManyThreadsStartEveryOperationExactlyOnce) {
  OpGate gate({.active = 4, .queued = 100000, .queued_bytes = 1u << 30});
  const int kThreads = 4, kPer = 5000;
  std::vector<std::atomic<int>> starts(kThreads * kPer);
  std::mutex mu;
  std::vector<Ticket> held;  // started operations, ended by the releasing thread
  std::atomic<int> refused{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t)
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        int op = t * kPer + i;
        if (!gate.submit(8, [&, op](Ticket tk) {
              starts[op].fetch_add(1);
              std::lock_guard lock(mu);
              held.push_back(std::move(tk));
            }))
          refused.fetch_add(1);
      }
    });
  std::atomic<bool> stop{false};
  std::thread releaser([&] {
    while (true) {
      std::vector<Ticket> batch;
      {
        std::lock_guard lock(mu);
        batch.swap(held);
      }
      for (auto& t : batch) t->release();
      if (batch.empty() && stop.load() && gate.stats().active == 0 && gate.stats().queued == 0) return;
      if (batch.empty()) std::this_thread::yield();
    }
  });
  for (auto& t : submitters) t.join();
  stop = true;
  releaser.join();
  EXPECT_EQ(refused.load(), 0);
  for (auto& s : starts) ASSERT_EQ(s.load(), 1);
  EXPECT_EQ(gate.stats().started, static_cast<uint64_t>(kThreads * kPer));
}

TEST(OpGate, ATicketOutlivingTheGateIsHarmless) {
  Ticket kept;
  {
    OpGate gate({.active = 1, .queued = 1, .queued_bytes = 100});
    gate.submit(1, [&](Ticket t) { kept = std::move(t); });
    gate.submit(1, [&](Ticket) { ADD_FAILURE() << "a waiting operation started after its gate was gone"; });
  }
  kept->release();  // the gate's state lives as long as its tickets; the waiting operation was dropped
  SUCCEED();
}
