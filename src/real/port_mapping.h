// PortMapper: asks the home router to forward a node's UDP port (UPnP IGD, else NAT-PMP), renews the
// mapping before its lease ends and removes it on stop(). Real side only: the blocking calls of miniupnpc
// and libnatpmp run on the mapper's own thread, never on a driver's io thread; every call is bounded
// (discovery kDiscoverMs, SOAP calls by miniupnpc's timeouts, NAT-PMP kNatPmpMs). The decisions (when to
// renew, back off, give up) are real/port_map_state.h.
//
// Only a mapping whose external port equals the node's own port is kept: peers learn a node's address from
// the source of its datagrams, and a router's NAT keeps the source port when it is free, so only then is the
// address peers see the mapped one (a different external port would take inbound packets nobody sends).
// Another host on the LAN holding the port shows as a failure ("port taken"); nodes behind one router need
// distinct ports. The node itself is not told anything: strangers reach it, and dial-back (src/dht/dial_back.h) can
// then find it reachable at that address.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "real/port_map_state.h"

namespace storjnet::real {

struct PortMappingOptions {
  uint16_t port = 0;                          // the node's UDP port (internal and asked external)
  PortMapState::Config state;                 // lease asked (1 h), retry backoff
  int discover_ms = 1000;                     // UPnP SSDP discovery
  int natpmp_ms = 1500;                       // NAT-PMP, per request
  std::string description = "storjnet";       // shown in the router's list of mappings
};

// A snapshot for the API (docs/api.md, /api/status "port_mapping").
struct PortMappingStatus {
  std::string state;      // starting, mapped, failed, lost, stopped
  std::string protocol;   // "upnp", "natpmp", or empty
  std::string external;   // "a.b.c.d:port" while mapped, else empty
  uint16_t internal_port = 0;
  int64_t lease_s = 0;        // as granted (0: permanent)
  int64_t expires_in_s = -1;  // -1: no expiry (or not mapped)
  double mapped_after_s = -1;  // from the mapper's start to its first mapping (-1: never mapped)
  std::string last_error;
  uint64_t attempts = 0, renewals = 0, failures = 0;
};

class PortMapper {
 public:
  static constexpr int kRemoveWaitMs = 3000;  // bound on the removal at stop()

  explicit PortMapper(PortMappingOptions options);  // starts the thread; the first attempt at once
  ~PortMapper();                                    // stop()
  PortMapper(const PortMapper&) = delete;
  PortMapper& operator=(const PortMapper&) = delete;

  // Removes the mapping when one is held (bounded), then ends the thread. Idempotent.
  void stop();
  // Waits until the first attempt ended (mapped or failed) or `timeout` passed; returns whether mapped.
  bool wait_first(std::chrono::milliseconds timeout);
  PortMappingStatus status() const;

 private:
  struct Igd;
  TimePoint now() const { return std::chrono::steady_clock::now() - origin_; }
  void run();
  void attempt();  // UPnP, then NAT-PMP; feeds state_
  void remove();
  std::string try_upnp(Endpoint& external, Duration& lease);    // "" on success, else the error
  std::string try_natpmp(Endpoint& external, Duration& lease);

  PortMappingOptions opt_;
  std::chrono::steady_clock::time_point origin_ = std::chrono::steady_clock::now();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  PortMapState state_;  // under mu_
  bool first_done_ = false, stopping_ = false;
  std::unique_ptr<Igd> igd_;  // the UPnP router found by discovery (mapper thread only)
  std::thread thread_;
};

}  // namespace storjnet::real
