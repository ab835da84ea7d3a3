// Progress: the CLI's progress display for a transfer. On a terminal one line redrawn in place (percent, a
// bar, bytes, rate, ETA); otherwise a plain line at the start and every few seconds, for logs.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>

namespace storjnet::cli {

std::string human_bytes(uint64_t n);    // "512 B", "3.4 MiB", "1.0 GiB"
std::string human_rate(double bytes_per_s);  // "215.3 MiB/s"
std::string human_duration(double s);  // "0:03", "1:02:03"

class Progress {
 public:
  using Clock = std::chrono::steady_clock;
  Progress(std::FILE* out, bool tty, std::string label);
  // Shows `bytes` of `total` now (the rate is measured over the last few seconds of updates).
  void update(uint64_t bytes, uint64_t total);
  // Removes the redrawn line (terminal); nothing otherwise.
  void clear();
  double rate() const;  // bytes/s over the recent window

 private:
  std::FILE* out_;
  bool tty_;
  std::string label_;
  std::deque<std::pair<Clock::time_point, uint64_t>> samples_;
  Clock::time_point last_line_{};
  bool drawn_ = false;
};

}  // namespace storjnet::cli
