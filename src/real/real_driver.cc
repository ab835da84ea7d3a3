#include "storjnet/real_driver.h"

#include <sodium.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <chrono>
#include <list>
#include <mutex>
#include <thread>

namespace storjnet {

namespace asio = boost::asio;
using udp = asio::ip::udp;

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
  struct Host final : Environment {
    udp::socket socket;
    asio::steady_timer timer;
    std::chrono::steady_clock::time_point origin;
    std::unique_ptr<Node> node;
    Endpoint local;
    udp::endpoint sender;
    std::array<uint8_t, 2048> buf;

    Host(asio::io_context& io, std::chrono::steady_clock::time_point o) : socket(io), timer(io), origin(o) {}

    TimePoint now() override { return std::chrono::steady_clock::now() - origin; }
    uint64_t unix_us() override {
      return std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
    }
    void send(const Endpoint& to, ByteView dg) override {
      if (!to.valid() || (to.family == Endpoint::Family::kV6) != (local.family == Endpoint::Family::kV6)) return;
      boost::system::error_code ec;
      socket.send_to(asio::buffer(dg.data(), dg.size()), to_asio(to), 0, ec);
    }
    void wake_at(TimePoint at) override {
      timer.expires_at(origin + std::chrono::duration_cast<std::chrono::steady_clock::duration>(at));
      timer.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) node->on_wake();
      });
    }
    void random(std::span<uint8_t> out) override { randombytes_buf(out.data(), out.size()); }

    void receive() {
      socket.async_receive_from(asio::buffer(buf), sender, [this](const boost::system::error_code& ec, size_t n) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) node->on_datagram(from_asio(sender), {buf.data(), n});
        // Drain what else is queued before going back to the reactor.
        for (int i = 0; i < 64; ++i) {
          boost::system::error_code e2;
          size_t m = socket.receive_from(asio::buffer(buf), sender, 0, e2);
          if (e2) break;
          node->on_datagram(from_asio(sender), {buf.data(), m});
        }
        receive();
      });
    }
  };

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now();
  std::list<std::unique_ptr<Host>> hosts;
  std::thread thread;
  std::thread::id thread_id;

  Impl() {
    thread = std::thread([this] {
      thread_id = std::this_thread::get_id();
      io.run();
    });
  }
};

RealDriver::RealDriver() : impl_(std::make_unique<Impl>()) {
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
      h->socket.close(ec);
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
    auto host = std::make_unique<Impl::Host>(impl_->io, impl_->origin);
    boost::system::error_code ec;
    auto ep = to_asio(bind);
    host->socket.open(ep.protocol(), ec);
    if (!ec) host->socket.bind(ep, ec);
    if (ec) throw std::runtime_error("cannot bind UDP " + bind.to_string() + ": " + ec.message());
    host->socket.non_blocking(true, ec);
    asio::socket_base::receive_buffer_size rcv(4 << 20);
    asio::socket_base::send_buffer_size snd(4 << 20);
    host->socket.set_option(rcv, ec);
    host->socket.set_option(snd, ec);
    host->local = from_asio(host->socket.local_endpoint());
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

}  // namespace storjnet
