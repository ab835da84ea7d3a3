#include "progress.h"

#include <cmath>

namespace storjnet::cli {

std::string human_bytes(uint64_t n) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string human_rate(double bytes_per_s) {
  return human_bytes(static_cast<uint64_t>(std::max(0.0, bytes_per_s))) + "/s";
}

std::string human_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  auto t = static_cast<uint64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", static_cast<unsigned long long>(t / 3600),
                  static_cast<unsigned long long>(t / 60 % 60), static_cast<unsigned long long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%llu:%02llu", static_cast<unsigned long long>(t / 60),
                  static_cast<unsigned long long>(t % 60));
  return buf;
}

Progress::Progress(std::FILE* out, bool tty, std::string label) : out_(out), tty_(tty), label_(std::move(label)) {}

double Progress::rate() const {
  if (samples_.size() < 2) return 0;
  double dt = std::chrono::duration<double>(samples_.back().first - samples_.front().first).count();
  if (dt <= 0) return 0;
  return static_cast<double>(samples_.back().second - samples_.front().second) / dt;
}

void Progress::update(uint64_t bytes, uint64_t total) {
  auto now = Clock::now();
  samples_.emplace_back(now, bytes);
  while (samples_.size() > 2 && now - samples_.front().first > std::chrono::seconds(5)) samples_.pop_front();
  double r = rate();
  std::string eta = r > 0 && total >= bytes ? human_duration(static_cast<double>(total - bytes) / r) : "--:--";
  int pct = total ? static_cast<int>(100.0 * static_cast<double>(bytes) / static_cast<double>(total)) : 100;
  if (tty_) {
    constexpr int kWidth = 24;
    int fill = pct * kWidth / 100;
    std::string bar(static_cast<size_t>(fill), '=');
    if (fill < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - fill - 1), ' ');
    std::fprintf(out_, "\r\033[K%s %3d%% [%s] %s / %s  %s  ETA %s", label_.c_str(), pct, bar.c_str(),
                 human_bytes(bytes).c_str(), human_bytes(total).c_str(), human_rate(r).c_str(), eta.c_str());
    drawn_ = true;
  } else {
    if (last_line_ != Clock::time_point{} && now - last_line_ < std::chrono::seconds(5)) return;
    last_line_ = now;
    std::fprintf(out_, "%s %d%% %s / %s %s ETA %s\n", label_.c_str(), pct, human_bytes(bytes).c_str(),
                 human_bytes(total).c_str(), human_rate(r).c_str(), eta.c_str());
  }
  std::fflush(out_);
}

void Progress::clear() {
  if (!drawn_) return;
  std::fprintf(out_, "\r\033[K");
  std::fflush(out_);
  drawn_ = false;
}

}  // namespace storjnet::cli
