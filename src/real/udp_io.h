// POSIX pieces of the real driver's UDP sockets: buffer sizing, the kernel's drop counter, and a bounded,
// ordered send queue for datagrams the socket could not take at once. No Asio here: the driver waits for
// writability and calls flush().
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <deque>

#include "storjnet/bytes.h"

namespace storjnet::real {

// Requests `rcv` and `snd` bytes of socket buffer: SO_RCVBUFFORCE/SO_SNDBUFFORCE (past net.core.rmem_max;
// needs CAP_NET_ADMIN), else SO_RCVBUF/SO_SNDBUF (capped by the sysctl). Returns the effective sizes.
struct UdpBuffers {
  int rcvbuf = 0, sndbuf = 0;
};
UdpBuffers size_udp_buffers(int fd, int rcv, int snd);
// Datagrams the kernel dropped on this socket so far (SO_MEMINFO); 0 when the kernel does not say.
uint64_t udp_kernel_drops(int fd);
// Sends one datagram with an IP TTL (v6: hop limit) of `ttl` (1..255) for this send alone: an IP_TTL /
// IPV6_HOPLIMIT control message, so the socket's own TTL never changes. False when it was not sent (full
// socket, bad ttl...): it is never sent with another TTL.
bool send_with_ttl(int fd, bool v6, const sockaddr* to, socklen_t to_len, ByteView dg, int ttl);

// Datagrams in the order sent. While any waits, new ones wait behind it, so order is kept. Bounded in
// datagrams and bytes; beyond either, a datagram is dropped and counted. One thread (the io thread).
class UdpSendQueue {
 public:
  static constexpr size_t kMaxDatagrams = 8192;
  static constexpr size_t kMaxBytes = 8u << 20;
  static constexpr unsigned kBatch = 64;  // datagrams per sendmmsg

  // Sends `dg` to `to` now, or queues it when the socket is full (EAGAIN, ENOBUFS) or others wait. True when
  // the queue went from empty to not empty: the caller then waits for writability and calls flush().
  bool send(int fd, const sockaddr* to, socklen_t to_len, ByteView dg);

  enum class Flush { kEmpty, kWaitWritable, kRetryLater };
  // Sends what waits, in order, until the queue is empty (kEmpty) or the socket is full again
  // (kWaitWritable on EAGAIN; kRetryLater on ENOBUFS, which writability does not signal).
  Flush flush(int fd);

  size_t queued() const { return q_.size(); }
  uint64_t deferred() const { return deferred_; }
  uint64_t dropped() const { return dropped_; }

 private:
  struct Entry {
    sockaddr_storage to;
    socklen_t to_len;
    Bytes data;
  };
  void push(const sockaddr* to, socklen_t to_len, ByteView dg);

  std::deque<Entry> q_;
  size_t bytes_ = 0;
  uint64_t deferred_ = 0, dropped_ = 0;
};

}  // namespace storjnet::real
