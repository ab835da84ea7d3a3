#include "real/free_memory.h"

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace storjnet::real {

FreeMemory::Allocator FreeMemory::glibc() {
#if defined(__GLIBC__)
  return {[] { return static_cast<size_t>(mallinfo2().fordblks); }, [] { malloc_trim(0); }};
#else
  return {[] { return size_t{0}; }, [] {}};
#endif
}

bool FreeMemory::check() {
  size_t now = a_.free_bytes();
  if (now < floor_) floor_ = now;
  if (now - floor_ < kMinGrowth) return false;
  a_.trim();
  ++trims_;
  floor_ = a_.free_bytes();  // trimming keeps the chunks free in malloc's view; it only returns their pages
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
