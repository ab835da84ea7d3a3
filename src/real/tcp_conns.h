// TcpConns: one node's byte connections in the real driver (ConnProvider for the streams fast path, TCP at the
// node's UDP port number): the listener, outgoing connects, reads handed to the ConnListener, and sends queued
// per connection (ConnOut) and written in one gathered write after the current handler (corked). A connection
// whose queue passes `high_water` (a peer that does not read our answers) is not read until it drains to half.
// Written and recycled buffers are kept in a small pool for conn_buffer(). One thread: the node's io thread.
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>

#include "real/buffer_pool.h"
#include "real/conn_out.h"
#include "storjnet/conn_provider.h"
#include "storjnet/endpoint.h"
#include "storjnet/keyed_hash.h"

namespace storjnet::real {

class TcpConns {
 public:
  struct Stats {
    size_t open = 0, paused = 0, queued = 0;  // connections, of them not being read, bytes queued to send
    uint64_t paused_reads = 0;                // times any connection stopped being read
  };

  TcpConns(boost::asio::io_context& io, size_t high_water) : io_(io), high_water_(high_water) {}

  // Listens at `local`'s address and port; false (why: `ec`) if it is taken. Without a listener, connect()
  // refuses (a node without the fast path neither accepts nor connects).
  bool listen(const Endpoint& local, boost::system::error_code& ec);
  void set_listener(ConnListener* l) { listener_ = l; }
  uint64_t connect(const Endpoint& to);  // 0: no listener, or not of the local address's family
  size_t queued(uint64_t id) const;
  void send(uint64_t id, Bytes bytes);
  void send_kept(uint64_t id, ByteView bytes, std::shared_ptr<const void> keep);
  void close(uint64_t id);  // no event
  void close_all();         // and the listener; no events
  size_t fail_all();        // each with on_conn_closed, as if the network dropped it; returns how many
  Bytes buffer() { return spent_.take(); }
  void recycle(Bytes bytes) { spent_.give(std::move(bytes)); }
  Stats stats() const;

 private:
  struct Conn {
    uint64_t id;
    boost::asio::ip::tcp::socket sock;
    ConnOut out;
    bool writing = false, open = false, closed = false;
    bool paused = false;        // not reading: the queue to this peer passed the high-water mark
    bool flush_posted = false;  // a flush_out is queued behind the current handler
    std::vector<uint8_t> rbuf;  // 256 KiB from start(): a node's waiting accept holds no read buffer
    std::vector<boost::asio::const_buffer> wbufs;
    size_t wcount = 0;
    Conn(uint64_t i, boost::asio::io_context& io) : id(i), sock(io) {}
  };
  void accept();
  static Endpoint remote_of(Conn& c);
  void start(const std::shared_ptr<Conn>& c);
  void read(const std::shared_ptr<Conn>& c);
  std::shared_ptr<Conn>* sendable(uint64_t id, size_t n);
  void cork(const std::shared_ptr<Conn>& c);
  void flush_out(const std::shared_ptr<Conn>& c);
  void shut(const std::shared_ptr<Conn>& c);
  void fail(std::shared_ptr<Conn> c);

  boost::asio::io_context& io_;
  size_t high_water_;
  Endpoint local_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::unordered_map<uint64_t, std::shared_ptr<Conn>, KeyedHash> conns_;
  uint64_t paused_reads_ = 0;
  uint64_t next_ = 1;
  ConnListener* listener_ = nullptr;
  BufferPool spent_;  // spent connection buffers (written, or recycled by reads), for buffer()
};

}  // namespace storjnet::real
