#include "storjnet/real_driver.h"

#include <sodium.h>
#include <sys/socket.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "real/buffer_pool.h"
#include "real/fast_random.h"
#include "real/udp_io.h"
#include "storjnet/conn_provider.h"

namespace storjnet {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using tcp = asio::ip::tcp;

namespace {

Endpoint from_asio(const udp::endpoint& e) {
  Endpoint out;
  out.port = e.port();
  if (e.address().is_v4()) {
    auto b = e.address().to_v4().to_bytes();
    out.family = Endpoint::Family::kV4;
    std::copy(b.begin(), b.end(), out.addr.begin());
  } else {
    auto v6 = e.address().to_v6();
    if (v6.is_v4_mapped()) return from_asio(udp::endpoint(asio::ip::make_address_v4(asio::ip::v4_mapped, v6), e.port()));
    auto b = v6.to_bytes();
    out.family = Endpoint::Family::kV6;
    std::copy(b.begin(), b.end(), out.addr.begin());
  }
  return out;
}

udp::endpoint to_asio(const Endpoint& e) {
  if (e.family == Endpoint::Family::kV4) {
    asio::ip::address_v4::bytes_type b;
    std::copy(e.addr.begin(), e.addr.begin() + 4, b.begin());
    return {asio::ip::address_v4(b), e.port};
  }
  asio::ip::address_v6::bytes_type b;
  std::copy(e.addr.begin(), e.addr.end(), b.begin());
  return {asio::ip::address_v6(b), e.port};
}

}  // namespace

struct RealDriver::Impl {
  // One byte connection of the streams fast path (TCP, same port number as the UDP socket).
  struct Conn {
    uint64_t id;
    tcp::socket sock;
    std::deque<Bytes> out;
    size_t queued = 0;  // bytes in `out`
    bool writing = false, open = false, closed = false;
    bool paused = false;  // not reading: the queue to this peer passed the high-water mark
    bool flush_posted = false;  // a flush_out is queued behind the current handler
    std::vector<uint8_t> rbuf = std::vector<uint8_t>(256 * 1024);
    std::vector<asio::const_buffer> wbufs;
    size_t wcount = 0;
    Conn(uint64_t i, asio::io_context& io) : id(i), sock(io) {}
  };

  // Receive buffers for recvmmsg, one set per driver: handlers run one at a time on the io thread, and a
  // datagram is handed to its node before the next read.
  static constexpr unsigned kBatch = 32;
  static constexpr int kDrainBatches = 8;
  struct Batch {
    std::array<std::array<uint8_t, 2048>, kBatch> data;
    std::array<iovec, kBatch> iov;
    std::array<mmsghdr, kBatch> msgs;
    std::array<sockaddr_storage, kBatch> from;
    // Headers set once; recvmmsg changes only msg_namelen, msg_flags and msg_len, which drain() resets for the
    // entries it used (re-filling all 32 on every wake-up was ~2% of a ping's io-thread time).
    Batch() {
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

  struct Host final : Environment, ConnProvider {
    Batch& batch;
    real::FastRandom& rng;  // the io thread's
    udp::socket socket;
    asio::io_context& io;
    const RealDriver::Options& options;
    std::unique_ptr<tcp::acceptor> acceptor;
    std::unordered_map<uint64_t, std::shared_ptr<Conn>, KeyedHash> conns;
    uint64_t paused_reads = 0;  // times a connection stopped being read at the high-water mark
    uint64_t next_conn = 1;
    ConnListener* listener = nullptr;
    asio::steady_timer timer;
    // wake_at(): the deadline asked for last and, while `timer` waits, the one it waits for. A later deadline
    // does not touch the timer (each re-arm cancels a wait, runs its aborted handler and may reprogram the
    // timerfd: per ping, as every request moves the engine's deadline); an early expiry re-arms instead.
    TimePoint wanted{}, armed{};
    bool timer_waiting = false;
    std::chrono::steady_clock::time_point origin;
    std::unique_ptr<Node> node;
    Endpoint local;
    // Datagrams the socket could not take at once (real/udp_io.h), sent in order once it is writable.
    real::UdpSendQueue sendq;
    bool send_waiting = false;
    asio::steady_timer send_timer;  // ENOBUFS: writability does not signal it, so retry a little later
    real::UdpBuffers buffers;
    real::BufferPool spent;  // written connection buffers, for conn_buffer()

    Host(Batch& b, real::FastRandom& r, asio::io_context& i, const RealDriver::Options& opts,
         std::chrono::steady_clock::time_point o)
        : batch(b),
          rng(r),
          socket(i), io(i), options(opts), timer(i), origin(o), send_timer(i) {}

    // ---------------------------------------------------------------- byte connections
    void set_conn_listener(ConnListener* l) override { listener = l; }

    void listen() {
      boost::system::error_code ec;
      auto ep = to_asio(local);
      tcp::endpoint tep(ep.address(), ep.port());
      acceptor = std::make_unique<tcp::acceptor>(io);
      acceptor->open(tep.protocol(), ec);
      if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acceptor->bind(tep, ec);
      if (!ec) acceptor->listen(64, ec);
      if (ec) {
        std::fprintf(stderr, "storjnet: no TCP fast path on %s: %s\n", local.to_string().c_str(), ec.message().c_str());
        acceptor.reset();
        return;
      }
      accept();
    }

    void accept() {
      auto c = std::make_shared<Conn>(next_conn++, io);
      acceptor->async_accept(c->sock, [this, c](const boost::system::error_code& ec) {
        if (ec == asio::error::operation_aborted || !acceptor || !acceptor->is_open()) return;
        if (!ec) {
          if (!listener) {
            boost::system::error_code e2;
            c->sock.close(e2);
          } else {
            start(c);
            if (listener && !c->closed) listener->on_conn_open(c->id, true, remote_of(*c));
          }
        }
        accept();
      });
    }

    static Endpoint remote_of(Conn& c) {
      boost::system::error_code ec;
      auto ep = c.sock.remote_endpoint(ec);
      return ec ? Endpoint{} : from_asio(udp::endpoint(ep.address(), ep.port()));
    }

    void start(const std::shared_ptr<Conn>& c) {
      boost::system::error_code ec;
      c->sock.set_option(tcp::no_delay(true), ec);
      c->sock.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
      c->sock.set_option(asio::socket_base::send_buffer_size(4 << 20), ec);
      c->open = true;
      conns[c->id] = c;
      read(c);
    }

    uint64_t conn_connect(const Endpoint& to) override {
      if (!acceptor || !to.valid() || (to.family == Endpoint::Family::kV6) != (local.family == Endpoint::Family::kV6))
        return 0;
      auto c = std::make_shared<Conn>(next_conn++, io);
      auto ep = to_asio(to);
      conns[c->id] = c;
      c->sock.async_connect(tcp::endpoint(ep.address(), ep.port()), [this, c](const boost::system::error_code& ec) {
        if (c->closed) return;
        if (ec) return fail(c);
        start(c);
        if (listener && !c->closed) listener->on_conn_open(c->id, false, remote_of(*c));
        if (!c->closed) flush_out(c);
      });
      return c->id;
    }

    void read(const std::shared_ptr<Conn>& c) {
      c->sock.async_read_some(asio::buffer(c->rbuf), [this, c](const boost::system::error_code& ec, size_t n) {
        if (c->closed) return;
        if (ec) return fail(c);
        if (listener) listener->on_conn_data(c->id, {c->rbuf.data(), n});
        if (c->closed) return;
        // Our answers to this peer pile up (it does not read): stop reading it until they drain.
        if (c->queued > options.conn_high_water) {
          c->paused = true;
          ++paused_reads;
          return;
        }
        read(c);
      });
    }

    Bytes conn_buffer() override { return spent.take(); }

    size_t conn_queued(uint64_t id) const override {
      auto it = conns.find(id);
      return it == conns.end() ? 0 : it->second->queued;
    }

    void conn_send(uint64_t id, Bytes bytes) override {
      auto it = conns.find(id);
      if (it == conns.end() || it->second->closed || bytes.empty()) return;
      auto& c = it->second;
      c->queued += bytes.size();
      c->out.push_back(std::move(bytes));
      // Cork: everything queued while the current handler runs goes out in one gathered write after it.
      if (c->open && !c->writing && !c->flush_posted) {
        c->flush_posted = true;
        asio::post(io, [this, c] {
          c->flush_posted = false;
          if (!c->closed) flush_out(c);
        });
      }
    }

    void flush_out(const std::shared_ptr<Conn>& c) {
      if (c->writing || c->out.empty()) return;
      c->writing = true;
      c->wbufs.clear();
      c->wcount = 0;
      for (auto& b : c->out) {
        if (c->wcount == 64) break;
        c->wbufs.emplace_back(b.data(), b.size());
        ++c->wcount;
      }
      // Asio's stock completion conditions cap each write_some at 64 KiB (four syscalls per record); this one
      // lets the kernel take all it can in one gathered write.
      auto whole = [](const boost::system::error_code& ec, size_t) -> size_t { return ec ? 0 : (64u << 20); };
      asio::async_write(c->sock, c->wbufs, whole, [this, c](const boost::system::error_code& ec, size_t) {
        c->writing = false;
        if (c->closed) return;
        if (ec) return fail(c);
        for (size_t i = 0; i < c->wcount; ++i) {
          c->queued -= c->out.front().size();
          spent.give(std::move(c->out.front()));
          c->out.pop_front();
        }
        if (c->paused && c->queued <= options.conn_high_water / 2) {
          c->paused = false;
          read(c);
        }
        flush_out(c);
      });
    }

    void shut(const std::shared_ptr<Conn>& c) {
      c->closed = true;
      c->out.clear();
      c->queued = 0;
      boost::system::error_code ec;
      c->sock.close(ec);
      conns.erase(c->id);
    }

    void fail(std::shared_ptr<Conn> c) {
      if (c->closed) return;
      shut(c);
      if (listener) listener->on_conn_closed(c->id);
    }

    void conn_close(uint64_t id) override {
      auto it = conns.find(id);
      if (it == conns.end()) return;
      auto c = it->second;
      shut(c);
    }

    void close_all() {
      boost::system::error_code ec;
      if (acceptor) acceptor->close(ec);
      std::vector<std::shared_ptr<Conn>> all;
      for (auto& [id, c] : conns) all.push_back(c);
      for (auto& c : all) shut(c);
    }

    TimePoint now() override { return std::chrono::steady_clock::now() - origin; }
    uint64_t unix_us() override {
      return std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
    }
    void send(const Endpoint& to, ByteView dg) override {
      if (!to.valid() || (to.family == Endpoint::Family::kV6) != (local.family == Endpoint::Family::kV6)) return;
      auto ep = to_asio(to);
      if (sendq.send(socket.native_handle(), ep.data(), static_cast<socklen_t>(ep.size()), dg)) wait_writable();
    }
    void wait_writable() {
      if (send_waiting) return;
      send_waiting = true;
      socket.async_wait(udp::socket::wait_write, [this](const boost::system::error_code& ec) {
        send_waiting = false;
        if (!ec) flush_sends();
      });
    }
    void flush_sends() {
      switch (sendq.flush(socket.native_handle())) {
        case real::UdpSendQueue::Flush::kEmpty: return;
        case real::UdpSendQueue::Flush::kWaitWritable: return wait_writable();
        case real::UdpSendQueue::Flush::kRetryLater:
          send_waiting = true;
          send_timer.expires_after(std::chrono::milliseconds(1));
          send_timer.async_wait([this](const boost::system::error_code& ec) {
            send_waiting = false;
            if (!ec) flush_sends();
          });
          return;
      }
    }
    void wake_at(TimePoint at) override {
      wanted = at;
      if (!timer_waiting || at < armed) arm(at);
    }
    void arm(TimePoint at) {
      armed = at;
      timer_waiting = true;
      timer.expires_at(origin + std::chrono::duration_cast<std::chrono::steady_clock::duration>(at));
      timer.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;  // cancelled: re-armed (still waiting) or stopping
        timer_waiting = false;
        if (now() < wanted) return arm(wanted);  // the deadline moved later meanwhile
        node->on_wake();
      });
    }
    void random(std::span<uint8_t> out) override { rng.fill(out); }

    // Waits until the socket is readable, then reads it in batches.
    void receive() {
      socket.async_wait(udp::socket::wait_read, [this](const boost::system::error_code& ec) {
        if (ec == asio::error::operation_aborted || !socket.is_open()) return;
        drain();
        receive();
      });
    }

    // Takes what is queued, kBatch datagrams per recvmmsg call, up to kDrainBatches calls before going back to
    // the reactor (timers and the fast path get their turn). Under a flood the socket is read in large
    // batches, so each datagram costs a fraction of a system call.
    void drain() {
      int fd = socket.native_handle();
      for (int round = 0; round < kDrainBatches; ++round) {
        int got = ::recvmmsg(fd, batch.msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (got <= 0) return;
        for (int i = 0; i < got; ++i) {
          auto& h = batch.msgs[i].msg_hdr;
          bool truncated = h.msg_flags & MSG_TRUNC;
          socklen_t name_len = h.msg_namelen;
          h.msg_namelen = sizeof(sockaddr_storage);  // ready for the next call (see Batch)
          h.msg_flags = 0;
          if (truncated) continue;  // longer than any datagram of ours: the engine would drop it
          udp::endpoint ep;
          std::memcpy(ep.data(), &batch.from[i], std::min<size_t>(name_len, ep.capacity()));
          node->on_datagram(from_asio(ep), {batch.data[i].data(), batch.msgs[i].msg_len});
        }
        if (static_cast<unsigned>(got) < kBatch) return;
      }
    }
  };

  RealDriver::Options options;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now();
  std::unique_ptr<Batch> batch = std::make_unique<Batch>();
  real::FastRandom rng;  // Environment::random of every host (all on the io thread)
  std::list<std::unique_ptr<Host>> hosts;
  std::thread thread;
  std::thread::id thread_id;

  explicit Impl(RealDriver::Options o) : options(o) {
    thread = std::thread([this] {
      thread_id = std::this_thread::get_id();
      io.run();
    });
  }
};

RealDriver::RealDriver(Options options) : impl_(std::make_unique<Impl>(options)) {
  // Wait until the thread id is known so on_io_thread() is reliable.
  std::promise<void> ready;
  impl_->io.post([&] { ready.set_value(); });
  ready.get_future().wait();
}

RealDriver::~RealDriver() { stop(); }

void RealDriver::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  call([this] {
    for (auto& h : impl_->hosts) {
      boost::system::error_code ec;
      h->timer.cancel();
      h->send_timer.cancel();
      h->socket.close(ec);
      h->close_all();
    }
  });
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
  impl_->hosts.clear();
}

bool RealDriver::on_io_thread() const { return std::this_thread::get_id() == impl_->thread_id; }

void RealDriver::post(std::function<void()> fn) { asio::post(impl_->io, std::move(fn)); }

Node& RealDriver::add_node(const Endpoint& bind, Identity identity, NodeConfig config,
                           std::unique_ptr<DhtStorage> storage) {
  return call([&]() -> Node& {
    auto host = std::make_unique<Impl::Host>(*impl_->batch, impl_->rng, impl_->io, impl_->options, impl_->origin);
    boost::system::error_code ec;
    auto ep = to_asio(bind);
    host->socket.open(ep.protocol(), ec);
    if (!ec) host->socket.bind(ep, ec);
    if (ec) throw std::runtime_error("cannot bind UDP " + bind.to_string() + ": " + ec.message());
    host->socket.non_blocking(true, ec);
    host->buffers = real::size_udp_buffers(host->socket.native_handle(), impl_->options.udp_rcvbuf,
                                           impl_->options.udp_sndbuf);
    host->local = from_asio(host->socket.local_endpoint());
    host->listen();
    host->node = std::make_unique<Node>(*host, std::move(identity), config, std::move(storage));
    host->receive();
    impl_->hosts.push_back(std::move(host));
    return *impl_->hosts.back()->node;
  });
}

Endpoint RealDriver::local_endpoint(const Node& node) const {
  for (auto& h : impl_->hosts)
    if (h->node.get() == &node) return h->local;
  return {};
}

size_t RealDriver::size() const { return impl_->hosts.size(); }

RealDriver::ConnStats RealDriver::conn_stats(const Node& node) {
  return call([&] {
    ConnStats out;
    for (auto& h : impl_->hosts) {
      if (h->node.get() != &node) continue;
      out.paused_reads = h->paused_reads;
      for (auto& [id, c] : h->conns) {
        out.open += 1;
        out.queued += c->queued;
        out.paused += c->paused;
      }
    }
    return out;
  });
}

UdpStats RealDriver::udp_stats(const Node& node) {
  return call([&] {
    UdpStats out;
    for (auto& h : impl_->hosts) {
      if (h->node.get() != &node) continue;
      out.kernel_drops = real::udp_kernel_drops(h->socket.native_handle());
      out.send_queued = h->sendq.queued();
      out.send_deferred = h->sendq.deferred();
      out.send_queue_drops = h->sendq.dropped();
      out.rcvbuf = h->buffers.rcvbuf;
      out.sndbuf = h->buffers.sndbuf;
    }
    return out;
  });
}

size_t RealDriver::drop_connections(const Node& node) {
  return call([&] {
    size_t n = 0;
    for (auto& h : impl_->hosts) {
      if (h->node.get() != &node) continue;
      std::vector<std::shared_ptr<Impl::Conn>> all;
      for (auto& [id, c] : h->conns) all.push_back(c);
      for (auto& c : all) h->fail(c), ++n;
    }
    return n;
  });
}

}  // namespace storjnet
