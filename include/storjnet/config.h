// Configuration of a node's layers. Every interval and bound is here so tests and benches can shrink them.
#pragma once
#include <cstddef>
#include <cstdint>

#include "storjnet/environment.h"

namespace storjnet {
namespace wire {
struct ReassemblyLimits {
  size_t max_message = 128 * 1024;
  size_t max_per_peer = 1024 * 1024;
  size_t max_per_prefix = 4 * 1024 * 1024;  // one IPv4 /24 or IPv6 /48 (Endpoint::prefix())
  size_t max_total = 16 * 1024 * 1024;
  Duration timeout = 5s;
};

}  // namespace wire

struct EngineConfig {
  uint32_t network_id = 0x53544a31;  // "STJ1"
  Duration rpc_timeout = 2s;         // total time a request may take, retries included
  int rpc_attempts = 3;              // transmissions per request (1 = no retry)
  size_t max_sessions = 65536;       // per-peer crypto sessions kept (least recently used evicted)
  size_t max_pending_rpcs = 65536;   // outstanding requests; more fail at once
  double peer_request_rate = 5000;   // requests/s accepted from one peer for rate-limited methods
  double peer_request_burst = 10000;
  wire::ReassemblyLimits reassembly;
};

}  // namespace storjnet
