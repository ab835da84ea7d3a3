// FreshPorts: the real driver's birthday punching ports (Environment::open_fresh_ports, docs/protocol.md 5.2).
//
// open(to, bind, count, life) opens up to `count` UDP sockets at bind's address, port 0, as one group for
// `to`. While the group is unhit and `life` lasts, send(to) sends from each of them (and returns true: the
// caller does not send from its own port). The first datagram from `to` (address and port) on one of them is
// a hit: that socket becomes the group's only one, the others close, and the datagram goes to `deliver`, as
// does every later one from `to`; datagrams from anyone else are dropped. A hit socket closes once unused
// (no send, no receive) for `idle` (checked every `sweep`); an unhit group closes at the end of its life.
// Bounds: kMaxSockets sockets and kMaxGroups groups in all (hit ones count; the least recently used hit group
// gives way to a new one, else open refuses). Errors (EMFILE...) open fewer sockets; nothing throws.
// One thread: the io_context's. Handlers never touch a destroyed FreshPorts.
#pragma once
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "storjnet/bytes.h"
#include "storjnet/endpoint.h"
#include "storjnet/environment.h"

namespace storjnet::real {

class FreshPorts {
 public:
  using Clock = std::chrono::steady_clock;
  using Deliver = std::function<void(const Endpoint& from, ByteView datagram)>;
  static constexpr size_t kMaxSockets = 256;
  static constexpr size_t kMaxGroups = 16;

  FreshPorts(boost::asio::io_context& io, Deliver deliver, Duration idle = Environment::kFreshPortIdle,
             Duration sweep = std::chrono::seconds(15));
  ~FreshPorts();  // closes everything
  FreshPorts(const FreshPorts&) = delete;
  FreshPorts& operator=(const FreshPorts&) = delete;

  // Opens a group for `to` at bind's address (its port is ignored); how many sockets it has (0: none, and
  // nothing changed: `to` has a group already, or no room, or no socket could be opened).
  size_t open(const Endpoint& to, const Endpoint& bind, size_t count, Duration life);
  // Sends `dg` to `to` from its group's sockets (with IP TTL `ttl` when it is above 0: real/udp_io.h): true
  // when it has an open group (sent, or dropped when a socket is full), false when the caller should send from
  // its own port.
  bool send(const Endpoint& to, ByteView dg, int ttl = 0);
  // Closes every group (RealDriver::stop).
  void close_all();

  // For tests and stats.
  size_t sockets() const { return sockets_; }
  size_t groups() const { return groups_.size(); }
  uint64_t send_drops() const { return send_drops_; }
  // The local endpoints of `to`'s group (one after a hit); empty when it has none.
  std::vector<Endpoint> ports(const Endpoint& to) const;
  // Whether `to`'s group has been hit.
  bool hit(const Endpoint& to) const;

 private:
  struct Group;
  struct Port {
    boost::asio::ip::udp::socket sock;
    Group* group;
    bool closed = false;  // set before `group` or the FreshPorts go away: handlers then touch nothing
    Port(boost::asio::io_context& io, Group* g) : sock(io), group(g) {}
  };
  struct Group {
    Endpoint to;
    std::vector<std::shared_ptr<Port>> ports;
    Clock::time_point deadline, last_used;
    bool hit = false;
  };

  Group* find(const Endpoint& to) const;
  void close_port(Port& p);
  void close_group(Group* g);
  void wait_read(const std::shared_ptr<Port>& p);
  void read(const std::shared_ptr<Port>& p);
  void on_datagram(const std::shared_ptr<Port>& p, const Endpoint& from, size_t len);
  void sweep();
  void arm(Clock::time_point at);

  boost::asio::io_context& io_;
  Deliver deliver_;
  Clock::duration idle_, sweep_every_;
  std::vector<std::unique_ptr<Group>> groups_;
  size_t sockets_ = 0;
  uint64_t send_drops_ = 0;
  std::array<uint8_t, 2048> buf_;
  boost::asio::steady_timer timer_;
  Clock::time_point armed_{};
  bool timer_waiting_ = false;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // timer handlers hold a weak_ptr to it
};

}  // namespace storjnet::real
