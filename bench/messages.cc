// messages: two real nodes on 127.0.0.1 exchanging 64-byte JSON messages with message_send. First one at a
// time (per_s, round-trip percentiles), then pipelined (many in flight; the sender batches them).
#include <future>
#include <numeric>

#include "bench_util.h"
#include "node/node_internals.h"
#include "engine/engine.h"
#include "storjnet/real_driver.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {
using Clock = std::chrono::steady_clock;
}

static void add_messages(CLI::App& app) {
  auto count = std::make_shared<int>(200000);
  auto window = std::make_shared<int>(20000);
  auto* cmd = app.add_subcommand("messages", "two real nodes on 127.0.0.1: 64-byte message_send, sequential and pipelined");
  cmd->add_option("--count", *count, "messages per phase")->check(CLI::Range(1, 100000000));
  cmd->add_option("--window", *window, "messages in flight in the pipelined phase")->check(CLI::Range(1, 1000000));
  cmd->callback([count, window] {
    int c = *count;
    RealDriver driver;
    auto lo = *Endpoint::parse("127.0.0.1:1");
    lo.port = 0;
    NodeConfig cfg;
    cfg.messages.max_queue = 1 << 22;
    // One trusted sender: its share and notify rate are the whole queue and unlimited (this measures the path).
    cfg.messages.max_queue_per_sender = cfg.messages.max_queue_per_prefix = cfg.messages.max_queue;
    cfg.messages.max_queue_bytes_per_sender = cfg.messages.max_queue_bytes_per_prefix = cfg.messages.max_queue_bytes;
    cfg.messages.notify_rate = cfg.messages.notify_burst = 1e12;
    Node& a = driver.add_node(lo, Identity::generate(), cfg);
    Node& b = driver.add_node(lo, Identity::generate(), cfg);
    driver.call([&] { a.messages().remember(Contact{b.id(), b.public_key(), driver.local_endpoint(b)}); });
    const NodeId to = b.id();
    const std::string msg = "\"" + std::string(62, 'm') + "\"";  // 64 bytes of JSON

    // Receiver drains its queue every millisecond, as an application polling message_list would.
    size_t received = 0;
    std::function<void()> drain = [&] {
      for (auto& [from, v] : b.messages().take_all()) received += v.size();
      NodeInternals::engine(b).schedule(1ms, drain);
    };
    driver.post(drain);

    // Sequential.
    std::vector<double> rtts;
    rtts.reserve(c);
    int ok = 0, issued = 0;
    std::promise<void> seq_done;
    Clock::time_point t0, start;
    std::function<void()> one = [&] {
      ++issued;
      start = Clock::now();
      a.messages().send(to, msg, [&](bool r) {
        ok += r;
        rtts.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        if (issued < c) one();
        else seq_done.set_value();
      });
    };
    driver.post([&] {
      t0 = Clock::now();
      one();
    });
    seq_done.get_future().wait();
    double seq_wall = seconds_since(t0);

    // Pipelined: keep `window` messages in flight.
    int pok = 0, pdone = 0, pissued = 0;
    std::promise<void> pipe_done;
    Clock::time_point p0;
    std::function<void()> issue = [&] {
      ++pissued;
      a.messages().send(to, msg, [&](bool r) {
        pok += r;
        if (++pdone == c) pipe_done.set_value();
        else if (pissued < c) issue();
      });
    };
    driver.post([&] {
      p0 = Clock::now();
      for (int k = 0; k < std::min(*window, c); ++k) issue();
    });
    pipe_done.get_future().wait();
    double pipe_wall = seconds_since(p0);
    auto [retransmits, drops, rx] = driver.call([&] {
      for (auto& [from, v] : b.messages().take_all()) received += v.size();
      return std::tuple(a.stats().retransmits, a.stats().drops_total() + b.stats().drops_total(),
                        received);
    });
    driver.stop();
    print_result({{"workload", "messages"},
                  {"count", c},
                  {"acked", ok},
                  {"per_s", ok / seq_wall},
                  {"rtt_p50_us", percentile(rtts, 0.5)},
                  {"rtt_p99_us", percentile(rtts, 0.99)},
                  {"rtt_p999_us", percentile(rtts, 0.999)},
                  {"rtt_mean_us", rtts.empty() ? 0 : std::accumulate(rtts.begin(), rtts.end(), 0.0) / rtts.size()},
                  {"pipelined_acked", pok},
                  {"pipelined_window", *window},
                  {"pipelined_per_s", pok / pipe_wall},
                  {"received", rx},
                  {"retransmits", retransmits},
                  {"drops", drops},
                  {"wall_s", seq_wall + pipe_wall}});
  });
}

STORJNET_WORKLOAD(add_messages);

}  // namespace storjnet::bench
