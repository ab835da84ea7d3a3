// ManualEnv: an Environment for unit tests. Time moves only when the test says; sent datagrams are
// captured in `outbox`; randomness is a fixed-seed stream.
#pragma once
#include <cstring>
#include <vector>

#include "sim/rng.h"
#include "storjnet/environment.h"

namespace storjnet::test {

struct Sent {
  Endpoint to;
  Bytes data;
};

class ManualEnv final : public Environment {
 public:
  explicit ManualEnv(uint64_t seed = 7) : rng_(seed) {}
  TimePoint now() override { return now_; }
  uint64_t unix_us() override { return 1'700'000'000'000'000ull + now_.count() / 1000; }
  void send(const Endpoint& to, ByteView d) override { outbox.push_back({to, Bytes(d.begin(), d.end())}); }
  void wake_at(TimePoint at) override { wake = at; }
  void random(std::span<uint8_t> out) override {
    for (size_t i = 0; i < out.size(); i += 8) {
      uint64_t v = rng_.next();
      std::memcpy(out.data() + i, &v, std::min<size_t>(8, out.size() - i));
    }
  }
  void advance(Duration d) { now_ += d; }

  std::vector<Sent> outbox;
  TimePoint wake = TimePoint::max();

 private:
  TimePoint now_{1'000'000'000};
  sim::Rng rng_;
};

}  // namespace storjnet::test
