// ping: two real nodes on 127.0.0.1, C sequential authenticated pings, next to a plain UDP echo measured
// the same way (Asio io_context threads as many as the nodes', async receive, chained round trips) in the
// same run.
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <future>
#include <thread>

#include "bench_util.h"
#include "engine/engine.h"
#include "storjnet/real_driver.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {
using Clock = std::chrono::steady_clock;
namespace asio = boost::asio;
using udp = asio::ip::udp;

// Plain UDP echo between two sockets on one io_context thread, or with the server on a thread of its own
// (as the nodes are with --threads 2); returns per-round-trip microseconds.
std::vector<double> udp_echo(int count, bool two_threads) {
  asio::io_context io, server_io;
  udp::socket client(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  udp::socket server(two_threads ? server_io : io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const udp::endpoint to = server.local_endpoint();  // once: each call is a getsockname system call
  std::array<uint8_t, 2048> cbuf{}, sbuf{};
  udp::endpoint from, sfrom;
  std::vector<double> rtts;
  rtts.reserve(count);
  Bytes payload(64, 0x42);
  Clock::time_point start;
  int done = 0;
  std::function<void()> serve = [&] {
    server.async_receive_from(asio::buffer(sbuf), sfrom, [&](auto ec, size_t n) {
      if (ec) return;
      server.send_to(asio::buffer(sbuf.data(), n), sfrom);
      serve();
    });
  };
  std::function<void()> one = [&] {
    start = Clock::now();
    client.send_to(asio::buffer(payload), to);
    client.async_receive_from(asio::buffer(cbuf), from, [&](auto ec, size_t) {
      if (ec) return;
      rtts.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
      if (++done < count) one();
      else io.stop();
    });
  };
  serve();
  one();
  std::thread server_thread;
  if (two_threads) server_thread = std::thread([&] { server_io.run(); });
  io.run();
  if (two_threads) {
    server_io.stop();
    server_thread.join();
  }
  return rtts;
}
}  // namespace

static void add_ping(CLI::App& app) {
  auto count = std::make_shared<int>(10000);
  auto threads = std::make_shared<int>(1);
  auto* cmd = app.add_subcommand("ping", "two real nodes on 127.0.0.1: C sequential kademlia_ping round trips");
  cmd->add_option("--count", *count, "pings")->check(CLI::Range(1, 100000000));
  cmd->add_option("--threads", *threads, "io threads: 1 (both nodes on one, like the echo) or 2 (a thread each)")
      ->check(CLI::Range(1, 2));
  cmd->callback([count, threads] {
    int c = *count;
    auto warm = udp_echo(std::min(c, 1000), *threads == 2);
    auto udp = udp_echo(c, *threads == 2);

    RealDriverOptions options;
    options.threads = static_cast<unsigned>(*threads);
    RealDriver driver(options);
    auto lo = *Endpoint::parse("127.0.0.1:1");
    lo.port = 0;
    Node& a = driver.add_node(lo, Identity::generate());
    Node& b = driver.add_node(lo, Identity::generate());
    Endpoint eb = driver.local_endpoint(b);
    std::promise<std::optional<Contact>> hello;
    driver.post(a, [&] { a.ping_address(eb, [&](auto ct) { hello.set_value(ct); }); });
    auto peer = hello.get_future().get();
    if (!peer) throw std::runtime_error("first contact failed");

    std::vector<double> rtts;
    rtts.reserve(c);
    int answered = 0, issued = 0;
    std::promise<void> finished;
    Clock::time_point t0, start;
    std::function<void()> one = [&] {
      ++issued;
      start = Clock::now();
      a.ping(*peer, [&](std::optional<NodeId> id) {
        if (id) {
          ++answered;
          rtts.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        }
        if (issued < c) one();
        else finished.set_value();
      });
    };
    driver.post(a, [&] {
      t0 = Clock::now();
      one();
    });
    finished.get_future().wait();
    double wall = seconds_since(t0);
    auto [retransmits, drops] = driver.call([&] {
      return std::pair(a.stats().retransmits, a.stats().drops_total() + b.stats().drops_total());
    });
    driver.stop();
    double p50 = percentile(rtts, 0.5), udp50 = percentile(udp, 0.5);
    print_result({{"workload", "ping"},
                  {"count", c},
                  {"threads", *threads},
                  {"answered", answered},
                  {"rtt_p50_us", p50},
                  {"rtt_p99_us", percentile(rtts, 0.99)},
                  {"per_s", answered / wall},
                  {"udp_rtt_p50_us", udp50},
                  {"udp_rtt_p99_us", percentile(udp, 0.99)},
                  {"ratio_p50", udp50 > 0 ? p50 / udp50 : 0},
                  {"retransmits", retransmits},
                  {"drops", drops},
                  {"wall_s", wall}});
  });
}

STORJNET_WORKLOAD(add_ping);

}  // namespace storjnet::bench
