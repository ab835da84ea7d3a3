// Birthday punching in the real driver: its fresh ports (src/real/fresh_ports.h, Environment::open_fresh_ports)
// send from every port of a group until a datagram from the peer hits one, which then is the only way to the
// peer; other sources are dropped, unhit groups close at the end of their life, and the bounds hold. And
// Environment::send_with_ttl (src/real/udp_io.h) sends with the TTL asked for that datagram alone.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "engine/engine.h"
#include "node/node_internals.h"
#include "real/fresh_ports.h"
#include "storjnet/real_driver.h"

using namespace storjnet;
using namespace std::chrono_literals;

namespace {

ByteView view(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// A plain UDP socket on 127.0.0.1, the peer the fresh ports talk to.
struct Udp {
  struct Got {
    uint16_t port = 0;  // the sender's
    std::string data;
    int ttl = -1;  // with IP_RECVTTL
  };
  int fd = -1;
  Endpoint ep;

  explicit Udp(bool recv_ttl = false) {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ep = Endpoint::v4(INADDR_LOOPBACK, ntohs(a.sin_port));
    int on = 1;
    if (recv_ttl) {
      EXPECT_EQ(::setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof on), 0);
    }
  }
  ~Udp() { ::close(fd); }

  void send_to(uint16_t port, std::string_view s) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    EXPECT_EQ(::sendto(fd, s.data(), s.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(s.size()));
  }
  // The next datagram, waiting up to `wait` for it.
  std::optional<Got> recv(std::chrono::milliseconds wait = 10s) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return std::nullopt;
    char buf[2048];
    alignas(cmsghdr) char control[256];
    sockaddr_in from{};
    iovec iov{buf, sizeof buf};
    msghdr m{};
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &m, MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    Got g{ntohs(from.sin_port), std::string(buf, static_cast<size_t>(n)), -1};
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) std::memcpy(&g.ttl, CMSG_DATA(c), sizeof g.ttl);
    return g;
  }
  // What is queued now (loopback sends arrive before sendto returns).
  std::vector<Got> drain() {
    std::vector<Got> out;
    while (auto g = recv(0ms)) out.push_back(*g);
    return out;
  }
};

// Runs `io` until `done` holds (10 s at most).
template <class F>
bool run_until(boost::asio::io_context& io, F done) {
  auto until = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < until) io.run_for(5ms);
  return done();
}

// Polls `done` until it holds (10 s at most).
template <class F>
bool eventually(F done) {
  auto until = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  return done();
}

struct Delivered {
  Endpoint from;
  std::string data;
};

struct Unit {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::vector<Delivered> got;
  real::FreshPorts fp;
  Endpoint bind = Endpoint::v4(INADDR_LOOPBACK, 0);
  explicit Unit(Duration idle = Environment::kFreshPortIdle, Duration sweep = 15s)
      : fp(io, [this](const Endpoint& f, ByteView b) { got.push_back({f, std::string(b.begin(), b.end())}); },
           idle, sweep) {}
};

}  // namespace

TEST(FreshPorts, HitPortBecomesTheOnlyWayAndOthersAreDropped) {
  Unit u;
  Udp s, other;
  ASSERT_EQ(u.fp.open(s.ep, u.bind, 8, 30s), 8u);
  EXPECT_EQ(u.fp.sockets(), 8u);
  EXPECT_EQ(u.fp.open(s.ep, u.bind, 8, 30s), 0u);  // a second open for the same peer changes nothing
  EXPECT_EQ(u.fp.sockets(), 8u);
  auto ports = u.fp.ports(s.ep);
  ASSERT_EQ(ports.size(), 8u);
  std::set<uint16_t> fresh;
  for (auto& p : ports) {
    EXPECT_EQ(p.ip_string(), "127.0.0.1");
    fresh.insert(p.port);
  }
  ASSERT_EQ(fresh.size(), 8u);

  // Unhit: a send leaves from each port.
  ASSERT_TRUE(u.fp.send(s.ep, view("hello")));
  std::set<uint16_t> from;
  for (auto& g : s.drain()) {
    EXPECT_EQ(g.data, "hello");
    from.insert(g.port);
  }
  EXPECT_EQ(from, fresh);

  // Another source first (dropped), then the peer, on the same port: only the peer's datagram is delivered.
  uint16_t hit = ports[3].port;
  other.send_to(hit, "intruder");
  s.send_to(hit, "answer");
  ASSERT_TRUE(run_until(u.io, [&] { return !u.got.empty(); }));
  ASSERT_EQ(u.got.size(), 1u);
  EXPECT_EQ(u.got[0].from, s.ep);
  EXPECT_EQ(u.got[0].data, "answer");
  EXPECT_TRUE(u.fp.hit(s.ep));
  EXPECT_EQ(u.fp.sockets(), 1u);
  ASSERT_EQ(u.fp.ports(s.ep).size(), 1u);
  EXPECT_EQ(u.fp.ports(s.ep)[0].port, hit);

  // After the hit, sends leave from the hit port alone.
  ASSERT_TRUE(u.fp.send(s.ep, view("next")));
  auto after = s.drain();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].port, hit);
  EXPECT_EQ(after[0].data, "next");

  // The other ports are closed: datagrams to them reach nobody; the hit port still delivers.
  for (uint16_t p : fresh)
    if (p != hit) s.send_to(p, "late");
  other.send_to(hit, "intruder again");
  s.send_to(hit, "marker");
  ASSERT_TRUE(run_until(u.io, [&] { return u.got.size() >= 2; }));  // the marker came after the intruder
  ASSERT_EQ(u.got.size(), 2u);
  EXPECT_EQ(u.got[1].data, "marker");
}

TEST(FreshPorts, UnhitGroupClosesAtTheEndOfItsLife) {
  Unit u;
  Udp s;
  ASSERT_EQ(u.fp.open(s.ep, u.bind, 4, 100ms), 4u);
  ASSERT_TRUE(u.fp.send(s.ep, view("early")));
  EXPECT_EQ(s.drain().size(), 4u);
  ASSERT_TRUE(run_until(u.io, [&] { return u.fp.sockets() == 0; }));  // the life timer closed them
  EXPECT_EQ(u.fp.groups(), 0u);
  EXPECT_FALSE(u.fp.send(s.ep, view("late")));  // the caller sends from its own port again
  EXPECT_TRUE(s.drain().empty());
  // A new group may be opened once the old one is gone.
  EXPECT_EQ(u.fp.open(s.ep, u.bind, 2, 30s), 2u);
}

TEST(FreshPorts, HitPortClosesWhenIdle) {
  Unit u(200ms, 50ms);
  Udp s;
  ASSERT_EQ(u.fp.open(s.ep, u.bind, 4, 30s), 4u);
  auto ports = u.fp.ports(s.ep);
  s.send_to(ports[0].port, "answer");
  ASSERT_TRUE(run_until(u.io, [&] { return u.fp.hit(s.ep); }));
  EXPECT_EQ(u.fp.sockets(), 1u);
  ASSERT_TRUE(run_until(u.io, [&] { return u.fp.sockets() == 0; }));
  EXPECT_FALSE(u.fp.send(s.ep, view("x")));
}

TEST(FreshPorts, Bounds) {
  Unit u;
  Udp s;
  auto peer = [](uint16_t port) { return Endpoint::v4(INADDR_LOOPBACK, port); };
  // 256 sockets in all: a request past that gets fewer, then none.
  EXPECT_EQ(u.fp.open(peer(1), u.bind, 200, 30s), 200u);
  EXPECT_EQ(u.fp.open(peer(2), u.bind, 100, 30s), real::FreshPorts::kMaxSockets - 200);
  EXPECT_EQ(u.fp.open(peer(3), u.bind, 10, 30s), 0u);
  EXPECT_EQ(u.fp.sockets(), real::FreshPorts::kMaxSockets);
  EXPECT_EQ(u.fp.groups(), 2u);
  u.fp.close_all();
  EXPECT_EQ(u.fp.sockets(), 0u);

  // 16 groups in all: one hit (the least recently used), 15 unhit. A 17th evicts the hit one; an 18th (none
  // hit) is refused.
  ASSERT_EQ(u.fp.open(s.ep, u.bind, 2, 30s), 2u);
  s.send_to(u.fp.ports(s.ep)[0].port, "answer");
  ASSERT_TRUE(run_until(u.io, [&] { return u.fp.hit(s.ep); }));
  for (uint16_t p = 1; p < real::FreshPorts::kMaxGroups; ++p) ASSERT_EQ(u.fp.open(peer(p), u.bind, 1, 30s), 1u);
  EXPECT_EQ(u.fp.groups(), real::FreshPorts::kMaxGroups);
  EXPECT_EQ(u.fp.open(peer(100), u.bind, 1, 30s), 1u);
  EXPECT_EQ(u.fp.groups(), real::FreshPorts::kMaxGroups);
  EXPECT_FALSE(u.fp.hit(s.ep));
  EXPECT_TRUE(u.fp.ports(s.ep).empty());
  EXPECT_EQ(u.fp.open(peer(101), u.bind, 1, 30s), 0u);
  EXPECT_EQ(u.fp.sockets(), real::FreshPorts::kMaxGroups);
  u.fp.close_all();

  // Out of descriptors (EMFILE): fewer sockets, no exception.
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  int probe = ::dup(0);
  ASSERT_GE(probe, 0);
  ::close(probe);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(probe) + 5;  // about 5 more descriptors
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  size_t n = u.fp.open(peer(7), u.bind, 50, 30s);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_LT(n, 50u);
  EXPECT_EQ(u.fp.sockets(), n);
}

// Handlers of closed ports and of the timer run after the FreshPorts is gone without touching it.
TEST(FreshPorts, DestroyedWithDatagramsAndTimersPending) {
  boost::asio::io_context io;
  Udp s;
  size_t delivered = 0;
  {
    real::FreshPorts fp(io, [&](const Endpoint&, ByteView) { ++delivered; });
    ASSERT_EQ(fp.open(s.ep, Endpoint::v4(INADDR_LOOPBACK, 0), 4, 10ms), 4u);
    for (auto& p : fp.ports(s.ep)) s.send_to(p.port, "answer");
    io.poll();  // readiness noticed, handlers queued
  }
  io.run();
  EXPECT_LE(delivered, 1u);
}

// The real driver: a node's Environment opens the ports, its sends use them, the peer's answer reaches the node,
// and an unhit group's end sends the node's datagrams from its own port again.
TEST(FreshPorts, RealDriverSendsFromFreshPortsUntilHit) {
  RealDriver driver;
  Node& n = driver.add_node(Endpoint::v4(INADDR_LOOPBACK, 0), Identity::generate());
  Endpoint own = driver.local_endpoint(n);
  Environment& env = *driver.call([&] { return &NodeInternals::engine(n).env(); });
  Udp s, s2;
  ASSERT_EQ(driver.call([&] { return env.open_fresh_ports(s.ep, 8, 30s); }), 8u);
  EXPECT_EQ(driver.call([&] { return env.open_fresh_ports(s.ep, 8, 30s); }), 0u);
  driver.call([&] { env.send(s.ep, view("hello")); });
  std::set<uint16_t> from;
  for (auto& g : s.drain()) from.insert(g.port);
  ASSERT_EQ(from.size(), 8u);
  EXPECT_FALSE(from.contains(own.port));

  // The peer answers on one of them: the node gets it (a foreign datagram: counted as a drop by the engine).
  auto drops = [&] { return driver.call([&] { return n.stats().drops_total(); }); };
  uint64_t before = drops();
  uint16_t hit = *std::next(from.begin(), 5);
  s.send_to(hit, std::string(10, '\xcd'));
  ASSERT_TRUE(eventually([&] { return drops() == before + 1; }));
  driver.call([&] { env.send(s.ep, view("next")); });
  auto after = s.drain();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].port, hit);
  // The other ports are closed; datagrams to them reach nothing, and the hit one keeps delivering.
  for (uint16_t p : from)
    if (p != hit) s.send_to(p, std::string(10, '\xcd'));
  s.send_to(hit, std::string(10, '\xcd'));
  ASSERT_TRUE(eventually([&] { return drops() >= before + 2; }));
  EXPECT_EQ(drops(), before + 2);

  // An unhit group whose life ends: sends leave from the node's port again.
  ASSERT_EQ(driver.call([&] { return env.open_fresh_ports(s2.ep, 4, 200ms); }), 4u);
  driver.call([&] { env.send(s2.ep, view("early")); });
  auto early = s2.drain();
  ASSERT_EQ(early.size(), 4u);
  for (auto& g : early) EXPECT_NE(g.port, own.port);
  std::optional<uint16_t> last;
  ASSERT_TRUE(eventually([&] {
    driver.call([&] { env.send(s2.ep, view("again")); });
    auto got = s2.drain();
    if (got.size() == 1) last = got[0].port;
    return got.size() == 1;
  }));
  EXPECT_EQ(last, own.port);
  driver.stop();
}

TEST(FreshPorts, SendWithTtlSetsTheTtlOfThatDatagramOnly) {
  RealDriver driver;
  Node& n = driver.add_node(Endpoint::v4(INADDR_LOOPBACK, 0), Identity::generate());
  Endpoint own = driver.local_endpoint(n);
  Environment& env = *driver.call([&] { return &NodeInternals::engine(n).env(); });
  Udp r(/*recv_ttl=*/true);
  ASSERT_TRUE(driver.call([&] { return env.send_with_ttl(r.ep, view("low"), 2); }));
  auto g = r.recv();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->data, "low");
  EXPECT_EQ(g->port, own.port);
  EXPECT_EQ(g->ttl, 2);
  // The socket's own TTL is untouched.
  driver.call([&] { env.send(r.ep, view("normal")); });
  g = r.recv();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->data, "normal");
  EXPECT_GT(g->ttl, 2);
  // No TTL of 0, nor to a family the node has no socket of.
  EXPECT_FALSE(driver.call([&] { return env.send_with_ttl(r.ep, view("zero"), 0); }));
  EXPECT_FALSE(driver.call([&] { return env.send_with_ttl(*Endpoint::from_ip("::1", 9), view("v6"), 2); }));
  driver.stop();
}

TEST(FreshPorts, SendWithTtlOverIpv6SetsTheHopLimit) {
  int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  // Not a skip: a host without ::1 cannot show the hop limit, and CI must say so (as dual_stack_real_test).
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << "no IPv6 loopback";
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int on = 1;
  ASSERT_EQ(::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on), 0);
  RealDriver driver;
  Node& n = driver.add_node(*Endpoint::from_ip("::1", 0), Identity::generate());
  Environment& env = *driver.call([&] { return &NodeInternals::engine(n).env(); });
  Endpoint to = *Endpoint::from_ip("::1", ntohs(a.sin6_port));
  ASSERT_TRUE(driver.call([&] { return env.send_with_ttl(to, view("low6"), 3); }));
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  char buf[64];
  alignas(cmsghdr) char control[256];
  iovec iov{buf, sizeof buf};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  ASSERT_EQ(::recvmsg(fd, &m, 0), 4);
  int hops = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) std::memcpy(&hops, CMSG_DATA(c), sizeof hops);
  EXPECT_EQ(hops, 3);
  ::close(fd);
  driver.stop();
}
