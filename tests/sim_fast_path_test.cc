// The streams' TCP fast path in the simulator (ConnModel, src/sim/sim_conn.h): a stream over simulated byte
// connections arrives bit-exact; a connection reset or a partition mid-stream is survived (the stream goes
// on over datagrams, then over a new connection), bytes exact; a stranger sending garbage on a connection is
// dropped and counted; refused and unroutable connects leave streams on datagrams; a seed replays bit for
// bit with the fast path on. (The framing decoder itself is fuzzed by fuzz/links_fuzz.cc.)
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "sim/rng.h"
#include "storjnet/simulator.h"
#include "storjnet/streams.h"
#include "streams/links.h"

using namespace storjnet;
using namespace std::chrono_literals;

namespace {

SimConfig fast(uint64_t seed) {
  SimConfig c;
  c.seed = seed;
  c.conns.enabled = true;
  return c;
}

// Adds n nodes that know each other's contacts.
void populate(Simulator& sim, size_t n) {
  for (size_t i = 0; i < n; ++i) sim.add_node();
  for (size_t i = 0; i < sim.size(); ++i)
    for (size_t j = 0; j < sim.size(); ++j)
      if (i != j) sim.node(i).streams().remember(sim.contact(j));
}

Bytes pattern(size_t n, uint64_t seed) {
  Bytes b(n);
  sim::Rng rng(seed);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t w = rng.next();
    std::memcpy(b.data() + i, &w, std::min<size_t>(8, n - i));
  }
  return b;
}

std::optional<StreamId> open(Simulator& sim, size_t from, size_t to) {
  std::optional<StreamId> got;
  bool done = false;
  sim.node(from).streams().open(sim.contact(to).id, [&](std::optional<StreamId> id) { got = id, done = true; });
  sim.run_until([&] { return done; }, 10s);
  return got;
}

// A stream whose opener reaches the peer over a connection (nullopt if it does not within 5 s).
std::optional<StreamId> open_fast(Simulator& sim, size_t from, size_t to) {
  auto id = open(sim, from, to);
  if (!id || !sim.run_until([&] { return sim.node(from).streams().fast_path(*id); }, 5s)) return std::nullopt;
  return id;
}

// Node `from` writes `data` on `id` as fast as the window allows; node `to` reads as bytes arrive.
struct Transfer {
  Transfer(Simulator& s, size_t f, size_t t, const StreamId& i, const Bytes& d) : sim(s), from(f), to(t), id(i), data(d) {}
  // The simulator outlives a Transfer declared after it: a write still unacknowledged when the simulator goes
  // completes then (with nullopt), after this Transfer is gone.
  ~Transfer() { *alive = false; }
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  Simulator& sim;
  size_t from, to;
  StreamId id;
  const Bytes& data;
  size_t sent = 0;
  bool failed = false;
  Bytes got;

  void write_more() {
    Streams& st = sim.node(from).streams();
    while (sent < data.size() && !failed) {
      size_t n = std::min<size_t>({256 * 1024, data.size() - sent, st.writable(id)});
      if (n == 0) return st.on_writable(id, [this, alive = alive] { if (*alive) write_more(); });
      st.write(id, ByteView(data).subspan(sent, n), [this, n, alive = alive](std::optional<size_t> r) {
        if (*alive && r != n) failed = true;
      });
      sent += n;
    }
  }
  void read_more() {
    sim.node(to).streams().on_readable(id, [this, alive = alive] {
      if (!*alive) return;
      auto r = sim.node(to).streams().read(id, std::nullopt);
      if (!r) return;
      got.insert(got.end(), r->begin(), r->end());
      if (got.size() < data.size()) read_more();
    });
  }
  void start() {
    started = true;
    read_more();
    write_more();
  }
  bool done() const { return got.size() >= data.size() || failed; }
  // Starts (once) and runs the simulator until `until` bytes arrived (all by default) or the stream failed.
  bool run(Duration limit, size_t until = SIZE_MAX) {
    if (!started) start();
    until = std::min(until, data.size());
    return sim.run_until([&] { return got.size() >= until || failed; }, limit) && !failed;
  }
  bool started = false;
};

}  // namespace

TEST(SimFastPath, OneMiBArrivesBitExactOverTheConnection) {
  Simulator sim(fast(1));
  populate(sim, 2);
  auto id = open_fast(sim, 0, 1);
  ASSERT_TRUE(id);
  Bytes data = pattern(1 << 20, 3);
  Transfer t{sim, 0, 1, *id, data};
  ASSERT_TRUE(t.run(60s));
  EXPECT_FALSE(t.failed);
  EXPECT_TRUE(t.got == data);
  // Every byte went over the connection, none as a stream_write datagram.
  auto fp = sim.node(0).streams().fast_path_stats();
  EXPECT_EQ(fp.bytes_sent, data.size());
  EXPECT_EQ(sim.node(1).streams().fast_path_stats().bytes_received, data.size());
  EXPECT_EQ(fp.links_up, 1u);
  EXPECT_EQ(fp.bad_records, 0u);
  // The writes were sealed straight from the writer's bytes (at most 128 KiB a record), none copied first.
  EXPECT_GE(fp.records_sealed_at_write, data.size() / streams::Links::kMaxData);
  EXPECT_GT(sim.stats().conn_bytes, data.size());  // records: headers and tags on top
  EXPECT_EQ(sim.stats().conns_opened, 1u);
  EXPECT_EQ(sim.conns(0), 1u);
  EXPECT_EQ(sim.conns(1), 1u);
}

// The connection is reset with 1 MiB of 4 delivered: the unacknowledged records go again as datagrams, the
// stream goes on, and after the retry pause the fast path comes back.
TEST(SimFastPath, ResetMidStreamFallsBackToDatagramsAndReconnects) {
  Simulator sim(fast(2));
  populate(sim, 2);
  auto id = open_fast(sim, 0, 1);
  ASSERT_TRUE(id);
  Bytes data = pattern(4 << 20, 4);
  Transfer t{sim, 0, 1, *id, data};
  ASSERT_TRUE(t.run(60s, 1 << 20));
  uint64_t over_conn = sim.node(0).streams().fast_path_stats().bytes_sent;
  EXPECT_EQ(sim.reset_conns(0), 1u);
  ASSERT_TRUE(sim.run_until([&] { return !sim.node(0).streams().fast_path(*id); }, 1s));
  EXPECT_EQ(sim.stats().conns_reset, 1u);
  ASSERT_TRUE(t.run(300s));
  EXPECT_FALSE(t.failed);
  EXPECT_TRUE(t.got == data);
  auto fp = sim.node(0).streams().fast_path_stats();
  EXPECT_EQ(fp.links_failed, 1u);
  EXPECT_LT(fp.bytes_sent, data.size());  // the rest went as datagrams
  EXPECT_EQ(sim.node(1).streams().fast_path_stats().bad_records, 0u);
  // After the retry pause the open stream's sweep connects again, and more data takes the new connection.
  ASSERT_TRUE(sim.run_until([&] { return sim.node(0).streams().fast_path(*id); }, 30s));
  EXPECT_EQ(sim.node(0).streams().fast_path_stats().links_up, 2u);
  Bytes more = pattern(1 << 20, 5);
  Transfer t2{sim, 0, 1, *id, more};
  ASSERT_TRUE(t2.run(60s));
  EXPECT_TRUE(t2.got == more);
  EXPECT_EQ(sim.node(0).streams().fast_path_stats().bytes_sent, fp.bytes_sent + more.size());
  EXPECT_GE(fp.bytes_sent, over_conn);
}

// A partition cuts the connection (reset after cut_timeout) and the datagrams; once healed the stream goes on.
TEST(SimFastPath, PartitionResetsTheConnectionAndTheStreamSurvives) {
  Simulator sim(fast(3));
  populate(sim, 3);
  auto id = open_fast(sim, 0, 1);
  ASSERT_TRUE(id);
  Bytes data = pattern(3 << 20, 5);
  Transfer t{sim, 0, 1, *id, data};
  ASSERT_TRUE(t.run(60s, 1 << 20));
  sim.partition({0, 1, 0});
  sim.run_for(5s);
  EXPECT_FALSE(sim.node(0).streams().fast_path(*id));
  EXPECT_EQ(sim.stats().conns_reset, 1u);
  EXPECT_EQ(sim.conns(0), 0u);
  EXPECT_EQ(sim.conns(1), 0u);
  sim.heal();
  ASSERT_TRUE(t.run(300s));
  EXPECT_FALSE(t.failed);
  EXPECT_TRUE(t.got == data);
}

// A stranger connects and sends garbage: the node closes that connection, counts it, and its own streams
// keep their fast path.
TEST(SimFastPath, GarbageOnAConnectionIsDroppedAndCounted) {
  Simulator sim(fast(4));
  populate(sim, 2);
  uint64_t closed_before = sim.stats().conns_closed;
  sim.inject_conn(*Endpoint::parse("192.0.2.7:5555"), 1, pattern(300, 6));
  sim.run_for(1s);
  auto fp = sim.node(1).streams().fast_path_stats();
  EXPECT_EQ(fp.bad_records, 1u);
  EXPECT_EQ(fp.links_failed, 1u);
  EXPECT_EQ(fp.links_up, 0u);
  EXPECT_EQ(sim.conns(1), 0u);
  EXPECT_EQ(sim.stats().conns_closed, closed_before + 1);  // the stranger saw the node close it

  auto id = open_fast(sim, 0, 1);
  ASSERT_TRUE(id);
  Bytes data = pattern(200000, 7);
  Transfer t{sim, 0, 1, *id, data};
  ASSERT_TRUE(t.run(60s));
  EXPECT_TRUE(t.got == data);
  EXPECT_EQ(sim.node(1).streams().fast_path_stats().bad_records, 1u);
}

// A refusing node and a NATed node (no port forwarding) take no connection: streams to them use datagrams.
TEST(SimFastPath, RefusedAndUnroutableConnectsLeaveStreamsOnDatagrams) {
  Simulator sim(fast(5));
  populate(sim, 3);
  sim.put_behind(2, sim.add_router(NatModel{NatModel::Type::kFullCone}));
  sim.refuse_conns(1);
  for (size_t to : {1, 2}) {
    SCOPED_TRACE("to node " + std::to_string(to));
    auto id = open(sim, 0, to);
    if (to == 2) {
      // Its private address is unroutable: nothing to open the stream with (UDP cannot reach it either).
      EXPECT_FALSE(id);
      continue;
    }
    ASSERT_TRUE(id);
    Bytes data = pattern(100000, to);
    Transfer t{sim, 0, to, *id, data};
    ASSERT_TRUE(t.run(60s));
    EXPECT_TRUE(t.got == data);
    EXPECT_FALSE(sim.node(0).streams().fast_path(*id));
  }
  EXPECT_EQ(sim.node(0).streams().fast_path_stats().links_up, 0u);
  EXPECT_EQ(sim.node(0).streams().fast_path_stats().bytes_sent, 0u);
  EXPECT_GE(sim.stats().conns_failed, 1u);
  EXPECT_EQ(sim.stats().conns_opened, 0u);
  // A NATed node's own connections go out through its router.
  auto id = open(sim, 2, 0);
  ASSERT_TRUE(id);
  EXPECT_TRUE(sim.run_until([&] { return sim.node(2).streams().fast_path(*id); }, 5s));
}

// The same seed gives the same run with connections in it (their events are in the trace hash); turning
// the fast path on changes the run.
TEST(SimFastPath, ASeedReplaysBitForBitWithTheFastPathOn) {
  auto run = [](SimConfig cfg) {
    cfg.link.jitter = 10ms;
    cfg.link.loss = 0.02;
    Simulator sim(cfg);
    populate(sim, 4);
    Bytes data = pattern(1 << 20, 8);
    std::vector<std::unique_ptr<Transfer>> ts;
    for (size_t i = 0; i < 4; ++i) {
      auto id = open(sim, i, (i + 1) % 4);
      EXPECT_TRUE(id);
      if (!id) continue;
      ts.push_back(std::make_unique<Transfer>(sim, i, (i + 1) % 4, *id, data));
      ts.back()->start();
    }
    sim.run_for(2s);
    sim.reset_conns(2);
    sim.run_until([&] { return std::all_of(ts.begin(), ts.end(), [](auto& t) { return t->done(); }); }, 300s);
    for (auto& t : ts) EXPECT_TRUE(t->got == data);
    return std::tuple{sim.trace_hash(), sim.stats().conn_bytes, sim.stats().events};
  };
  auto a = run(fast(9)), b = run(fast(9));
  EXPECT_EQ(a, b);
  EXPECT_GT(std::get<1>(a), 0u);  // (the writes start before the links are up: the first window goes as datagrams)
  SimConfig off = fast(9);
  off.conns.enabled = false;
  auto c = run(off);
  EXPECT_NE(std::get<0>(c), std::get<0>(a));
  EXPECT_EQ(std::get<1>(c), 0u);
}
