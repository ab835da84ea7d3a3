#include "real/fresh_ports.h"
#include "real/udp_io.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/ip/v6_only.hpp>

#include "real/asio_endpoint.h"

namespace storjnet::real {

namespace asio = boost::asio;
using udp = asio::ip::udp;

namespace {
constexpr int kReadsPerWake = 64;  // datagrams read per readiness before going back to the reactor
}  // namespace

FreshPorts::FreshPorts(asio::io_context& io, Deliver deliver, Duration idle, Duration sweep)
    : io_(io),
      deliver_(std::move(deliver)),
      idle_(std::chrono::duration_cast<Clock::duration>(idle)),
      sweep_every_(std::chrono::duration_cast<Clock::duration>(sweep)),
      timer_(io) {}

FreshPorts::~FreshPorts() {
  close_all();
  alive_.reset();
}

FreshPorts::Group* FreshPorts::find(const Endpoint& to) const {
  for (auto& g : groups_)
    if (g->to == to) return g.get();
  return nullptr;
}

size_t FreshPorts::open(const Endpoint& to, const Endpoint& bind, size_t count, Duration life) {
  if (!to.valid() || bind.family != to.family || find(to)) return 0;
  count = std::min(count, kMaxSockets - sockets_);
  if (count == 0) return 0;
  // Full: the least recently used hit group gives way (once this one has sockets); none hit: refuse.
  Group* evict = nullptr;
  if (groups_.size() >= kMaxGroups) {
    for (auto& g : groups_)
      if (g->hit && (!evict || g->last_used < evict->last_used)) evict = g.get();
    if (!evict) return 0;
  }
  auto g = std::make_unique<Group>();
  g->to = to;
  g->last_used = Clock::now();
  life = std::min<Duration>(life, std::chrono::hours(24));  // no overflow of the deadline
  g->deadline = g->last_used + std::chrono::duration_cast<Clock::duration>(life);
  udp::endpoint ep = to_asio(bind);
  ep.port(0);
  for (size_t i = 0; i < count; ++i) {
    auto p = std::make_shared<Port>(io_, g.get());
    boost::system::error_code ec, ignored;
    p->sock.open(ep.protocol(), ec);
    if (!ec && to.family == Endpoint::Family::kV6) p->sock.set_option(asio::ip::v6_only(true), ec);
    if (!ec) p->sock.bind(ep, ec);
    if (!ec) p->sock.non_blocking(true, ec);
    if (ec) {  // EMFILE, ENOBUFS, no such address...: fewer
      p->closed = true;
      p->sock.close(ignored);
      break;
    }
    g->ports.push_back(std::move(p));
  }
  size_t n = g->ports.size();
  if (n == 0) return 0;
  if (evict) close_group(evict);
  sockets_ += n;
  for (auto& p : g->ports) wait_read(p);
  arm(g->deadline);
  groups_.push_back(std::move(g));
  return n;
}

bool FreshPorts::send(const Endpoint& to, ByteView dg, int ttl) {
  Group* g = find(to);
  if (!g) return false;
  auto now = Clock::now();
  if (!g->hit && now >= g->deadline) {
    close_group(g);
    return false;
  }
  g->last_used = now;
  udp::endpoint ep = to_asio(to);
  for (auto& p : g->ports) {
    if (ttl > 0) {
      if (!send_with_ttl(p->sock.native_handle(), to.family == Endpoint::Family::kV6, ep.data(),
                         static_cast<socklen_t>(ep.size()), dg, ttl))
        ++send_drops_;
      continue;
    }
    if (::sendto(p->sock.native_handle(), dg.data(), dg.size(), MSG_DONTWAIT, ep.data(),
                 static_cast<socklen_t>(ep.size())) >= 0)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) ++send_drops_;
  }
  return true;
}

void FreshPorts::close_port(Port& p) {
  if (p.closed) return;
  p.closed = true;
  boost::system::error_code ec;
  p.sock.close(ec);
  --sockets_;
}

void FreshPorts::close_group(Group* g) {
  for (auto& p : g->ports) close_port(*p);
  auto it = std::find_if(groups_.begin(), groups_.end(), [g](auto& u) { return u.get() == g; });
  if (it != groups_.end()) groups_.erase(it);
}

void FreshPorts::close_all() {
  for (auto& g : groups_)
    for (auto& p : g->ports) close_port(*p);
  groups_.clear();
  timer_.cancel();
  timer_waiting_ = false;
}

void FreshPorts::wait_read(const std::shared_ptr<Port>& p) {
  p->sock.async_wait(udp::socket::wait_read, [this, p](const boost::system::error_code& ec) {
    if (p->closed || ec) return;  // closed: its group, or this FreshPorts, may be gone
    read(p);
  });
}

void FreshPorts::read(const std::shared_ptr<Port>& p) {
  int fd = p->sock.native_handle();
  for (int i = 0; i < kReadsPerWake; ++i) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf_.data(), buf_.size(), MSG_DONTWAIT | MSG_TRUNC, reinterpret_cast<sockaddr*>(&from),
                           &len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      continue;
    }
    if (static_cast<size_t>(n) > buf_.size()) continue;  // truncated: longer than any datagram of ours
    udp::endpoint ep;
    std::memcpy(ep.data(), &from, std::min<size_t>(len, ep.capacity()));
    on_datagram(p, from_asio(ep), static_cast<size_t>(n));
    if (p->closed) return;  // the node closed it meanwhile (a new group evicted this one...)
  }
  wait_read(p);
}

void FreshPorts::on_datagram(const std::shared_ptr<Port>& p, const Endpoint& from, size_t len) {
  Group* g = p->group;
  if (from != g->to) return;  // only `to` may use these ports
  g->last_used = Clock::now();
  if (!g->hit) {
    g->hit = true;
    std::shared_ptr<Port> keep = p;
    for (auto& q : g->ports)
      if (q != keep) close_port(*q);
    g->ports.assign(1, keep);
    arm(g->last_used + sweep_every_);
  }
  deliver_(from, {buf_.data(), len});
}

void FreshPorts::sweep() {
  auto now = Clock::now();
  std::vector<Group*> done;
  for (auto& g : groups_)
    if (g->hit ? now - g->last_used >= idle_ : now >= g->deadline) done.push_back(g.get());
  for (auto* g : done) close_group(g);
  std::optional<Clock::time_point> next;
  for (auto& g : groups_) {
    auto at = g->hit ? now + sweep_every_ : g->deadline;
    if (!next || at < *next) next = at;
  }
  if (next) arm(*next);
}

// Waits until `at` unless it waits for an earlier time already. Re-arming aborts the wait before (its handler
// returns); a handler queued before the re-arm runs one extra sweep, which is harmless.
void FreshPorts::arm(Clock::time_point at) {
  if (timer_waiting_ && armed_ <= at) return;
  armed_ = at;
  timer_waiting_ = true;
  timer_.expires_at(at);
  timer_.async_wait([this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    timer_waiting_ = false;
    sweep();
  });
}

std::vector<Endpoint> FreshPorts::ports(const Endpoint& to) const {
  std::vector<Endpoint> out;
  if (auto* g = find(to))
    for (auto& p : g->ports) {
      boost::system::error_code ec;
      auto ep = p->sock.local_endpoint(ec);
      if (!ec) out.push_back(from_asio(ep));
    }
  return out;
}

bool FreshPorts::hit(const Endpoint& to) const {
  auto* g = find(to);
  return g && g->hit;
}

}  // namespace storjnet::real
