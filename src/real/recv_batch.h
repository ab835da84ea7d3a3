// RecvBatch: the receive buffers of one io thread for recvmmsg (real_driver.cc, Host::drain). Handlers run one
// at a time on a thread, and a datagram is handed to its node before the next read, so one set serves every
// node of the thread.
#pragma once
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>

namespace storjnet::real {

struct RecvBatch {
  static constexpr unsigned kBatch = 32;
  std::array<std::array<uint8_t, 2048>, kBatch> data;
  std::array<iovec, kBatch> iov;
  std::array<mmsghdr, kBatch> msgs;
  std::array<sockaddr_storage, kBatch> from;
  // Headers set once; recvmmsg changes only msg_namelen, msg_flags and msg_len, which the reader resets for
  // the entries it used (re-filling all 32 on every wake-up was ~2% of a ping's io-thread time).
  RecvBatch() {
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {data[i].data(), data[i].size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
  }
};

}  // namespace storjnet::real
