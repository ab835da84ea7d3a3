// Shared helpers for storjnet-bench workloads: percentiles, memory, RESULT_JSON output.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
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

// The distribution of `v` for plots (scripts/plot, opt-in with a workload's --cdf): the 101 nearest-rank
// percentiles q = 0, 0.01, ..., 1 (q = 0 gives the minimum); empty for an empty set. Small whatever the
// sample count, and enough to draw a CDF.
inline std::vector<double> cdf_points(std::vector<double> v) {
  std::vector<double> out;
  if (v.empty()) return out;
  std::sort(v.begin(), v.end());
  for (int i = 0; i <= 100; ++i) {
    size_t rank = static_cast<size_t>(std::ceil(i / 100.0 * v.size()));
    out.push_back(v[std::clamp<size_t>(rank, 1, v.size()) - 1]);
  }
  return out;
}

// How often each whole value occurs in `v`, as {"value": count} (e.g. lookup rounds).
inline nlohmann::json histogram(const std::vector<double>& v) {
  std::map<long long, size_t> counts;
  for (double x : v) ++counts[std::llround(x)];
  nlohmann::json out = nlohmann::json::object();
  for (auto& [value, n] : counts) out[std::to_string(value)] = n;
  return out;
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
