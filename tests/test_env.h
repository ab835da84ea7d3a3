// ManualEnv: an Environment for unit tests. Time moves only when the test says; sent datagrams are
// captured in `outbox`; randomness is a fixed-seed stream.
#pragma once
#include <cstring>
#include <functional>
#include <vector>

#include "crypto/session.h"
#include "engine/message.h"
#include "engine/methods.h"
#include "sim/rng.h"
#include "storjnet/config.h"
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
  // Key work (Environment::offload) waits in `jobs` when `offloads` is set, until run_jobs(): each job's work,
  // then its done, in order, as the other core and then the node's thread would.
  bool offload(std::function<void()> work, std::function<void()> done) override {
    if (!offloads) return false;
    jobs.emplace_back(std::move(work), std::move(done));
    return true;
  }
  size_t run_jobs() {
    size_t n = 0;
    while (!jobs.empty()) {
      auto job = std::move(jobs.front());
      jobs.erase(jobs.begin());
      job.first();
      job.second();
      ++n;
    }
    return n;
  }

  std::vector<Sent> outbox;
  TimePoint wake = TimePoint::max();
  bool offloads = false;
  std::vector<std::pair<std::function<void()>, std::function<void()>>> jobs;

 private:
  TimePoint now_{1'000'000'000};
  sim::Rng rng_;
};

// Delivers everything A sent to B and B to A (each at the other's endpoint) until both outboxes are empty.
template <class E>
void pump(ManualEnv& ea, E& a, const Endpoint& ep_a, ManualEnv& eb, E& b, const Endpoint& ep_b) {
  while (!ea.outbox.empty() || !eb.outbox.empty()) {
    auto out_a = std::move(ea.outbox);
    ea.outbox.clear();
    for (auto& s : out_a) b.on_datagram(ep_a, s.data);
    auto out_b = std::move(eb.outbox);
    eb.outbox.clear();
    for (auto& s : out_b) a.on_datagram(ep_b, s.data);
  }
}

// Forger: seals messages as `me` towards the node whose key is `peer`, exactly as an engine would, for tests
// that forge sources or flood. Each datagram gets the next nonce counter of one session (epoch, salt).
class Forger {
 public:
  Forger(Identity me, const PublicKey& peer, uint64_t epoch = 1, uint32_t network_id = EngineConfig{}.network_id)
      : me_(std::move(me)), network_id_(network_id), epoch_(epoch) {
    valid_ = crypto::derive_session_key(me_, peer, key_, /*cache=*/false);  // keep the receiver paying
  }
  bool valid() const { return valid_; }
  const Identity& identity() const { return me_; }
  Bytes seal(ByteView message, const wire::Cookie* cookie = nullptr) {
    return msg::seal(network_id_, me_.public_key(), key_, wire::make_nonce(epoch_, 0x5a17, counter_++),
                     msg::whole_frame(message), cookie);
  }
  Bytes request(Method m, ByteView payload, uint32_t rpc_id = 1, const wire::Cookie* cookie = nullptr) {
    return seal(msg::make(msg::kRequest, rpc_id, static_cast<uint8_t>(m), payload), cookie);
  }

 private:
  Identity me_;
  uint32_t network_id_;
  uint64_t epoch_, counter_ = 0;
  crypto::SessionKey key_{};
  bool valid_ = false;
};

// A deterministic identity for tests: seed bytes [n (LE, 8 bytes), tag, 0...].
inline Identity test_identity(uint64_t n, uint8_t tag = 0x51) {
  std::array<uint8_t, 32> seed{};
  std::memcpy(seed.data(), &n, 8);
  seed[8] = tag;
  return Identity::from_seed(seed);
}

}  // namespace storjnet::test
