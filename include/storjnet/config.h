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

// Anti-amplification (docs/protocol.md, "Threat model"): what a node sends to an unproven address.
struct AmplificationLimits {
  size_t max_entries = 65536;             // (address, key) pairs tracked; least recently used evicted
  double factor = 3;                      // bytes sent per byte received while unproven
  size_t hold_per_address = 256 * 1024;   // answers held for one unproven (address, key), bytes
  size_t hold_per_prefix = 1024 * 1024;   // held for one /24 (IPv4) or /48 (IPv6)
  size_t hold_total = 8 * 1024 * 1024;    // held in all
  Duration hold_timeout = 3s;             // a held answer waits this long for the address proof
  double unproven_request_rate = 200;     // requests/s one peer key gets answered from an unproven address
                                          // (burst the same); at half, an address challenge goes out; beyond,
                                          // dropped unanswered (unproven_limit)
};

struct EngineConfig {
  uint32_t network_id = 0x53544a31;  // "STJ1"
  Duration rpc_timeout = 2s;         // total time a request may take, retries included
  int rpc_attempts = 3;              // transmissions per request (1 = no retry)
  size_t max_sessions = 65536;       // per-peer crypto sessions kept (least recently used evicted)
  Duration session_idle = 15s;       // a session unused this long (nothing pending, rate budgets full) shrinks
                                     // to its replay floor and is re-made on demand; 0: never
  size_t max_dormant_sessions = 262144;  // replay floors of shrunk sessions kept (least recently used evicted)
  size_t max_pending_rpcs = 65536;   // outstanding requests; more fail at once
  double peer_request_rate = 5000;   // requests/s accepted from one peer for rate-limited methods
  double peer_request_burst = 10000;
  double refusal_rate = 20;          // "rate limited" answers/s to one peer (burst the same); beyond, dropped unanswered
  wire::ReassemblyLimits reassembly;
  // --- hostile traffic (docs/protocol.md, "Threat model") ---
  AmplificationLimits amplification;
  size_t max_pending_per_peer = 16384;    // outstanding requests to one peer key (a quarter of max_pending_rpcs)
  size_t max_pending_per_prefix = 32768;  // ... to one /24 or /48 prefix (a half)
  double new_key_rate = 2000;             // key derivations/s for senders without a session (all of them)
  double new_key_burst = 2000;
  double new_key_prefix_rate = 100;       // under load: per prefix, for datagrams with a valid cookie
  double new_key_prefix_burst = 100;
  size_t new_key_prefix_table = 4096;     // prefixes tracked under load (table reset when full)
  double cookie_reply_rate = 10000;       // under load: cookie replies/s in all (burst the same); beyond, unanswered
  double cookie_reply_prefix_rate = 200;  // ... to one prefix (burst the same)
  size_t failed_key_cache = 4096;         // keys whose datagram failed, with their derived key
  Duration cookie_lifetime = 120s;        // cookie secret rotation; a cookie is valid 1 to 2 lifetimes
  Duration cookie_keep = 60s;             // a sender attaches a received cookie this long
  size_t cookies_kept = 4096;             // cookies a sender keeps (table reset when full)
  Duration epoch_reserve = 3600s;         // epoch high-water mark persisted this far ahead
};

}  // namespace storjnet
