// FastRandom: the real driver's random source (Environment::random), a buffered CSPRNG for one thread.
//
// Each call to the OS (getrandom, through libsodium) is a system call of ~1-2 µs here, and the engine draws
// 8 bytes per request (its unguessable rpc id): a syscall per ping. FastRandom draws a 32-byte key from the
// OS and expands it with ChaCha20 (libsodium's randombytes_buf_deterministic) into a block; the block's first
// 32 bytes become the next key ("fast key erasure": no key that produced bytes already handed out is kept),
// the rest is handed out and wiped as it goes. It re-keys from the OS every kReseedBytes and, dropping what it
// holds, after a fork (pthread_atfork: a child must not repeat the parent's stream). Requests larger than kLarge go to the OS directly.
// Not thread-safe: one per io thread (the driver's hosts share their thread's).
#pragma once
#include <array>
#include <cstdint>
#include <span>

namespace storjnet::real {

class FastRandom {
 public:
  static constexpr size_t kBlock = 512;              // bytes handed out per ChaCha20 expansion
  static constexpr size_t kLarge = 64;               // larger requests: straight from the OS
  static constexpr uint64_t kReseedBytes = 1 << 20;  // OS key at least this often
  FastRandom() = default;
  ~FastRandom();
  FastRandom(const FastRandom&) = delete;
  FastRandom& operator=(const FastRandom&) = delete;

  void fill(std::span<uint8_t> out);
  uint64_t reseeds() const { return reseeds_; }  // OS keys drawn so far (tests)

 private:
  void refill();

  std::array<uint8_t, 32> key_{};
  std::array<uint8_t, kBlock> buf_{};
  size_t pos_ = kBlock;  // buf_[pos_..] not handed out yet
  uint64_t since_seed_ = kReseedBytes;
  uint64_t generation_ = ~uint64_t(0);  // forks seen when last keyed
  uint64_t reseeds_ = 0;
};

}  // namespace storjnet::real
