#include "dht/newcomer_check.h"

#include <algorithm>

namespace storjnet::dht {

NewcomerCheck::NewcomerCheck(Engine& engine, RoutingTable& table, const DhtConfig& cfg, Admit admit, Busy busy)
    : engine_(engine), table_(table), admit_(std::move(admit)), busy_(std::move(busy)), k_(cfg.k),
      wait_(cfg.newcomer_wait), quiet_after_(cfg.quiet_after), rpc_timeout_(cfg.rpc_timeout),
      rpc_attempts_(cfg.rpc_attempts), scope_(engine.scope()) {}

NewcomerCheck::~NewcomerCheck() { scope_.end(); }

bool NewcomerCheck::wanted(const Contact& c) const {
  if (table_.find(c.id)) return false;
  int b = table_.bucket_of(c.id);
  return table_.bucket(static_cast<size_t>(b)).size() < k_ ||
         table_.oldest_in_bucket_of(c.id, engine_.now() - quiet_after_).has_value();
}

bool NewcomerCheck::hungry(const Contact& c) const {
  return table_.bucket(static_cast<size_t>(table_.bucket_of(c.id))).size() < k_ / 2;
}

void NewcomerCheck::check(const Contact& c) {
  if (held_.size() >= kMax || held_.count(c.id) || !wanted(c) || engine_.address_proven(c.endpoint, c.key)) return;
  held_.insert(c.id);
  // Our answer to its request asks for an echo: it enters when the echo comes (Engine::prove_on_answer), and
  // the ping below is for a newcomer whose echo did not come by the end of its wait.
  bool asked = wait_ > Duration{} && engine_.prove_on_answer(c);
  if (asked) ++asked_;
  Duration wait = busy_() ? wait_ : std::min(wait_, kIdleRoundTrips * engine_.round_trip());
  if (asked) {  // the echo gets one request attempt's time (at most newcomer_wait), a hungry bucket's no more
    Duration echo = std::min(wait_, rpc_timeout_ / std::max(rpc_attempts_, 1));
    wait = hungry(c) ? echo : std::max(wait, echo);
  } else if (hungry(c)) {
    wait = Duration{};
  }
  if (wait <= Duration{}) return ping(c);
  // Waits differ (idle or not): the queue stays ordered by when each one is due.
  TimePoint due = engine_.now() + wait;
  auto at = std::upper_bound(waiting_.begin(), waiting_.end(), due,
                             [](TimePoint t, const Waiting& w) { return t < w.due; });
  bool first = at == waiting_.begin();
  waiting_.insert(at, {c, due});
  if (!first) return;
  engine_.cancel(timer_);
  timer_ = engine_.schedule(scope_, wait, [this] { flush(); });
}

void NewcomerCheck::ping(const Contact& c) {
  ++pings_;
  engine_.ping(scope_, c, [this, id = c.id](std::optional<NodeId>) { held_.erase(id); },
               RpcOptions{rpc_timeout_, rpc_attempts_});
}

void NewcomerCheck::lookups_ended() {
  if (waiting_.empty()) return;
  engine_.cancel(timer_);
  flush(true);
}

void NewcomerCheck::flush(bool all) {
  timer_ = TimerId{};
  TimePoint now = engine_.now();
  while (!waiting_.empty() && (all || waiting_.front().due <= now)) {
    Contact c = std::move(waiting_.front().contact);
    waiting_.pop_front();
    if (!wanted(c) || engine_.address_proven(c.endpoint, c.key)) {
      held_.erase(c.id);
      ++spared_;
      if (wanted(c)) admit_(c);
      continue;
    }
    ping(c);
  }
  if (!waiting_.empty()) timer_ = engine_.schedule(scope_, waiting_.front().due - now, [this] { flush(); });
}

}  // namespace storjnet::dht
