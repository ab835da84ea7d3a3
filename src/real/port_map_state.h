// PortMapState: the decisions of the port mapper (real/port_mapping.h), with no I/O: fed the results of
// mapping attempts and the time, it says what to do next and when. Tested without a router
// (tests/port_map_state_test.cc).
//
// Rules: map at once; a granted lease of L is renewed at L/2 (a permanent lease, L = 0, every
// kPermanentRenew, as routers forget mappings when they restart); a failed attempt is retried after a
// backoff that doubles from retry_min to retry_max; a mapping whose renewals keep failing stays "mapped"
// until its lease runs out, then is "lost" (and retried as a fresh mapping). stop() asks for the mapping to be
// removed once when one is held, then nothing more.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "storjnet/endpoint.h"
#include "storjnet/environment.h"

namespace storjnet::real {

class PortMapState {
 public:
  struct Config {
    Duration lease = std::chrono::hours(1);        // asked of the router
    Duration retry_min = std::chrono::seconds(30);  // backoff after the first failure
    Duration retry_max = std::chrono::minutes(30);  // backoff cap
  };
  static constexpr Duration kPermanentRenew = std::chrono::minutes(30);
  static constexpr Duration kMinLease = std::chrono::seconds(10);  // shorter grants are renewed as if this long

  enum class Phase { kStarting, kMapped, kFailed, kLost, kStopped };
  enum class Action { kNone, kMap, kRemove };

  PortMapState() : PortMapState(Config{}) {}
  explicit PortMapState(Config c) : cfg_(c) {}

  // What to do at `now`; kMap both for a first mapping and a renewal (the same request to the router).
  Action next(TimePoint now) const;
  // Marks a mapping whose lease ran out (renewals kept failing) lost. Call before next().
  void tick(TimePoint now);
  // When next() will next ask for something (nullopt: never, i.e. stopped).
  std::optional<TimePoint> wake_at() const;

  // An attempt succeeded: `protocol` ("upnp" or "natpmp") gave `external` for `lease` (0: permanent).
  void on_mapped(std::string protocol, Endpoint external, Duration lease, TimePoint now);
  // An attempt failed with `error`.
  void on_failed(std::string error, TimePoint now);
  // Stop: next() answers kRemove once when a mapping is held (or is granted by an attempt under way), else kNone.
  void stop();
  // The removal was tried (whatever its outcome).
  void on_removed();

  static const char* phase_name(Phase p);
  Phase phase() const { return phase_; }
  const std::string& protocol() const { return protocol_; }
  const std::optional<Endpoint>& external() const { return external_; }
  Duration lease() const { return lease_; }  // as granted (0: permanent)
  std::optional<TimePoint> expires_at() const { return expires_; }
  std::optional<TimePoint> mapped_at() const { return first_mapped_; }
  const std::string& last_error() const { return last_error_; }
  uint64_t attempts() const { return attempts_; }
  uint64_t renewals() const { return renewals_; }
  uint64_t failures() const { return failures_; }
  uint64_t consecutive_failures() const { return consecutive_; }

 private:
  bool held(TimePoint now) const { return external_ && (!expires_ || now < *expires_); }

  Config cfg_;
  Phase phase_ = Phase::kStarting;
  std::string protocol_, last_error_;
  std::optional<Endpoint> external_;
  Duration lease_{0};
  std::optional<TimePoint> expires_, first_mapped_;
  TimePoint due_{0};  // when the next kMap is due
  bool stopping_ = false, remove_pending_ = false;
  uint64_t attempts_ = 0, renewals_ = 0, failures_ = 0, consecutive_ = 0;
};

}  // namespace storjnet::real
