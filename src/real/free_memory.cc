#include "real/free_memory.h"

#include <unistd.h>

#include <cstdio>
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace storjnet::real {

namespace {
size_t resident_bytes() {  // /proc/self/statm: "size resident shared ..." in pages
  std::FILE* f = std::fopen("/proc/self/statm", "re");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  int got = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return got == 2 ? static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}
}  // namespace

FreeMemory::Allocator FreeMemory::glibc() {
#if defined(__GLIBC__)
  return {resident_bytes, [] { malloc_trim(0); }};
#else
  return {resident_bytes, [] {}};
#endif
}

bool FreeMemory::check() {
  size_t now = a_.resident_bytes();
  size_t growing = now > last_ ? now - last_ : 0;
  last_ = now;
  if (now < floor_) floor_ = now;
  if (now - floor_ < kMinGrowth || growing >= kMinGrowth / 4) return false;
  a_.trim();
  ++trims_;
  floor_ = last_ = a_.resident_bytes();  // what the trim returned is gone from it
  return true;
}

struct FreeMemoryTimer::State : std::enable_shared_from_this<State> {
  State(boost::asio::io_context& io, std::chrono::milliseconds e) : timer(io), every(e) {}
  void arm() {
    timer.expires_after(every);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->stopped) self->memory.check(), self->arm();
    });
  }
  FreeMemory memory{FreeMemory::glibc()};
  boost::asio::steady_timer timer;
  std::chrono::milliseconds every;
  bool stopped = false;
};

FreeMemoryTimer::FreeMemoryTimer(boost::asio::io_context& io, std::chrono::milliseconds every)
    : state_(std::make_shared<State>(io, every)) {
  state_->arm();
}

FreeMemoryTimer::~FreeMemoryTimer() {
  state_->stopped = true;
  state_->timer.cancel();
}

}  // namespace storjnet::real
