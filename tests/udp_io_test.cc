// The real driver's UDP pieces (src/real/udp_io.h, RealDriver::udp_stats): the send queue keeps order and its
// bound when the socket is full, buffers are sized as asked, and the kernel's drops are reported.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "real/udp_io.h"
#include "storjnet/real_driver.h"

using namespace storjnet;

namespace {

// A datagram socket pair whose receiver queue fills up (AF_UNIX: the sender then gets EAGAIN, as a full UDP
// socket does), both ends non-blocking.
struct Pair {
  int fd[2];
  Pair() {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fd), 0);
  }
  ~Pair() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
  // Every datagram waiting at the receiver, as the numbers they carry.
  std::vector<uint32_t> read_all() {
    std::vector<uint32_t> out;
    uint32_t v;
    while (::recv(fd[1], &v, sizeof v, 0) == sizeof v) out.push_back(v);
    return out;
  }
};

ByteView as_view(const uint32_t& v) { return {reinterpret_cast<const uint8_t*>(&v), sizeof v}; }

}  // namespace

TEST(RealDriverUdp, SendQueueKeepsOrderWhileTheSocketIsFull) {
  Pair p;
  real::UdpSendQueue q;
  bool armed = false;
  const uint32_t n = 5000;
  for (uint32_t i = 0; i < n; ++i) armed |= q.send(p.fd[0], nullptr, 0, as_view(i));
  ASSERT_TRUE(armed);  // the receiver's queue filled: the rest waits
  EXPECT_GT(q.queued(), 0u);
  EXPECT_EQ(q.deferred(), q.queued());
  std::vector<uint32_t> got;
  for (int rounds = 0; rounds < 10000 && q.queued(); ++rounds) {
    auto part = p.read_all();
    got.insert(got.end(), part.begin(), part.end());
    auto r = q.flush(p.fd[0]);
    EXPECT_NE(r, real::UdpSendQueue::Flush::kRetryLater);
  }
  EXPECT_EQ(q.flush(p.fd[0]), real::UdpSendQueue::Flush::kEmpty);
  auto rest = p.read_all();
  got.insert(got.end(), rest.begin(), rest.end());
  ASSERT_EQ(got.size(), n);
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(got[i], i);
  EXPECT_EQ(q.dropped(), 0u);
}

TEST(RealDriverUdp, SendQueueIsBoundedAndCountsWhatItDrops) {
  Pair p;
  real::UdpSendQueue q;
  const uint32_t extra = 1000;
  uint32_t i = 0;
  while (q.queued() == 0 && i < 100000) q.send(p.fd[0], nullptr, 0, as_view(i)), ++i;  // fill the receiver
  uint32_t first_queued = i - 1;
  for (uint32_t k = 0; k < real::UdpSendQueue::kMaxDatagrams + extra; ++k, ++i) q.send(p.fd[0], nullptr, 0, as_view(i));
  EXPECT_EQ(q.queued(), real::UdpSendQueue::kMaxDatagrams);
  EXPECT_EQ(q.dropped(), extra + 1);  // the queue held kMaxDatagrams of the kMaxDatagrams + extra + 1 that waited
  // What was queued still goes out in order once the receiver reads.
  std::vector<uint32_t> got;
  for (int rounds = 0; rounds < 100000 && q.queued(); ++rounds) {
    auto part = p.read_all();
    got.insert(got.end(), part.begin(), part.end());
    q.flush(p.fd[0]);
  }
  auto rest = p.read_all();
  got.insert(got.end(), rest.begin(), rest.end());
  ASSERT_GE(got.size(), real::UdpSendQueue::kMaxDatagrams);
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  EXPECT_EQ(got[first_queued], first_queued);
}

TEST(RealDriverUdp, StatsShowBufferSizesAndKernelDrops) {
  // A node whose receive buffer is tiny and whose io thread is held while 2,000 datagrams arrive: the kernel
  // drops most, and udp_stats says so.
  RealDriver::Options o;
  o.udp_rcvbuf = 4096;
  RealDriver driver(o);
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  Node& node = driver.add_node(lo, Identity::generate());
  auto stats = driver.udp_stats(node);
  EXPECT_GT(stats.rcvbuf, 0);
  EXPECT_LT(stats.rcvbuf, 1 << 20);
  EXPECT_EQ(stats.kernel_drops, 0u);

  std::promise<void> release, held;
  driver.post([&] {
    held.set_value();
    release.get_future().wait();
  });
  held.get_future().wait();
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(driver.local_endpoint(node).port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<uint8_t> junk(200, 0x5a);
  for (int i = 0; i < 2000; ++i) ::sendto(s, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  ::close(s);
  release.set_value();
  EXPECT_GT(driver.udp_stats(node).kernel_drops, 1000u);

  // The default asks for 16 MiB receive and 8 MiB send; with CAP_NET_ADMIN (root) past the sysctl caps.
  RealDriver big;
  Node& n2 = big.add_node(lo, Identity::generate());
  auto b = big.udp_stats(n2);
  if (::geteuid() == 0) {
    EXPECT_GE(b.rcvbuf, 16 << 20);
    EXPECT_GE(b.sndbuf, 8 << 20);
  }
  EXPECT_EQ(b.send_queued, 0u);
  EXPECT_EQ(b.send_queue_drops, 0u);
}
