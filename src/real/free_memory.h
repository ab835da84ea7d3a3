// FreeMemory: gives the pages malloc holds free back to the kernel once a burst of work has freed them.
//
// glibc returns only the top of an arena by itself. What a join, a burst of puts or a flood freed between
// long-lived allocations stays resident (counted in the process's RSS) until malloc_trim(0) releases the whole
// free pages inside it. Every `every`, check() reads the free bytes malloc holds (`free_bytes`) and trims when
// they grew by at least kMinGrowth since the last trim (or since their lowest since then): a quiet process, or
// one whose free memory does not grow, is not trimmed again and again. The reading and the trim are
// functions, so the rule is tested without a particular allocator. `glibc()` gives mallinfo2 and malloc_trim;
// under another allocator (a sanitizer's, an LD_PRELOADed one) glibc's arenas hold almost nothing and it never
// trims, and on another C library it reads 0.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace storjnet::real {

class FreeMemory {
 public:
  static constexpr size_t kMinGrowth = 1 << 20;
  struct Allocator {
    std::function<size_t()> free_bytes;  // bytes malloc holds free
    std::function<void()> trim;          // returns the free pages
  };
  static Allocator glibc();

  explicit FreeMemory(Allocator a) : a_(std::move(a)) {}
  // Trims when the free bytes grew by kMinGrowth since the last trim (or their lowest since); true if it did.
  bool check();
  uint64_t trims() const { return trims_; }

 private:
  Allocator a_;
  size_t floor_ = 0;  // free bytes after the last trim, or their lowest since
  uint64_t trims_ = 0;
};

// Runs a FreeMemory over glibc's allocator every `every` on `io`, until destroyed or `io` stops. Create and
// destroy it outside `io`'s thread only while that thread does not run, or on it.
class FreeMemoryTimer {
 public:
  FreeMemoryTimer(boost::asio::io_context& io, std::chrono::milliseconds every);
  ~FreeMemoryTimer();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace storjnet::real
