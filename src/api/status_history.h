// StatusHistory: what one node did each second over the last few minutes, for the status page's charts
// (docs/api.md, "Status page").
//
// A ring of at most `capacity` samples of fixed size (memory: capacity * sizeof(StatusSample), about 23 KiB
// for the default 300). record() turns the node's cumulative counters into the interval's counts: datagrams
// and bytes each way, lookups started and completed, the completed lookups' latency percentiles, drops in
// total and the interval's three largest drop reasons. The first call only sets the baseline. Counts
// saturate at 2^32 - 1 per interval. Not thread-safe: call on the node's thread.
#pragma once
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "storjnet/node.h"

namespace storjnet::api {

struct StatusSample {
  int64_t unix_ms = 0;       // end of the interval (wall clock)
  uint32_t interval_ms = 0;  // its length
  uint32_t datagrams_in = 0, datagrams_out = 0, bytes_in = 0, bytes_out = 0;
  uint32_t lookups = 0, lookups_completed = 0;
  uint32_t lookup_p50_us = 0, lookup_p90_us = 0, lookup_p99_us = 0;  // of the completed ones; 0 when none
  uint32_t drops = 0;
  struct Drop {
    uint8_t reason = 0;  // index into StatusHistory::drop_reasons()
    uint32_t count = 0;  // 0: unused slot
  };
  std::array<Drop, 3> top_drops{};  // largest first; drops minus their sum is "other"
};

class StatusHistory {
 public:
  explicit StatusHistory(size_t capacity = 300);

  // One sample from the node's counters now; `unix_ms` and `mono_ms` (a monotonic clock) are the caller's.
  void record(const NodeStats& node, const DhtStats& dht, int64_t unix_ms, int64_t mono_ms);

  // Oldest first.
  std::vector<StatusSample> samples() const;
  // The newest sample, or nullptr before the second record().
  const StatusSample* last() const { return size_ ? &ring_[(next_ + ring_.size() - 1) % ring_.size()] : nullptr; }
  size_t capacity() const { return ring_.size(); }
  // The drop reasons' names, in NodeStats::drops order (empty before the first record()).
  const std::vector<std::string_view>& drop_reasons() const { return drop_names_; }

  // {"capacity": N, "drop_reasons": [...], "samples": [{"t": unix_ms, "ms": interval, "dg_in": .., "dg_out",
  //  "b_in", "b_out", "lookups", "lookups_done", "p50_us", "p90_us", "p99_us", "drops", "top_drops":
  //  [[reason, n]...]}...]}
  nlohmann::json to_json() const;

 private:
  std::vector<StatusSample> ring_;
  size_t next_ = 0, size_ = 0;
  bool primed_ = false;
  int64_t last_mono_ms_ = 0;
  uint64_t dg_in_ = 0, dg_out_ = 0, b_in_ = 0, b_out_ = 0, lookups_ = 0, completed_ = 0;
  std::vector<uint64_t> drops_;
  std::vector<std::string_view> drop_names_;
};

}  // namespace storjnet::api
