#include "engine/timer_queue.h"

namespace storjnet {

TimerId TimerQueue::schedule(TimePoint at, std::function<void()> fn) {
  TimerId id{at, next_seq_++};
  timers_.emplace(id, std::move(fn));
  return id;
}

void TimerQueue::cancel(TimerId& id) {
  if (id) timers_.erase(id);
  id = TimerId{};
}

size_t TimerQueue::run_due(TimePoint now) {
  size_t ran = 0;
  while (!timers_.empty() && timers_.begin()->first.at <= now) {
    auto node = timers_.extract(timers_.begin());
    node.mapped()();
    ++ran;
  }
  return ran;
}

}  // namespace storjnet
