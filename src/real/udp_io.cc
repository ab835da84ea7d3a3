#include "real/udp_io.h"

#include <linux/sock_diag.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace storjnet::real {

namespace {
int get_int(int fd, int opt) {
  int v = 0;
  socklen_t len = sizeof v;
  return ::getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : 0;
}
void set_size(int fd, int force_opt, int opt, int bytes) {
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) != 0)
    ::setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}
bool full(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }
}  // namespace

UdpBuffers size_udp_buffers(int fd, int rcv, int snd) {
  set_size(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcv);
  set_size(fd, SO_SNDBUFFORCE, SO_SNDBUF, snd);
  return {get_int(fd, SO_RCVBUF), get_int(fd, SO_SNDBUF)};
}

uint64_t udp_kernel_drops(int fd) {
  uint32_t info[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) != 0 || len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
    return 0;
  return info[SK_MEMINFO_DROPS];
}

bool send_with_ttl(int fd, bool v6, const sockaddr* to, socklen_t to_len, ByteView dg, int ttl) {
  if (ttl < 1 || ttl > 255) return false;
  iovec iov{const_cast<uint8_t*>(dg.data()), dg.size()};
  alignas(cmsghdr) std::array<uint8_t, CMSG_SPACE(sizeof(int))> control{};
  msghdr m{};
  m.msg_name = const_cast<sockaddr*>(to);
  m.msg_namelen = to_len;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control.data();
  m.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
  c->cmsg_type = v6 ? IPV6_HOPLIMIT : IP_TTL;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &ttl, sizeof ttl);
  return ::sendmsg(fd, &m, MSG_DONTWAIT) == static_cast<ssize_t>(dg.size());
}

void UdpSendQueue::push(const sockaddr* to, socklen_t to_len, ByteView dg) {
  ++deferred_;
  if (q_.size() >= kMaxDatagrams || bytes_ + dg.size() > kMaxBytes) {
    ++dropped_;
    return;
  }
  Entry e;
  e.to = {};
  if (to_len) std::memcpy(&e.to, to, std::min<size_t>(to_len, sizeof e.to));
  e.to_len = to_len;
  e.data.assign(dg.begin(), dg.end());
  bytes_ += e.data.size();
  q_.push_back(std::move(e));
}

bool UdpSendQueue::send(int fd, const sockaddr* to, socklen_t to_len, ByteView dg) {
  if (!q_.empty()) {
    push(to, to_len, dg);
    return false;  // a wait is armed already
  }
  if (::sendto(fd, dg.data(), dg.size(), MSG_DONTWAIT, to, to_len) >= 0) return false;
  if (!full(errno)) return false;  // unreachable and the like: lost, as a network would lose it
  push(to, to_len, dg);
  return !q_.empty();
}

UdpSendQueue::Flush UdpSendQueue::flush(int fd) {
  std::array<mmsghdr, kBatch> msgs;
  std::array<iovec, kBatch> iov;
  while (!q_.empty()) {
    unsigned n = 0;
    for (auto it = q_.begin(); it != q_.end() && n < kBatch; ++it, ++n) {
      iov[n] = {it->data.data(), it->data.size()};
      msgs[n] = {};
      msgs[n].msg_hdr.msg_name = &it->to;
      msgs[n].msg_hdr.msg_namelen = it->to_len;
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
    }
    int sent = ::sendmmsg(fd, msgs.data(), n, MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Flush::kWaitWritable;
      if (errno == ENOBUFS) return Flush::kRetryLater;
      sent = 1;  // the first datagram cannot go (unreachable...): lost, as a network would lose it
    }
    for (int i = 0; i < sent; ++i) {
      bytes_ -= q_.front().data.size();
      q_.pop_front();
    }
  }
  return Flush::kEmpty;
}

}  // namespace storjnet::real
