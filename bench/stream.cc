// stream: one stream's throughput between two real nodes on 127.0.0.1 (encrypted, flow-controlled), next
// to a plain TCP loopback copy measured the same way in the same run: one Asio io_context thread hosting
// both ends, the writer pushing 1 MiB writes, the reader draining into an application buffer.
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <sodium.h>

#include <future>
#include <thread>

#include "bench_util.h"
#include "engine/engine.h"
#include "storjnet/real_driver.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr size_t kWrite = 1 << 20;

// Plain TCP copy of `total` bytes over loopback; returns seconds.
double tcp_copy(size_t total) {
  asio::io_context io;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io), server(io);
  Bytes src(kWrite, 0x5a), dst(kWrite);
  Bytes sink;
  sink.reserve(kWrite);
  size_t sent = 0, got = 0;
  std::chrono::steady_clock::time_point t0;
  std::function<void()> write_more = [&] {
    if (sent >= total) return;
    size_t n = std::min(kWrite, total - sent);
    asio::async_write(client, asio::buffer(src.data(), n), [&, n](auto ec, size_t) {
      if (ec) return;
      sent += n;
      write_more();
    });
  };
  std::function<void()> read_more = [&] {
    server.async_read_some(asio::buffer(dst), [&](auto ec, size_t n) {
      if (ec) return;
      sink.assign(dst.begin(), dst.begin() + static_cast<long>(n));  // hand to the application
      got += n;
      if (got >= total) return io.stop();
      read_more();
    });
  };
  acc.async_accept(server, [&](auto ec) {
    if (ec) return;
    t0 = std::chrono::steady_clock::now();
    read_more();
    write_more();
  });
  client.connect(acc.local_endpoint());
  io.run();
  return seconds_since(t0);
}
}  // namespace

static void add_stream(CLI::App& app) {
  auto mib = std::make_shared<int>(256);
  auto* cmd = app.add_subcommand("stream", "one stream's throughput on 127.0.0.1 next to a plain TCP copy");
  cmd->add_option("--mib", *mib, "MiB to transfer")->check(CLI::Range(1, 1000000));
  cmd->callback([mib] {
    size_t total = size_t(*mib) << 20;
    double tcp_s = tcp_copy(total);

    RealDriver driver;
    auto lo = *Endpoint::parse("127.0.0.1:1");
    lo.port = 0;
    Node& a = driver.add_node(lo, Identity::generate());
    Node& b = driver.add_node(lo, Identity::generate());
    driver.call([&] { a.streams().remember(Contact{b.id(), b.public_key(), driver.local_endpoint(b)}); });
    std::promise<std::optional<StreamId>> opened;
    driver.post([&] { a.streams().open(b.id(), [&](auto id) { opened.set_value(id); }); });
    auto id = opened.get_future().get();
    if (!id) throw std::runtime_error("stream_open failed");
    // The fast path (docs/protocol.md 7.6) connects right after the open; give it a moment.
    for (int i = 0; i < 200 && !driver.call([&] { return a.streams().fast_path(*id); }); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));

    Bytes src(kWrite, 0x5a);
    size_t sent = 0, got = 0;
    bool failed = false;
    std::promise<void> finished;
    std::chrono::steady_clock::time_point t0;
    auto drain = [&] {
      auto r = b.streams().read(*id, std::nullopt);
      if (r) got += r->size();
      if (got >= total) {
        finished.set_value();
        return true;
      }
      return false;
    };
    std::function<void()> write_more = [&] {
      if (sent >= total || failed) return;
      a.streams().write(*id, ByteView(src).first(std::min(kWrite, total - sent)), [&](std::optional<size_t> n) {
        if (!n) {
          failed = true;
          return finished.set_value();
        }
        sent += *n;
        if (*n == 0) a.streams().on_writable(*id, write_more);
        else write_more();
      });
    };
    // The reader polls (stream_read has no readiness callback): every 100 us.
    std::function<void()> poll = [&] {
      if (!drain()) b.engine().schedule(100us, poll);
    };
    driver.post([&] {
      t0 = std::chrono::steady_clock::now();
      write_more();
      poll();
    });
    finished.get_future().wait();
    double wall = seconds_since(t0);
    auto fast = driver.call([&] { return a.streams().fast_path_stats(); });
    const char* transport = fast.bytes_sent == 0 ? "engine-udp" : fast.bytes_sent >= total ? "tcp-aead" : "mixed";
    const char* cipher = crypto_aead_aes256gcm_is_available() ? "aes256gcm" : "xchacha20poly1305";
    auto [retransmits, drops] = driver.call([&] {
      return std::pair(a.engine().stats().retransmits, a.engine().drops().total() + b.engine().drops().total());
    });
    driver.stop();
    double mibs = failed ? 0 : *mib / wall, tcp_mibs = *mib / tcp_s;
    print_result({{"workload", "stream"},
                  {"mib", *mib},
                  {"ok", !failed && got == total},
                  {"mib_per_s", mibs},
                  {"tcp_mib_per_s", tcp_mibs},
                  {"ratio", tcp_mibs > 0 ? mibs / tcp_mibs : 0},
                  {"transport", transport},
                  {"cipher", fast.bytes_sent ? cipher : "engine"},
                  {"fast_bytes", fast.bytes_sent},
                  {"retransmits", retransmits},
                  {"drops", drops},
                  {"wall_s", wall}});
  });
}

STORJNET_WORKLOAD(add_stream);

}  // namespace storjnet::bench
