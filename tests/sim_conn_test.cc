// The simulator's byte connections (src/sim/sim_conn.h) on their own, under a hand-driven host: ordered
// delivery paced by bandwidth and latency, the window and the reader's high-water mark (back-pressure),
// close and reset semantics, connects that fail.
#include <gtest/gtest.h>

#include <map>
#include <queue>

#include "sim/sim_conn.h"

using namespace storjnet;
using namespace std::chrono_literals;

namespace {

// Nodes 0..n-1 at 10.0.0.i:4000, 10 ms apart; events in (time, sequence) order, as the simulator runs them.
struct Host final : sim::ConnHost {
  struct Node final : ConnListener {
    explicit Node(uint32_t i) : index(i) {}
    uint32_t index;
    std::map<uint64_t, Bytes> got;
    std::vector<uint64_t> opened, closed;
    std::function<void(uint64_t, ByteView)> on_data;  // the test's reaction, after recording
    void on_conn_open(uint64_t c, bool, const Endpoint&) override { opened.push_back(c); }
    void on_conn_data(uint64_t c, ByteView b) override {
      got[c].insert(got[c].end(), b.begin(), b.end());
      if (on_data) on_data(c, b);
    }
    void on_conn_closed(uint64_t c) override { closed.push_back(c); }
  };

  explicit Host(size_t n, ConnModel m = {}) : conns(*this, m, 1) {
    nodes.reserve(n);
    for (uint32_t i = 0; i < n; ++i) nodes.emplace_back(i);
    alive_.assign(n, true);
  }

  TimePoint now() const override { return clock; }
  bool alive(uint32_t n) const override { return n < alive_.size() && alive_[n]; }
  ConnListener* listener(uint32_t n) const override {
    return n < nodes.size() ? const_cast<Node*>(&nodes[n]) : nullptr;
  }
  std::optional<std::pair<uint32_t, Endpoint>> route(uint32_t from, const Endpoint& to) const override {
    if (to.addr[0] != 10 || to.addr[3] >= nodes.size()) return std::nullopt;
    return std::pair{uint32_t(to.addr[3]), ep(from)};
  }
  bool cut(uint32_t a, uint32_t b) const override { return cut_ && a != b; }
  Duration latency(uint32_t, uint32_t) const override { return 10ms; }
  const LinkModel& link() const override { return link_; }
  void schedule(TimePoint at, uint64_t token) override { q.push({at, seq++, token}); }
  void trace(uint64_t, ByteView) override { ++traced; }
  SimStats& stats() override { return stats_; }

  static Endpoint ep(uint32_t i) { return Endpoint::v4(0x0a000000u | i, 4000); }
  void run_for(Duration d) {
    TimePoint end = clock + d;
    while (!q.empty() && std::get<0>(q.top()) <= end) {
      auto [at, s, token] = q.top();
      q.pop();
      clock = at;
      conns.fire(token);
    }
    clock = end;
  }

  using Ev = std::tuple<TimePoint, uint64_t, uint64_t>;
  std::priority_queue<Ev, std::vector<Ev>, std::greater<>> q;
  TimePoint clock{0};
  uint64_t seq = 0, traced = 0;
  std::vector<bool> alive_;
  bool cut_ = false;
  LinkModel link_;
  SimStats stats_;
  std::vector<Node> nodes;
  sim::Conns conns;
};

Bytes pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 131 + i / 251);
  return b;
}

}  // namespace

TEST(SimConn, OrderedDeliveryPacedByBandwidthAndLatency) {
  Host h(2);
  uint64_t c = h.conns.connect(0, Host::ep(1));
  Bytes data = pattern(1'250'000);  // 100 ms at 12.5 MB/s
  h.conns.send(0, c, Bytes(data.begin(), data.begin() + 1000));  // queued before the connection is up
  h.conns.send(0, c, Bytes(data.begin() + 1000, data.end()));
  EXPECT_EQ(h.conns.queued(0, c), data.size());
  h.run_for(10ms);  // the SYN arrived: the acceptor has its end, the opener not yet
  ASSERT_EQ(h.nodes[1].opened.size(), 1u);
  EXPECT_TRUE(h.nodes[0].opened.empty());
  h.run_for(10ms);
  ASSERT_EQ(h.nodes[0].opened, std::vector<uint64_t>{c});
  uint64_t b = h.nodes[1].opened[0];
  h.run_for(100ms);  // 20 + 100 ms: the last segment is still on its way (10 ms latency)
  EXPECT_LT(h.nodes[1].got[b].size(), data.size());
  h.run_for(11ms);
  EXPECT_EQ(h.nodes[1].got[b], data);
  EXPECT_EQ(h.conns.queued(0, c), 0u);
  EXPECT_EQ(h.stats_.conn_bytes, data.size());
  EXPECT_EQ(h.stats_.conns_opened, 1u);
}

// A reader whose own answers pile up stops reading at the high-water mark: the writer's window fills and
// the reader's bytes stall until its queue is down to half the mark; then everything arrives, in order.
TEST(SimConn, HighWaterMarkAndWindowPushBack) {
  ConnModel m;
  m.window = 256 * 1024;
  m.high_water = 512 * 1024;
  Host h(2, m);
  uint64_t c = h.conns.connect(0, Host::ep(1));
  h.run_for(20ms);
  uint64_t b = h.nodes[1].opened.at(0);
  // Node 1 answers every byte with two: its queue to node 0 outgrows what its window to node 0 carries.
  h.nodes[1].on_data = [&](uint64_t conn, ByteView bytes) { h.conns.send(1, conn, Bytes(2 * bytes.size(), 1)); };
  Bytes data = pattern(4 << 20);
  size_t fed = 0, most_queued_at_reader = 0;
  int stalled = 0;  // 10 ms ticks in which node 1 read nothing while node 0 had bytes waiting
  for (int i = 0; i < 400; ++i) {
    // Node 0 keeps at most 128 KiB queued (so it never stops reading itself).
    while (fed < data.size() && h.conns.queued(0, c) < 128 * 1024) {
      size_t n = std::min<size_t>(64 * 1024, data.size() - fed);
      h.conns.send(0, c, Bytes(data.begin() + long(fed), data.begin() + long(fed + n)));
      fed += n;
    }
    size_t before = h.nodes[1].got[b].size();
    bool waiting = h.conns.queued(0, c) > 0;
    h.run_for(10ms);
    if (waiting && h.nodes[1].got[b].size() == before) ++stalled;
    most_queued_at_reader = std::max(most_queued_at_reader, h.conns.queued(1, b));
  }
  EXPECT_EQ(h.nodes[1].got[b], data);
  EXPECT_EQ(h.nodes[0].got[c].size(), 2 * data.size());
  // The reader stopped at its high-water mark (crossed by at most one segment's answer)...
  EXPECT_GT(most_queued_at_reader, m.high_water);
  EXPECT_LE(most_queued_at_reader, m.high_water + 2 * m.segment);
  // ...and the writer waited meanwhile.
  EXPECT_GT(stalled, 0);
}

TEST(SimConn, CloseDeliversWhatIsOnTheWireThenTheFin) {
  Host h(2);
  uint64_t c = h.conns.connect(0, Host::ep(1));
  h.run_for(20ms);
  uint64_t b = h.nodes[1].opened.at(0);
  h.conns.send(0, c, pattern(1000));
  h.conns.close(0, c);  // no event for the closer
  h.run_for(50ms);
  EXPECT_EQ(h.nodes[1].got[b].size(), 1000u);
  EXPECT_EQ(h.nodes[1].closed, std::vector<uint64_t>{b});
  EXPECT_TRUE(h.nodes[0].closed.empty());
  EXPECT_EQ(h.stats_.conns_closed, 1u);
  // Node 1 writes to the end node 0 no longer has: node 1's end is gone already, so nothing moves.
  h.conns.send(1, b, pattern(10));
  h.run_for(50ms);
  EXPECT_EQ(h.stats_.conns_reset, 0u);
}

TEST(SimConn, ResetsAPartitionAndARestartedPeer) {
  Host h(3);
  uint64_t c = h.conns.connect(0, Host::ep(1));
  h.run_for(20ms);
  uint64_t b = h.nodes[1].opened.at(0);
  EXPECT_EQ(h.conns.reset(0), 1u);
  h.run_for(20ms);
  EXPECT_EQ(h.nodes[0].closed, std::vector<uint64_t>{c});
  EXPECT_EQ(h.nodes[1].closed, std::vector<uint64_t>{b});

  // A partition: the next segment resets the connection on both ends after cut_timeout.
  c = h.conns.connect(0, Host::ep(2));
  h.run_for(20ms);
  h.cut_ = true;
  h.conns.send(0, c, pattern(10));
  h.run_for(999ms);
  EXPECT_EQ(h.nodes[0].closed.size(), 1u);
  h.run_for(1ms);
  EXPECT_EQ(h.nodes[0].closed.size(), 2u);
  EXPECT_EQ(h.nodes[2].closed.size(), 1u);
  h.cut_ = false;

  // Node 1 restarts (its ends vanish); node 0's next segment is answered with a reset.
  c = h.conns.connect(0, Host::ep(1));
  h.run_for(20ms);
  h.conns.forget(1);
  h.conns.send(0, c, pattern(10));
  h.run_for(30ms);
  EXPECT_EQ(h.nodes[0].closed.back(), c);
  EXPECT_EQ(h.stats_.conns_reset, 3u);
}

TEST(SimConn, ConnectsFailToDeadRefusingAndUnknownAddresses) {
  Host h(3);
  h.alive_[1] = false;
  h.conns.refuse(2, true);
  uint64_t dead = h.conns.connect(0, Host::ep(1));
  uint64_t refusing = h.conns.connect(0, Host::ep(2));
  uint64_t nobody = h.conns.connect(0, *Endpoint::parse("192.0.2.1:4000"));
  h.run_for(20ms);  // a reset answers the refusing node's SYN in one round trip
  EXPECT_EQ(h.nodes[0].closed, std::vector<uint64_t>{refusing});
  h.run_for(ConnModel{}.connect_timeout);
  EXPECT_EQ(h.nodes[0].closed, (std::vector<uint64_t>{refusing, dead, nobody}));
  EXPECT_EQ(h.stats_.conns_failed, 3u);
  EXPECT_TRUE(h.nodes[0].opened.empty());
  EXPECT_EQ(h.conns.count(0), 0u);
}
