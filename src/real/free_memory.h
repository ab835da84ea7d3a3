// FreeMemory: gives the pages malloc holds free back to the kernel once a burst of work has freed them.
//
// glibc returns only the top of an arena by itself. What a join, a burst of puts or a flood freed between
// long-lived allocations stays resident (counted in the process's RSS) until malloc_trim(0) releases the whole
// free pages inside it. Every `every`, check() reads the process's resident bytes (`resident_bytes`) and trims
// when they grew by at least kMinGrowth since the last trim (or since their lowest since then) and have stopped
// growing (by less than kMinGrowth / 4 since the last check): the holes appear when a burst of work ends, and a
// trim while it still grows returns little. A quiet process, or one whose memory does not grow, is not
// trimmed again and again. The reading is /proc/self/statm (a few bytes): glibc's own count of its free bytes
// (mallinfo2) walks every free chunk of every arena under its lock, 12 ms of an io thread each second in a
// settled 1,000-node process. The reading and the trim are
// functions, so the rule is tested without a particular allocator. `glibc()` gives them; under another
// allocator (a sanitizer's, an LD_PRELOADed one) the trim returns nothing, and without /proc it reads 0.
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
    std::function<size_t()> resident_bytes;  // the process's resident memory
    std::function<void()> trim;              // returns malloc's free pages
  };
  static Allocator glibc();

  // The checks count growth from here: what the process held before is not trimmed for, what it gains before
  // the first check is.
  explicit FreeMemory(Allocator a) : a_(std::move(a)), floor_(a_.resident_bytes()), last_(floor_) {}
  // Trims when the resident bytes grew by kMinGrowth since the last trim (or their lowest since) and grew by
  // less than kMinGrowth / 4 since the last check; true if it did.
  bool check();
  uint64_t trims() const { return trims_; }

 private:
  Allocator a_;
  size_t floor_;  // resident bytes after the last trim, or their lowest since (at first: when it was made)
  size_t last_;   // the last check's reading
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
