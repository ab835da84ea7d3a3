#include "api/status_history.h"

#include <algorithm>
#include <chrono>
#include <limits>

namespace storjnet::api {

namespace {

uint32_t clamp32(uint64_t v) { return static_cast<uint32_t>(std::min<uint64_t>(v, std::numeric_limits<uint32_t>::max())); }
// The change of a counter that only grows (a node restarted in place would reset it: count from zero).
uint32_t delta(uint64_t now, uint64_t before) { return clamp32(now >= before ? now - before : now); }

// Nearest-rank percentile of sorted values.
uint64_t percentile(const std::vector<uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

static_assert(sizeof(StatusSample) <= 80, "a sample stays small: the ring holds 300 per node");

StatusHistory::StatusHistory(size_t capacity) : ring_(std::max<size_t>(capacity, 1)) {}

void StatusHistory::record(const NodeStats& node, const DhtStats& dht, int64_t unix_ms, int64_t mono_ms) {
  if (drop_names_.empty())
    for (const auto& d : node.drops) drop_names_.push_back(d.first);
  drops_.resize(node.drops.size(), 0);
  StatusSample s;
  s.unix_ms = unix_ms;
  s.interval_ms = clamp32(static_cast<uint64_t>(std::max<int64_t>(mono_ms - last_mono_ms_, 0)));
  s.datagrams_in = delta(node.datagrams_in, dg_in_);
  s.datagrams_out = delta(node.datagrams_out, dg_out_);
  s.bytes_in = delta(node.bytes_in, b_in_);
  s.bytes_out = delta(node.bytes_out, b_out_);
  s.lookups = delta(dht.lookups, lookups_);
  s.lookups_completed = delta(dht.lookups_completed, completed_);
  // The lookups completed since the last sample are the newest entries of `recent`.
  size_t n = std::min<size_t>(s.lookups_completed, dht.recent.size());
  std::vector<uint64_t> us;
  us.reserve(n);
  for (size_t i = dht.recent.size() - n; i < dht.recent.size(); ++i)
    us.push_back(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(dht.recent[i].elapsed).count()));
  std::sort(us.begin(), us.end());
  s.lookup_p50_us = clamp32(percentile(us, 0.50));
  s.lookup_p90_us = clamp32(percentile(us, 0.90));
  s.lookup_p99_us = clamp32(percentile(us, 0.99));
  for (size_t i = 0; i < node.drops.size() && i < drop_names_.size(); ++i) {
    uint32_t d = delta(node.drops[i].second, drops_[i]);
    drops_[i] = node.drops[i].second;
    if (!d) continue;
    s.drops = clamp32(uint64_t{s.drops} + d);
    // Keep the three largest, largest first.
    StatusSample::Drop in{static_cast<uint8_t>(i), d};
    for (auto& slot : s.top_drops)
      if (in.count > slot.count) std::swap(in, slot);
  }
  dg_in_ = node.datagrams_in;
  dg_out_ = node.datagrams_out;
  b_in_ = node.bytes_in;
  b_out_ = node.bytes_out;
  lookups_ = dht.lookups;
  completed_ = dht.lookups_completed;
  last_mono_ms_ = mono_ms;
  if (!primed_) {  // the baseline: counts since the node started are not one interval's
    primed_ = true;
    return;
  }
  ring_[next_] = s;
  next_ = (next_ + 1) % ring_.size();
  size_ = std::min(size_ + 1, ring_.size());
}

std::vector<StatusSample> StatusHistory::samples() const {
  std::vector<StatusSample> out;
  out.reserve(size_);
  for (size_t i = 0; i < size_; ++i) out.push_back(ring_[(next_ + ring_.size() - size_ + i) % ring_.size()]);
  return out;
}

nlohmann::json StatusHistory::to_json() const {
  using json = nlohmann::json;
  json reasons = json::array();
  for (auto r : drop_names_) reasons.push_back(r);
  json samples = json::array();
  for (const auto& s : this->samples()) {
    json top = json::array();
    for (const auto& d : s.top_drops)
      if (d.count) top.push_back(json::array({d.reason, d.count}));
    samples.push_back({{"t", s.unix_ms}, {"ms", s.interval_ms}, {"dg_in", s.datagrams_in}, {"dg_out", s.datagrams_out},
                       {"b_in", s.bytes_in}, {"b_out", s.bytes_out}, {"lookups", s.lookups},
                       {"lookups_done", s.lookups_completed}, {"p50_us", s.lookup_p50_us},
                       {"p90_us", s.lookup_p90_us}, {"p99_us", s.lookup_p99_us}, {"drops", s.drops},
                       {"top_drops", std::move(top)}});
  }
  return {{"capacity", ring_.size()}, {"drop_reasons", std::move(reasons)}, {"samples", std::move(samples)}};
}

}  // namespace storjnet::api
