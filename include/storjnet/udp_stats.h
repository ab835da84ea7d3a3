// UdpStats: what a real driver's UDP socket of one node did (RealDriver::udp_stats; shown in the API's
// /metrics and status, docs/api.md). A plain struct so the API layer can show it without the driver.
#pragma once
#include <cstddef>
#include <cstdint>

namespace storjnet {

struct UdpStats {
  uint64_t kernel_drops = 0;      // datagrams the kernel dropped on the socket (receive buffer full; SO_MEMINFO)
  size_t send_queued = 0;         // datagrams waiting for the socket to become writable, now
  uint64_t send_deferred = 0;     // datagrams that had to wait (the socket was full: EAGAIN, ENOBUFS)
  uint64_t send_queue_drops = 0;  // datagrams dropped because that wait queue was full
  int rcvbuf = 0, sndbuf = 0;     // effective socket buffer sizes in bytes, as the kernel reports them
};

}  // namespace storjnet
