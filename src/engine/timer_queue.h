// TimerQueue: a node's timers, ordered by deadline. The owner asks its Environment for one wake-up at
// next_deadline() and calls run_due(now) when it comes. Each timer belongs to a scope (Engine::Scope; 0: the
// engine's own), and take_scope removes every timer of one scope at once.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "storjnet/environment.h"

namespace storjnet {

struct TimerId {
  TimePoint at{};
  uint64_t seq = 0;  // 0: no timer
  explicit operator bool() const { return seq != 0; }
  auto operator<=>(const TimerId&) const = default;
};

class TimerQueue {
 public:
  static constexpr TimePoint kNever = TimePoint::max();

  TimerId schedule(TimePoint at, std::function<void()> fn, uint64_t scope = 0);
  // Cancelling an expired or unknown timer is a no-op.
  void cancel(TimerId& id);
  // Removes every timer of `scope` (not 0), appending their functions (not run) to `out`.
  void take_scope(uint64_t scope, std::vector<std::function<void()>>& out);
  // Runs every timer whose deadline is <= now, in deadline order (timers added meanwhile included when due).
  size_t run_due(TimePoint now);
  TimePoint next_deadline() const { return timers_.empty() ? kNever : timers_.begin()->first.at; }
  size_t size() const { return timers_.size(); }

 private:
  struct Entry {
    uint64_t scope = 0;
    std::function<void()> fn;
  };
  std::map<TimerId, Entry> timers_;
  uint64_t next_seq_ = 1;
};

}  // namespace storjnet
