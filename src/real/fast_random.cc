#include "real/fast_random.h"

#include <pthread.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

namespace storjnet::real {

namespace {
// Counts forks in this process's children: a generator whose generation differs discards what it holds.
std::atomic<uint64_t> fork_generation{0};
uint64_t current_generation() {
  static std::once_flag once;
  std::call_once(once, [] { ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); }); });
  return fork_generation.load(std::memory_order_relaxed);
}
}  // namespace

FastRandom::~FastRandom() {
  sodium_memzero(key_.data(), key_.size());
  sodium_memzero(buf_.data(), buf_.size());
}

void FastRandom::refill() {
  if (since_seed_ >= kReseedBytes) {
    randombytes_buf(key_.data(), key_.size());
    since_seed_ = 0;
    ++reseeds_;
  }
  std::array<uint8_t, 32 + kBlock> out;
  static_assert(sizeof(key_) == randombytes_SEEDBYTES);
  randombytes_buf_deterministic(out.data(), out.size(), key_.data());
  std::memcpy(key_.data(), out.data(), key_.size());
  std::memcpy(buf_.data(), out.data() + key_.size(), kBlock);
  sodium_memzero(out.data(), out.size());
  since_seed_ += kBlock;
  pos_ = 0;
}

void FastRandom::fill(std::span<uint8_t> out) {
  if (out.size() > kLarge) return randombytes_buf(out.data(), out.size());
  if (uint64_t g = current_generation(); g != generation_) {  // first use, or a forked child
    generation_ = g;
    since_seed_ = kReseedBytes;
    pos_ = kBlock;
  }
  while (!out.empty()) {
    if (pos_ == kBlock) refill();
    size_t n = std::min(out.size(), kBlock - pos_);
    std::memcpy(out.data(), buf_.data() + pos_, n);
    sodium_memzero(buf_.data() + pos_, n);
    pos_ += n;
    out = out.subspan(n);
  }
}

}  // namespace storjnet::real
