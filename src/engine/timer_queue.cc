#include "engine/timer_queue.h"

namespace storjnet {

TimerId TimerQueue::schedule(TimePoint at, std::function<void()> fn, uint64_t scope) {
  TimerId id{at, next_seq_++};
  timers_.emplace(id, Entry{scope, std::move(fn)});
  return id;
}

void TimerQueue::cancel(TimerId& id) {
  // Extracted, so the function is destroyed (which may run a Once's cancelled callback) once the map is
  // consistent again.
  auto node = id ? timers_.extract(id) : decltype(timers_)::node_type{};
  id = TimerId{};
}

void TimerQueue::take_scope(uint64_t scope, std::vector<std::function<void()>>& out) {
  if (scope == 0) return;
  for (auto it = timers_.begin(); it != timers_.end();) {
    if (it->second.scope == scope) {
      out.push_back(std::move(it->second.fn));
      it = timers_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t TimerQueue::run_due(TimePoint now) {
  size_t ran = 0;
  while (!timers_.empty() && timers_.begin()->first.at <= now) {
    auto node = timers_.extract(timers_.begin());
    node.mapped().fn();
    ++ran;
  }
  return ran;
}

}  // namespace storjnet
