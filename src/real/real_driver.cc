#include "storjnet/real_driver.h"

#include <sys/socket.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <cstdio>
#include <deque>
#include <exception>
#include <future>
#include <list>
#include <stdexcept>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "real/asio_endpoint.h"
#include "real/fast_random.h"
#include "real/free_memory.h"
#include "real/fresh_ports.h"
#include "real/key_workers.h"
#include "real/lan_address.h"
#include "real/recv_batch.h"
#include "real/tcp_conns.h"
#include "real/udp_io.h"
#include "storjnet/conn_provider.h"

namespace storjnet {

namespace asio = boost::asio;
using udp = asio::ip::udp;

namespace {

// Which driver and io thread this thread is (set once per io thread), and the driver whose call(fn)/post(fn)
// it runs right now (every node of that driver may be touched).
struct ThreadRole {
  const void* driver = nullptr;
  size_t shard = 0;
  const void* exclusive = nullptr;
};
thread_local ThreadRole tl_role;
}  // namespace

struct RealDriver::Impl {
  // Receive buffers for recvmmsg, one set per io thread (real/recv_batch.h).
  using Batch = real::RecvBatch;
  static constexpr unsigned kBatch = Batch::kBatch;
  static constexpr int kDrainBatches = 8;

  struct Host final : Environment, ConnProvider {
    Batch& batch;
    real::FastRandom& rng;  // its io thread's
    udp::socket socket;
    asio::io_context& io;
    const RealDriver::Options& options;
    real::TcpConns conns;  // ConnProvider: the streams fast path's connections
    asio::steady_timer timer;
    // wake_at(): the deadline asked for last and, while `timer` waits, the one it waits for. A later deadline
    // does not touch the timer (each re-arm cancels a wait, runs its aborted handler and may reprogram the
    // timerfd: per ping, as every request moves the engine's deadline); an early expiry re-arms instead.
    TimePoint wanted{}, armed{};
    bool timer_waiting = false;
    std::chrono::steady_clock::time_point origin;
    TimePoint frozen{};  // now() while drain() hands the engine a datagram (TimePoint{}: read the clock)
    // A dual-stack node's socket of the other family (RealDriver::add_node with two binds): datagrams to that
    // family leave through it, with a send queue of its own. No TCP fast path on it.
    struct Second {
      udp::socket socket;
      real::UdpSendQueue sendq;
      bool send_waiting = false;
      asio::steady_timer send_timer;
      Endpoint local;
      real::LanAddress lan;
      explicit Second(asio::io_context& io) : socket(io), send_timer(io) {}
    };
    std::unique_ptr<Second> second;
    std::unique_ptr<Node> node;
    Endpoint local;
    real::LanAddress lan;  // Environment::lan_endpoint
    size_t shard = 0;  // the io thread it lives on
    // Datagrams the socket could not take at once (real/udp_io.h), sent in order once it is writable.
    real::UdpSendQueue sendq;
    bool send_waiting = false;
    asio::steady_timer send_timer;  // ENOBUFS: writability does not signal it, so retry a little later
    real::UdpBuffers buffers;
    real::FreshPorts fresh;  // open_fresh_ports (birthday punching)
    real::KeyWorkers* workers = nullptr;  // Environment::offload (none: key work on this io thread)

    Host(Batch& b, real::FastRandom& r, asio::io_context& i, const RealDriver::Options& opts,
         std::chrono::steady_clock::time_point o)
        : batch(b),
          rng(r),
          socket(i), io(i), options(opts), conns(i, opts.conn_high_water), timer(i), origin(o), send_timer(i),
          fresh(i, [this](const Endpoint& from, ByteView dg) { node->on_datagram(from, dg); }) {}

    bool offload(std::function<void()> work, std::function<void()> done) override {
      return workers && workers->submit(io, std::move(work), std::move(done));
    }

    // ---------------------------------------------------------------- byte connections (real/tcp_conns.h)
    void set_conn_listener(ConnListener* l) override { conns.set_listener(l); }
    uint64_t conn_connect(const Endpoint& to) override { return conns.connect(to); }
    size_t conn_queued(uint64_t id) const override { return conns.queued(id); }
    void conn_send(uint64_t id, Bytes bytes) override { conns.send(id, std::move(bytes)); }
    void conn_send_kept(uint64_t id, ByteView bytes, std::shared_ptr<const void> keep) override {
      conns.send_kept(id, bytes, std::move(keep));
    }
    void conn_close(uint64_t id) override { conns.close(id); }
    Bytes conn_buffer() override { return conns.buffer(); }
    void conn_recycle(Bytes bytes) override { conns.recycle(std::move(bytes)); }

    TimePoint now() override { return frozen != TimePoint{} ? frozen : std::chrono::steady_clock::now() - origin; }
    uint64_t unix_us() override {
      return std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
    }
    uint8_t families() override { return family_bit(local.family) | (second ? family_bit(second->local.family) : 0); }
    std::optional<Endpoint> lan_endpoint(Endpoint::Family f) override {  // src/real/lan_address.h
      auto now = std::chrono::steady_clock::now();
      return second && second->local.family == f ? second->lan.get(f, second->local, now) : lan.get(f, local, now);
    }
    void send(const Endpoint& to, ByteView dg) override {
      if (!to.valid() || fresh.send(to, dg)) return;  // a birthday group's ports, or its hit port, take it
      auto ep = to_asio(to);
      if (to.family == local.family) {
        if (sendq.send(socket.native_handle(), ep.data(), static_cast<socklen_t>(ep.size()), dg)) wait_writable();
      } else if (second && to.family == second->local.family) {
        if (second->sendq.send(second->socket.native_handle(), ep.data(), static_cast<socklen_t>(ep.size()), dg))
          wait_writable_second();
      }
    }
    size_t open_fresh_ports(const Endpoint& to, size_t count, Duration life) override {
      const Endpoint* own =
          to.family == local.family ? &local : second && to.family == second->local.family ? &second->local : nullptr;
      return own ? fresh.open(to, *own, count, life) : 0;
    }
    bool send_with_ttl(const Endpoint& to, ByteView dg, uint8_t ttl) override {
      bool first = to.family == local.family;
      if (!to.valid() || (!first && !(second && to.family == second->local.family))) return false;
      if (ttl > 0 && fresh.send(to, dg, ttl)) return true;  // from a birthday group's ports
      if ((first ? sendq : second->sendq).queued()) return false;  // it would overtake them
      auto ep = to_asio(to);
      return real::send_with_ttl((first ? socket : second->socket).native_handle(), to.family == Endpoint::Family::kV6,
                                 ep.data(), static_cast<socklen_t>(ep.size()), dg, ttl);
    }
    void wait_writable_second() {
      if (second->send_waiting) return;
      second->send_waiting = true;
      second->socket.async_wait(udp::socket::wait_write, [this](const boost::system::error_code& ec) {
        second->send_waiting = false;
        if (!ec) flush_second();
      });
    }
    void flush_second() {
      switch (second->sendq.flush(second->socket.native_handle())) {
        case real::UdpSendQueue::Flush::kEmpty: return;
        case real::UdpSendQueue::Flush::kWaitWritable: return wait_writable_second();
        case real::UdpSendQueue::Flush::kRetryLater:
          second->send_waiting = true;
          second->send_timer.expires_after(std::chrono::milliseconds(1));
          second->send_timer.async_wait([this](const boost::system::error_code& ec) {
            second->send_waiting = false;
            if (!ec) flush_second();
          });
          return;
      }
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

    // Waits until a socket is readable, then reads it in batches.
    void receive() { receive_on(socket); }
    void receive_on(udp::socket& s) {
      s.async_wait(udp::socket::wait_read, [this, &s](const boost::system::error_code& ec) {
        if (ec == asio::error::operation_aborted || !s.is_open()) return;
        drain(s.native_handle());
        receive_on(s);
      });
    }

    // Takes what is queued, kBatch datagrams per recvmmsg call, up to kDrainBatches calls before going back to
    // the reactor (timers and the fast path get their turn). Under a flood the socket is read in large
    // batches, so each datagram costs a fraction of a system call.
    void drain(int fd) {
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
          frozen = std::chrono::steady_clock::now() - origin;  // one clock read for all of the datagram's work
          node->on_datagram(from_asio(ep), {batch.data[i].data(), batch.msgs[i].msg_len});
          frozen = TimePoint{};
        }
        if (static_cast<unsigned>(got) < kBatch) return;
      }
    }
  };

  // One io thread: its io_context, the receive buffers and random source of the nodes it hosts.
  struct Shard {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    std::unique_ptr<Batch> batch = std::make_unique<Batch>();
    real::FastRandom rng;  // Environment::random of every host of this thread
    std::thread thread;
  };

  // A call(fn)/post(fn) with threads > 1: every thread runs one of these; the last to arrive runs `fn` while
  // the others wait for it (a barrier). Posted to all threads under `exclusive_mu`, so every thread meets
  // them in the same order and two never wait for each other.
  struct Park {
    std::function<void()> fn;
    size_t arrived = 0;
    bool done = false;
  };

  RealDriver::Options options;
  std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Shard>> shards;  // before `hosts`: sockets and timers die first
  std::unique_ptr<real::FreeMemoryTimer> trim;  // malloc's free pages back to the kernel, on thread 0
  std::mutex exclusive_mu;                     // orders the posting of Park tasks
  std::mutex park_mu;                          // guards every Park and `stopping`
  std::condition_variable park_cv;
  bool stopping = false;                       // stop(): waiting Parks give up
  std::atomic<bool> stopped{false};            // stop() done: posts are dropped, as a stopped io_context would
  std::atomic<size_t> next_shard{0};
  mutable std::mutex hosts_mu;  // guards `hosts` and `by_node` (not the hosts themselves)
  std::list<std::unique_ptr<Host>> hosts;
  std::unordered_map<const Node*, Host*> by_node;
  std::unique_ptr<real::KeyWorkers> key_workers;  // stopped first (stop()): its jobs post to the shards

  explicit Impl(RealDriver::Options o) : options(o) {
    unsigned t = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    options.threads = t;
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    if (options.key_threads == RealDriver::Options::kSpareCores) options.key_threads = cores > t ? cores - t : 0;
    if (options.key_threads) key_workers = std::make_unique<real::KeyWorkers>(options.key_threads);
    for (unsigned i = 0; i < t; ++i) shards.push_back(std::make_unique<Shard>());
    if (options.return_free_memory_every.count() > 0)
      trim = std::make_unique<real::FreeMemoryTimer>(shards[0]->io, options.return_free_memory_every);
    for (unsigned i = 0; i < t; ++i)
      shards[i]->thread = std::thread([this, i] {
        tl_role = {this, i, nullptr};
        shards[i]->io.run();
      });
  }

  bool on_io() const { return tl_role.driver == this; }
  size_t this_shard() const { return tl_role.shard; }  // on_io() only
  bool exclusive_here() const { return tl_role.exclusive == this; }

  Host* find_host(const Node& node) const {
    std::lock_guard lock(hosts_mu);
    auto it = by_node.find(&node);
    return it == by_node.end() ? nullptr : it->second;
  }
  Host* host_of(const Node& node) const {
    if (auto* h = find_host(node)) return h;
    throw std::invalid_argument("RealDriver: not a node of this driver");
  }

  void post_exclusive(std::function<void()> fn) {
    if (shards.size() == 1) return asio::post(shards[0]->io, std::move(fn));
    auto park = std::make_shared<Park>();
    park->fn = std::move(fn);
    std::lock_guard order(exclusive_mu);
    for (auto& s : shards) asio::post(s->io, [this, park] { arrive(*park); });
  }

  void arrive(Park& p) {
    std::unique_lock lock(park_mu);
    if (++p.arrived < shards.size()) {
      park_cv.wait(lock, [&] { return p.done || stopping; });
      return;
    }
    lock.unlock();
    struct Release {
      Impl& impl;
      Park& p;
      ~Release() {
        tl_role.exclusive = nullptr;
        std::lock_guard l(impl.park_mu);
        p.done = true;
        impl.park_cv.notify_all();
      }
    } release{*this, p};
    tl_role.exclusive = this;
    p.fn();
  }

  // On io thread i: a host bound at `binds` and its node (RealDriver::add_node).
  Node* make_node(size_t i, const std::vector<Endpoint>& binds, Identity identity, NodeConfig config,
                  std::unique_ptr<DhtStorage> storage);

  // Runs `fn` on shard `i` and waits (inline when on it or inside an exclusive call).
  void run_on_shard(size_t i, const std::function<void()>& fn) {
    if (exclusive_here() || (on_io() && tl_role.shard == i)) return fn();
    if (on_io()) throw std::logic_error("RealDriver: waiting on another io thread could deadlock");
    std::packaged_task<void()> task(fn);
    auto fut = task.get_future();
    asio::post(shards[i]->io, [&task] { task(); });
    fut.get();
  }
};

RealDriver::RealDriver(Options options) : impl_(std::make_unique<Impl>(options)) {
  // Wait until every thread knows its role so on_io_thread() is reliable.
  for (size_t i = 0; i < impl_->shards.size(); ++i) impl_->run_on_shard(i, [] {});
}

RealDriver::~RealDriver() { stop(); }

void RealDriver::stop() {
  if (!impl_ || impl_->shards.empty() || !impl_->shards[0]->thread.joinable()) return;
  call([this] {
    for (auto& h : impl_->hosts) {
      boost::system::error_code ec;
      h->timer.cancel();
      h->send_timer.cancel();
      h->socket.close(ec);
      if (h->second) {
        h->second->send_timer.cancel();
        h->second->socket.close(ec);
      }
      h->conns.close_all();
      h->fresh.close_all();
      h->workers = nullptr;  // key work in place from now on: the workers stop below
    }
  });
  {
    std::lock_guard lock(impl_->park_mu);
    impl_->stopping = true;
    impl_->park_cv.notify_all();
  }
  impl_->key_workers.reset();  // waits for running key work; what it posts to the shards is never run
  for (auto& s : impl_->shards) {
    s->work.reset();
    s->io.stop();
  }
  for (auto& s : impl_->shards) s->thread.join();
  impl_->stopped = true;
  std::lock_guard lock(impl_->hosts_mu);
  impl_->by_node.clear();
  impl_->hosts.clear();
}

bool RealDriver::on_io_thread() const { return impl_->on_io() || impl_->exclusive_here(); }

bool RealDriver::on_thread_of(const Node& node) const {
  if (impl_->exclusive_here()) return true;
  if (!impl_->on_io()) return false;
  return impl_->host_of(node)->shard == tl_role.shard;
}

bool RealDriver::runs_inline(const Node* node) const {
  auto& I = *impl_;
  if (I.exclusive_here()) return true;
  if (!I.on_io()) return false;
  if (I.shards.size() == 1) return true;
  if (node && I.host_of(*node)->shard == tl_role.shard) return true;
  throw std::logic_error(node ? "RealDriver::call(node, fn) from another io thread could deadlock: post instead"
                              : "RealDriver::call(fn) from an io thread with threads > 1 could deadlock: post instead");
}

void RealDriver::post_on(const Node* node, std::function<void()> fn) {
  if (!node) return impl_->post_exclusive(std::move(fn));
  auto* h = impl_->find_host(*node);
  if (!h && impl_->stopped) return;  // the nodes are gone; the handler would never run anyway
  if (!h) throw std::invalid_argument("RealDriver: not a node of this driver");
  asio::post(impl_->shards[h->shard]->io, std::move(fn));
}

void RealDriver::post(std::function<void()> fn) { impl_->post_exclusive(std::move(fn)); }
void RealDriver::post(const Node& node, std::function<void()> fn) { post_on(&node, std::move(fn)); }
size_t RealDriver::threads() const { return impl_->shards.size(); }
size_t RealDriver::key_threads() const { return impl_->options.key_threads; }
size_t RealDriver::thread_of(const Node& node) const { return impl_->host_of(node)->shard; }

Node& RealDriver::add_node(const Endpoint& bind, Identity identity, NodeConfig config,
                           std::unique_ptr<DhtStorage> storage) {
  return add_node(std::vector<Endpoint>{bind}, std::move(identity), std::move(config), std::move(storage));
}

namespace {
void check_binds(const std::vector<Endpoint>& binds) {
  if (binds.empty() || binds.size() > 2 || (binds.size() == 2 && binds[0].family == binds[1].family))
    throw std::invalid_argument("RealDriver::add_node: one address, or one IPv4 and one IPv6 address");
}
}  // namespace

Node* RealDriver::Impl::make_node(size_t i, const std::vector<Endpoint>& binds, Identity identity, NodeConfig config,
                                  std::unique_ptr<DhtStorage> storage) {
  const Endpoint& bind = binds[0];
  auto& shard = *shards[i];
  auto host = std::make_unique<Impl::Host>(*shard.batch, shard.rng, shard.io, options, origin);
  host->shard = i;
  host->workers = key_workers.get();
  boost::system::error_code ec, listen_ec;
  auto ep = to_asio(bind);
  // An ephemeral port taken for TCP gives way to another (8 tries): the fast path shares the UDP port.
  for (int attempt = 0;; ++attempt) {
    host->socket.open(ep.protocol(), ec);
    if (!ec) host->socket.bind(ep, ec);
    if (ec) throw std::runtime_error("cannot bind UDP " + bind.to_string() + ": " + ec.message());
    host->local = from_asio(host->socket.local_endpoint());
    if (host->conns.listen(host->local, listen_ec) || bind.port != 0 || attempt == 7) break;
    host->socket.close(ec);
  }
  if (listen_ec)
    std::fprintf(stderr, "storjnet: no TCP fast path on %s: %s\n", host->local.to_string().c_str(), listen_ec.message().c_str());
  host->socket.non_blocking(true, ec);
  host->buffers = real::size_udp_buffers(host->socket.native_handle(), options.udp_rcvbuf, options.udp_sndbuf);
  if (binds.size() == 2) {
    // The other family's socket, at the same port when the first one's was ephemeral. An IPv6 socket beside
    // an IPv4 one is IPv6-only (else [::] would also take the IPv4 port).
    Endpoint b2 = binds[1];
    if (b2.port == 0) b2.port = host->local.port;
    host->second = std::make_unique<Impl::Host::Second>(shard.io);
    auto ep2 = to_asio(b2);
    host->second->socket.open(ep2.protocol(), ec);
    if (!ec && b2.family == Endpoint::Family::kV6) host->second->socket.set_option(asio::ip::v6_only(true), ec);
    if (!ec && bind.family == Endpoint::Family::kV6) host->socket.set_option(asio::ip::v6_only(true), ec);
    if (!ec) host->second->socket.bind(ep2, ec);
    if (ec) throw std::runtime_error("cannot bind UDP " + b2.to_string() + ": " + ec.message());
    host->second->socket.non_blocking(true, ec);
    real::size_udp_buffers(host->second->socket.native_handle(), options.udp_rcvbuf, options.udp_sndbuf);
    host->second->local = from_asio(host->second->socket.local_endpoint());
  }
  host->node = std::make_unique<Node>(*host, std::move(identity), config, std::move(storage));
  host->receive();
  if (host->second) host->receive_on(host->second->socket);
  Node* made = host->node.get();
  std::lock_guard lock(hosts_mu);
  by_node.emplace(made, host.get());
  hosts.push_back(std::move(host));
  return made;
}

Node& RealDriver::add_node(const std::vector<Endpoint>& binds, Identity identity, NodeConfig config,
                           std::unique_ptr<DhtStorage> storage) {
  std::vector<NodeSpec> one;
  one.push_back({binds, std::move(identity), std::move(config), std::move(storage)});
  return *add_nodes(std::move(one)).front();
}

std::vector<Node*> RealDriver::add_nodes(std::vector<NodeSpec> specs) {
  for (const auto& s : specs) check_binds(s.binds);
  std::vector<Node*> made(specs.size(), nullptr);
  std::vector<std::exception_ptr> failed(specs.size());
  std::vector<std::vector<size_t>> share(impl_->shards.size());
  for (size_t k = 0; k < specs.size(); ++k) share[impl_->next_shard.fetch_add(1) % impl_->shards.size()].push_back(k);
  auto make_share = [&](size_t i) {
    for (size_t k : share[i]) {
      auto& s = specs[k];
      try {
        made[k] = impl_->make_node(i, s.binds, std::move(s.identity), std::move(s.config), std::move(s.storage));
      } catch (...) {
        failed[k] = std::current_exception();
      }
    }
  };
  if (impl_->exclusive_here()) {
    for (size_t i = 0; i < share.size(); ++i) make_share(i);
  } else if (impl_->on_io()) {  // only this thread's share can be made here, as add_node would
    for (size_t i = 0; i < share.size(); ++i)
      if (!share[i].empty() && i != impl_->this_shard())
        throw std::logic_error("RealDriver: waiting on another io thread could deadlock");
    make_share(impl_->this_shard());
  } else {  // every thread with a share makes it at once: one hand-off each
    std::vector<size_t> busy;
    for (size_t i = 0; i < share.size(); ++i)
      if (!share[i].empty()) busy.push_back(i);
    std::vector<std::packaged_task<void()>> tasks;
    std::vector<std::future<void>> done;
    tasks.reserve(busy.size());
    for (size_t i : busy) {
      tasks.emplace_back([&make_share, i] { make_share(i); });
      done.push_back(tasks.back().get_future());
    }
    size_t posted = 0;
    try {
      for (; posted < busy.size(); ++posted) asio::post(impl_->shards[busy[posted]]->io, [t = &tasks[posted]] { (*t)(); });
    } catch (...) {  // the tasks live on this stack: wait for the ones posted before leaving
      for (size_t i = 0; i < posted; ++i) done[i].wait();
      throw;
    }
    for (auto& f : done) f.get();
  }
  for (auto& e : failed)
    if (e) std::rethrow_exception(e);
  return made;
}

Endpoint RealDriver::local_endpoint(const Node& node) const {
  std::lock_guard lock(impl_->hosts_mu);
  auto it = impl_->by_node.find(&node);
  return it == impl_->by_node.end() ? Endpoint{} : it->second->local;
}

std::vector<Endpoint> RealDriver::local_endpoints(const Node& node) const {
  std::lock_guard lock(impl_->hosts_mu);
  auto it = impl_->by_node.find(&node);
  if (it == impl_->by_node.end()) return {};
  std::vector<Endpoint> out{it->second->local};
  if (it->second->second) out.push_back(it->second->second->local);
  return out;
}

size_t RealDriver::size() const {
  std::lock_guard lock(impl_->hosts_mu);
  return impl_->hosts.size();
}

RealDriver::ConnStats RealDriver::conn_stats(const Node& node) {
  return call(node, [&] {
    auto t = impl_->host_of(node)->conns.stats();
    return ConnStats{t.open, t.paused, t.queued, t.paused_reads};
  });
}

UdpStats RealDriver::udp_stats(const Node& node) {
  return call(node, [&] {
    UdpStats out;
    auto* h = impl_->host_of(node);
    out.kernel_drops = real::udp_kernel_drops(h->socket.native_handle());
    out.send_queued = h->sendq.queued();
    out.send_deferred = h->sendq.deferred();
    out.send_queue_drops = h->sendq.dropped();
    out.rcvbuf = h->buffers.rcvbuf;
    out.sndbuf = h->buffers.sndbuf;
    return out;
  });
}

size_t RealDriver::drop_connections(const Node& node) {
  return call(node, [&] { return impl_->host_of(node)->conns.fail_all(); });
}

}  // namespace storjnet
