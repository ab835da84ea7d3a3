// Shared helpers for storjnet-bench workloads: percentiles, memory, RESULT_JSON output.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace storjnet::bench {

// Nearest-rank percentile (sorted[ceil(q*n)-1]) of `v`; 0 for an empty set.
inline double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// A field of /proc/self/status in KiB (VmRSS, VmHWM, Threads...).
inline long proc_status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return 0;
}

inline double peak_rss_mb() { return proc_status_kb("VmHWM") / 1024.0; }

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline void print_result(const nlohmann::json& j) {
  std::printf("RESULT_JSON %s\n", j.dump().c_str());
  std::fflush(stdout);
}

}  // namespace storjnet::bench
