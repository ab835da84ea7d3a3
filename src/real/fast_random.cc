#include "real/fast_random.h"

#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace storjnet::real {

FastRandom::~FastRandom() {
  sodium_memzero(key_.data(), key_.size());
  sodium_memzero(buf_.data(), buf_.size());
}

void FastRandom::refill() {
  pid_t pid = ::getpid();
  if (since_seed_ >= kReseedBytes || pid != pid_) {
    randombytes_buf(key_.data(), key_.size());
    pid_ = pid;
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
