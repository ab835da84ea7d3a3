// stream: one stream's throughput between two real nodes on 127.0.0.1 (encrypted, flow-controlled), next
// to a plain TCP loopback copy measured the same way in the same run. Each end has its own thread (two
// RealDrivers; for TCP a writer and a reader thread), the writer pushing 1 MiB writes, the reader draining
// into an application buffer as soon as bytes arrive.
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>

#include <atomic>
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
// Asio's stock completion conditions cap each write_some at 64 KiB; the copies hand the kernel whole writes.
size_t whole(const boost::system::error_code& ec, size_t) { return ec ? 0 : kWrite; }

// Plain TCP copy of `total` bytes over loopback, both ends on one io_context thread; returns seconds.
double tcp_copy_one_thread(size_t total) {
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
    asio::async_write(client, asio::buffer(src.data(), n), whole, [&, n](auto ec, size_t) {
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
// Plain TCP copy of `total` bytes over loopback, writer and reader on their own threads; returns seconds.
double tcp_copy_two_threads(size_t total) {
  asio::io_context io;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io), server(io);
  client.connect(acc.local_endpoint());
  acc.accept(server);
  auto t0 = std::chrono::steady_clock::now();
  std::thread writer([&] {
    Bytes src(kWrite, 0x5a);
    for (size_t sent = 0; sent < total;) {
      size_t n = std::min(kWrite, total - sent);
      asio::write(client, asio::buffer(src.data(), n), whole);
      sent += n;
    }
  });
  Bytes dst(kWrite), sink;
  sink.reserve(kWrite);
  for (size_t got = 0; got < total;) {
    size_t n = server.read_some(asio::buffer(dst));
    sink.assign(dst.begin(), dst.begin() + static_cast<long>(n));  // hand to the application
    got += n;
  }
  double s = seconds_since(t0);
  writer.join();
  return s;
}
}  // namespace

static void add_stream(CLI::App& app) {
  auto mib = std::make_shared<int>(256);
  auto* cmd = app.add_subcommand("stream", "one stream's throughput on 127.0.0.1 next to a plain TCP copy");
  auto one_thread = std::make_shared<bool>(false);
  auto window_kib = std::make_shared<int>(0);
  cmd->add_option("--mib", *mib, "MiB to transfer")->check(CLI::Range(1, 1000000));
  cmd->add_option("--window-kib", *window_kib, "receive window per stream, KiB (default: StreamsConfig's)")
      ->check(CLI::Range(64, 1 << 20));
  cmd->add_flag("--one-thread", *one_thread, "both nodes on one io thread (default: a thread each)");
  cmd->callback([mib, one_thread, window_kib] {
    size_t total = size_t(*mib) << 20;
    // Plain TCP both ways (one thread for both ends, a thread per end); the faster one is the reference.
    double tcp1_s = tcp_copy_one_thread(total), tcp2_s = tcp_copy_two_threads(total);
    double tcp_s = std::min(tcp1_s, tcp2_s);

    RealDriver da;
    std::optional<RealDriver> second;  // one thread per end unless --one-thread
    if (!*one_thread) second.emplace();
    RealDriver& db = second ? *second : da;
    auto lo = *Endpoint::parse("127.0.0.1:1");
    lo.port = 0;
    NodeConfig config;
    if (*window_kib) config.streams.receive_buffer = size_t(*window_kib) << 10;
    Node& a = da.add_node(lo, Identity::generate(), config);
    Node& b = db.add_node(lo, Identity::generate(), config);
    Contact bc{b.id(), b.public_key(), db.local_endpoint(b)};
    da.call([&] { a.streams().remember(bc); });
    std::promise<std::optional<StreamId>> opened;
    da.post([&] { a.streams().open(b.id(), [&](auto id) { opened.set_value(id); }); });
    auto id = opened.get_future().get();
    if (!id) throw std::runtime_error("stream_open failed");
    // The fast path (docs/protocol.md 7.6) connects right after the open; give it a moment.
    for (int i = 0; i < 200 && !da.call([&] { return a.streams().fast_path(*id); }); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));

    Bytes src(kWrite, 0x5a);
    size_t sent = 0, got = 0;        // writer thread, reader thread
    std::atomic<bool> failed = false, over = false;
    std::promise<void> finished;
    auto finish = [&] {
      if (!over.exchange(true)) finished.set_value();
    };
    // The writer keeps the peer's window full: it writes what the stream accepts now (writable()) without
    // waiting for earlier writes to complete, and waits for space when there is none.
    std::function<void()> write_more = [&] {
      while (sent < total && !failed) {
        size_t n = std::min({kWrite, total - sent, a.streams().writable(*id)});
        if (n == 0) return a.streams().on_writable(*id, write_more);
        a.streams().write(*id, ByteView(src).first(n), [&, n](std::optional<size_t> done) {
          if (done == n) return;
          failed = true;
          finish();
        });
        sent += n;
      }
    };
    std::function<void()> read_more = [&] {
      auto r = b.streams().read(*id, std::nullopt);
      if (!r) {
        failed = true;
        return finish();
      }
      got += r->size();
      if (got >= total) return finish();
      b.streams().on_readable(*id, read_more);
    };
    auto t0 = std::chrono::steady_clock::now();
    db.post([&] { b.streams().on_readable(*id, read_more); });
    da.post(write_more);
    finished.get_future().wait();
    double wall = seconds_since(t0);
    auto fast = da.call([&] { return a.streams().fast_path_stats(); });
    const char* transport = fast.bytes_sent == 0 ? "engine-udp" : fast.bytes_sent >= total ? "tcp-aead" : "mixed";
    auto retransmits = da.call([&] { return a.stats().retransmits; });
    auto drops = da.call([&] { return a.stats().drops_total(); }) + db.call([&] { return b.stats().drops_total(); });
    da.stop();
    db.stop();  // (no-op when it is da)
    double mibs = failed ? 0 : *mib / wall, tcp_mibs = *mib / tcp_s;
    print_result({{"workload", "stream"},
                  {"mib", *mib},
                  {"threads", *one_thread ? 1 : 2},
                  {"window_kib", config.streams.receive_buffer >> 10},
                  {"ok", !failed && got == total},
                  {"mib_per_s", mibs},
                  {"tcp_mib_per_s", tcp_mibs},
                  {"tcp_one_thread_mib_per_s", *mib / tcp1_s},
                  {"tcp_two_threads_mib_per_s", *mib / tcp2_s},
                  {"ratio", tcp_mibs > 0 ? mibs / tcp_mibs : 0},
                  {"transport", transport},
                  {"cipher", !fast.bytes_sent ? "engine" : fast.links_aes256 ? "aes256ocb" : "aes128ocb"},
                  {"fast_bytes", fast.bytes_sent},
                  {"retransmits", retransmits},
                  {"drops", drops},
                  {"wall_s", wall}});
  });
}

STORJNET_WORKLOAD(add_stream);

}  // namespace storjnet::bench
