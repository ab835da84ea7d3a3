// OpGate: the JSON-RPC API's admission gate for DHT operations of one node (docs/api.md, "Busy"). At most
// `active` operations run at once; more wait in a first-come-first-served queue bounded in entries and in
// bytes (of their params); beyond either bound submit() refuses, and the caller answers error -32002 "busy".
// A burst (a batch of 1,000 dht_put) so becomes a steady stream of lookups the node's socket can keep up with.
//
// Contract: submit() either refuses (returns false, `start` is dropped uncalled) or calls `start` exactly once,
// now or when an earlier operation ends, with a Ticket; the operation ends when its Ticket is released
// (release() or the last copy destroyed, whichever first; extra releases are ignored). Thread-safe: submit and
// release from any thread. `start` runs outside the gate's lock, never nested in another start on the same
// thread (a start that ends its operation at once does not recurse), so the stack stays flat. The gate's state
// lives as long as any Ticket, so a late release after the owner is gone is harmless; destroying the gate drops
// the waiting operations uncalled.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

namespace storjnet::api {

struct OpGateLimits {
  size_t active = 32;                  // operations running at once
  size_t queued = 4096;                // operations waiting
  size_t queued_bytes = 16u << 20;     // bytes of the waiting operations (their params, as submitted)
};

class OpGate {
  struct State;

 public:
  // Handed to an operation when it starts; releasing it (or dropping every copy) ends the operation.
  class Ticket {
   public:
    void release() {
      if (!released_.exchange(true)) state_->end();
    }
    ~Ticket() { release(); }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    explicit Ticket(std::shared_ptr<State> s) : state_(std::move(s)) {}

   private:
    std::shared_ptr<State> state_;
    std::atomic<bool> released_{false};
  };
  using Start = std::function<void(std::shared_ptr<Ticket>)>;

  struct Stats {
    size_t active = 0, queued = 0, queued_bytes = 0;
    uint64_t started = 0, refused = 0;
  };

  explicit OpGate(OpGateLimits limits = {}) : state_(std::make_shared<State>(limits)) {}
  // Drops the waiting operations uncalled; tickets still out end harmlessly and start nothing.
  ~OpGate() { state_->close(); }
  OpGate(const OpGate&) = delete;
  OpGate& operator=(const OpGate&) = delete;

  // Runs `start` now when fewer than `active` operations run and none waits; queues it otherwise; false
  // (and `start` never runs) when the queue is full in entries or would pass its byte bound.
  bool submit(size_t bytes, Start start) { return state_->submit(bytes, std::move(start)); }
  Stats stats() const {
    std::lock_guard lock(state_->mu);
    return state_->stats;
  }
  const OpGateLimits& limits() const { return state_->limits; }

 private:
  struct Waiting {
    size_t bytes;
    Start start;
  };
  struct State : std::enable_shared_from_this<State> {
    explicit State(OpGateLimits l) : limits(l) {}
    const OpGateLimits limits;
    mutable std::mutex mu;
    std::deque<Waiting> queue;   // FCFS
    std::deque<Start> ready;     // admitted, to be started by the thread pumping
    bool pumping = false;
    bool closed = false;
    Stats stats;

    void close() {
      std::deque<Waiting> dropped;
      std::deque<Start> not_started;
      {
        std::lock_guard lock(mu);
        closed = true;
        dropped.swap(queue);
        if (!pumping) not_started.swap(ready);
        stats.queued = 0;
        stats.queued_bytes = 0;
      }
    }  // what they captured goes here, outside the lock

    bool submit(size_t bytes, Start start) {
      std::unique_lock lock(mu);
      if (closed) return false;
      if (stats.active < limits.active && queue.empty()) {
        ++stats.active;
        ++stats.started;
        ready.push_back(std::move(start));
        pump(lock);
        return true;
      }
      if (queue.size() >= limits.queued || bytes > limits.queued_bytes - stats.queued_bytes) {
        ++stats.refused;
        return false;
      }
      stats.queued_bytes += bytes;
      stats.queued = queue.size() + 1;
      queue.push_back({bytes, std::move(start)});
      return true;
    }

    void end() {
      std::unique_lock lock(mu);
      --stats.active;
      while (!closed && stats.active < limits.active && !queue.empty()) {
        ++stats.active;
        ++stats.started;
        stats.queued_bytes -= queue.front().bytes;
        ready.push_back(std::move(queue.front().start));
        queue.pop_front();
      }
      stats.queued = queue.size();
      pump(lock);
    }

    // Starts the admitted operations, outside the lock; one thread at a time does it (a start that ends its
    // operation at once only adds to `ready`, which the loop below then takes).
    void pump(std::unique_lock<std::mutex>& lock) {
      if (pumping) return;
      pumping = true;
      while (!ready.empty()) {
        Start s = std::move(ready.front());
        ready.pop_front();
        auto ticket = std::make_shared<Ticket>(shared_from_this());
        lock.unlock();
        s(std::move(ticket));
        s = nullptr;  // whatever `s` captured goes before the lock is taken again
        lock.lock();
      }
      pumping = false;
    }
  };

  std::shared_ptr<State> state_;
};

}  // namespace storjnet::api
