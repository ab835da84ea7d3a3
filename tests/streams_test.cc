// Streams: semantics under the simulator (including loss, duplication and reordering) and over real
// sockets with several nodes in one RealDriver.
#include <gtest/gtest.h>
#include <sodium.h>

#include <future>

#include "engine/engine.h"
#include "node/node_internals.h"
#include "sim/network_builder.h"
#include "storjnet/real_driver.h"
#include "storjnet/simulator.h"
#include "streams/codec.h"
#include "streams/recv_buffer.h"

using namespace storjnet;

namespace {
void introduce(Simulator& sim) {
  for (size_t i = 0; i < sim.size(); ++i)
    for (size_t j = 0; j < sim.size(); ++j)
      if (i != j) sim.node(i).streams().remember(sim.contact(j));
}

std::optional<StreamId> open_sync(Simulator& sim, size_t from, size_t to, Duration limit = 10s) {
  std::optional<StreamId> got;
  bool done = false;
  sim.node(from).streams().open(sim.contact(to).id, [&](std::optional<StreamId> id) { got = id, done = true; });
  sim.run_until([&] { return done; }, limit);
  return got;
}

std::optional<size_t> write_sync(Simulator& sim, size_t node, const StreamId& id, ByteView data) {
  std::optional<size_t> got;
  bool done = false;
  sim.node(node).streams().write(id, data, [&](std::optional<size_t> n) { got = n, done = true; });
  sim.run_until([&] { return done; }, 30s);
  EXPECT_TRUE(done);
  return got;
}

bool close_sync(Simulator& sim, size_t node, const StreamId& id) {
  std::optional<bool> got;
  sim.node(node).streams().close(id, [&](bool ok) { got = ok; });
  sim.run_until([&] { return got.has_value(); }, 30s);
  return got.value_or(false);
}

Bytes pattern(size_t n, uint32_t seed) {
  Bytes b(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& c : b) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<uint8_t>(x);
  }
  return b;
}

std::string hash(ByteView b) {
  std::array<uint8_t, 32> h;
  crypto_generichash(h.data(), h.size(), b.data(), b.size(), nullptr, 0);
  return to_hex(h);
}

// Writes all of `data`, waiting for credit whenever the peer's buffer is full.
struct Writer {
  Streams& st;
  StreamId id;
  ByteView data;
  size_t off = 0;
  bool done = false, failed = false;
  void go() {
    if (off == data.size()) {
      done = true;
      return;
    }
    st.write(id, data.subspan(off, std::min<size_t>(data.size() - off, 256 * 1024)), [this](std::optional<size_t> n) {
      if (!n) {
        failed = true;
        return;
      }
      off += *n;
      if (*n == 0) st.on_writable(id, [this] { go(); });
      else go();
    });
  }
};
}  // namespace

TEST(StreamsCodec, RoundTripsAndRejectsBadSizes) {
  StreamId id;
  id.fill(7);
  auto o = streams::decode_open(streams::encode_open({id, 1234}));
  ASSERT_TRUE(o);
  EXPECT_EQ(o->id, id);
  EXPECT_EQ(o->window, 1234u);
  Bytes data = pattern(100, 1);
  Bytes encoded = streams::encode_data(id, 99, data);  // the decoded view points into it
  auto d = streams::decode_data(encoded);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->offset, 99u);
  EXPECT_TRUE(std::equal(d->data.begin(), d->data.end(), data.begin(), data.end()));
  EXPECT_FALSE(streams::decode_data(streams::encode_data(id, 0, pattern(streams::kMaxChunk + 1, 2))));
  EXPECT_FALSE(streams::decode_data(Bytes(39)));
  EXPECT_FALSE(streams::decode_open(Bytes(35)));
  EXPECT_FALSE(streams::decode_close(Bytes(33)));
  EXPECT_EQ(streams::decode_ack(streams::encode_ack({5, 6}))->limit, 6u);
  EXPECT_FALSE(streams::decode_window(Bytes(41)));
}

TEST(StreamsRecvBuffer, ReordersTrimsDuplicatesAndBoundsTheWindow) {
  streams::RecvBuffer rb(10);
  Bytes d = pattern(10, 3);
  EXPECT_EQ(rb.add(4, ByteView(d).subspan(4, 3)), streams::RecvBuffer::Add::kOk);  // ahead of a gap
  EXPECT_EQ(rb.unread(), 0u);
  EXPECT_EQ(rb.add(0, ByteView(d).first(5)), streams::RecvBuffer::Add::kOk);  // overlaps the held chunk
  EXPECT_EQ(rb.unread(), 7u);
  EXPECT_EQ(rb.add(0, ByteView(d).first(5)), streams::RecvBuffer::Add::kOk);  // duplicate
  EXPECT_EQ(rb.add(7, ByteView(d).subspan(7, 3)), streams::RecvBuffer::Add::kOk);
  EXPECT_EQ(rb.add(10, ByteView(d).first(1)), streams::RecvBuffer::Add::kBeyondWindow);
  EXPECT_EQ(rb.read(4), Bytes(d.begin(), d.begin() + 4));
  EXPECT_EQ(rb.limit(), 14u);
  EXPECT_EQ(rb.read(std::nullopt), Bytes(d.begin() + 4, d.end()));
  EXPECT_EQ(rb.unread(), 0u);
}

// The owning add keeps the caller's buffer when it continues the run, and a read of exactly one whole chunk
// hands it back without a copy; anything else behaves as the copying add.
TEST(StreamsRecvBuffer, OwningAddAndWholeChunkReadsMoveBuffers) {
  streams::RecvBuffer rb(16);
  Bytes d = pattern(16, 5);
  Bytes first(d.begin(), d.begin() + 6);
  const uint8_t* kept = first.data();
  EXPECT_EQ(rb.add(0, std::move(first)), streams::RecvBuffer::Add::kOk);
  Bytes ahead(d.begin() + 10, d.end());
  EXPECT_EQ(rb.add(10, std::move(ahead)), streams::RecvBuffer::Add::kOk);  // ahead of a gap: held
  EXPECT_EQ(rb.unread(), 6u);
  Bytes out = rb.read(std::nullopt);
  EXPECT_EQ(out.data(), kept);  // the same buffer, not a copy
  EXPECT_EQ(out, Bytes(d.begin(), d.begin() + 6));
  EXPECT_EQ(rb.add(6, Bytes(d.begin() + 6, d.begin() + 10)), streams::RecvBuffer::Add::kOk);  // fills the gap
  EXPECT_EQ(rb.unread(), 10u);
  EXPECT_EQ(rb.add(16, Bytes(20, 1)), streams::RecvBuffer::Add::kBeyondWindow);
  EXPECT_EQ(rb.read(std::nullopt), Bytes(d.begin() + 6, d.end()));
}

// A read that joins several chunks copies them out; their buffers go to `spent` for reuse (the fast path
// decrypts the next records into them). A chunk handed over whole, or only partly read, is not spent.
TEST(StreamsRecvBuffer, ChunksCopiedOutWholeAreSpentForReuse) {
  streams::RecvBuffer rb(64);
  Bytes d = pattern(30, 9);
  Bytes a(d.begin(), d.begin() + 10), b(d.begin() + 10, d.begin() + 20), c(d.begin() + 20, d.end());
  const uint8_t* a_at = a.data();
  const uint8_t* b_at = b.data();
  rb.add(0, std::move(a));
  rb.add(10, std::move(b));
  rb.add(20, std::move(c));
  std::vector<Bytes> spent;
  EXPECT_EQ(rb.read(25, &spent), Bytes(d.begin(), d.begin() + 25));
  ASSERT_EQ(spent.size(), 2u);  // the third is only half read
  EXPECT_EQ(spent[0].data(), a_at);
  EXPECT_EQ(spent[1].data(), b_at);
  spent.clear();
  EXPECT_EQ(rb.read(std::nullopt, &spent), Bytes(d.begin() + 25, d.end()));
  EXPECT_EQ(spent.size(), 1u);
  rb.add(30, Bytes(d.begin(), d.begin() + 5));
  spent.clear();
  EXPECT_EQ(rb.read(std::nullopt, &spent), Bytes(d.begin(), d.begin() + 5));  // whole: handed over
  EXPECT_TRUE(spent.empty());
}

TEST(Streams, OpenWriteReadCloseSemantics) {
  Simulator sim;
  for (int i = 0; i < 3; ++i) sim.add_node();
  introduce(sim);
  auto id = open_sync(sim, 0, 1);
  ASSERT_TRUE(id);
  auto l0 = sim.node(0).streams().list(), l1 = sim.node(1).streams().list();
  ASSERT_EQ(l0.count(*id), 1u);
  ASSERT_EQ(l1.count(*id), 1u);  // the same id at both ends
  EXPECT_EQ(l0[*id].peer, sim.contact(1).id);
  EXPECT_EQ(l1[*id].peer, sim.contact(0).id);
  EXPECT_EQ(write_sync(sim, 0, *id, as_bytes("hello")), 5u);
  // The write completed, so the bytes are already in the peer's buffer.
  EXPECT_EQ(sim.node(1).streams().list()[*id].unread, 5u);
  EXPECT_EQ(sim.node(1).streams().read(*id, 2), Bytes({'h', 'e'}));
  EXPECT_EQ(sim.node(1).streams().read(*id, std::nullopt), Bytes({'l', 'l', 'o'}));
  EXPECT_EQ(sim.node(1).streams().read(*id, std::nullopt), Bytes{});  // empty, not null
  // Both ends write.
  EXPECT_EQ(write_sync(sim, 1, *id, as_bytes("back")), 4u);
  EXPECT_EQ(write_sync(sim, 1, *id, as_bytes("!")), 1u);
  EXPECT_EQ(write_sync(sim, 0, *id, as_bytes("unread")), 6u);
  EXPECT_EQ(sim.node(0).streams().read(*id, std::nullopt), Bytes({'b', 'a', 'c', 'k', '!'}));
  // Unknown ids.
  StreamId bogus{};
  EXPECT_FALSE(sim.node(0).streams().read(bogus, std::nullopt));
  EXPECT_EQ(write_sync(sim, 0, bogus, as_bytes("x")), std::nullopt);
  EXPECT_FALSE(close_sync(sim, 0, bogus));
  // A third node cannot use someone else's stream id.
  EXPECT_EQ(write_sync(sim, 2, *id, as_bytes("x")), std::nullopt);
  // Close from the opener: true once the peer saw it.
  EXPECT_TRUE(close_sync(sim, 0, *id));
  EXPECT_FALSE(sim.node(0).streams().read(*id, std::nullopt));
  EXPECT_EQ(write_sync(sim, 0, *id, as_bytes("x")), std::nullopt);
  EXPECT_FALSE(close_sync(sim, 0, *id));
  EXPECT_TRUE(sim.node(0).streams().list().empty());
  // The peer: writes null, reads the bytes still buffered, then null.
  EXPECT_EQ(write_sync(sim, 1, *id, as_bytes("x")), std::nullopt);
  EXPECT_EQ(sim.node(1).streams().read(*id, 3), Bytes({'u', 'n', 'r'}));
  EXPECT_EQ(sim.node(1).streams().read(*id, std::nullopt), Bytes({'e', 'a', 'd'}));
  EXPECT_FALSE(sim.node(1).streams().read(*id, std::nullopt));
  EXPECT_TRUE(sim.node(1).streams().list().empty());
  // The acceptor can close too; closing an already peer-closed stream is still "was open".
  auto id2 = open_sync(sim, 2, 1);
  ASSERT_TRUE(id2);
  EXPECT_TRUE(close_sync(sim, 1, *id2));
  EXPECT_FALSE(sim.node(2).streams().read(*id2, std::nullopt));
  EXPECT_TRUE(sim.node(2).streams().list().empty());
}

TEST(Streams, BoundedReceiveBufferGivesShortWritesAndBackPressure) {
  SimConfig cfg;
  cfg.node.streams.receive_buffer = 100 * 1024;
  Simulator sim(cfg);
  sim.add_node();
  sim.add_node();
  introduce(sim);
  auto id = open_sync(sim, 0, 1);
  ASSERT_TRUE(id);
  Bytes big = pattern(150 * 1024, 4);
  EXPECT_EQ(write_sync(sim, 0, *id, big), 100u * 1024);  // short count
  EXPECT_EQ(write_sync(sim, 0, *id, big), 0u);           // full
  bool writable = false;
  sim.node(0).streams().on_writable(*id, [&] { writable = true; });
  sim.run_for(2s);
  EXPECT_FALSE(writable);  // a reader that never reads: the writer waits, nothing grows
  auto first = sim.node(1).streams().read(*id, 60 * 1024);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), 60u * 1024);
  sim.run_until([&] { return writable; }, 5s);
  EXPECT_TRUE(writable);
  EXPECT_EQ(write_sync(sim, 0, *id, ByteView(big).subspan(100 * 1024)), 50u * 1024);
  auto rest = sim.node(1).streams().read(*id, std::nullopt);
  ASSERT_TRUE(rest);
  first->insert(first->end(), rest->begin(), rest->end());
  EXPECT_EQ(*first, big);
}

TEST(Streams, OpenFloodIsCappedPerPeerAndFiveHundredTwelveStreamsFit) {
  SimConfig cfg;
  cfg.node.streams.max_streams_per_prefix = 1024;  // the simulator puts nodes 0..255 in one /24
  Simulator sim(cfg);
  for (int i = 0; i < 3; ++i) sim.add_node();
  introduce(sim);
  // Node 1 accepts 256 from node 0 and 256 from node 2: 512 streams, each listed at both ends.
  std::vector<std::pair<size_t, std::optional<StreamId>>> got;
  for (size_t from : {0, 2})
    for (int k = 0; k < 256; ++k)
      sim.node(from).streams().open(sim.contact(1).id, [&got, from](auto id) { got.emplace_back(from, id); });
  sim.run_until([&] { return got.size() == 512; }, 20s);
  ASSERT_EQ(got.size(), 512u);
  for (auto& g : got) EXPECT_TRUE(g.second);
  EXPECT_EQ(sim.node(1).streams().list().size(), 512u);
  EXPECT_EQ(sim.node(0).streams().list().size(), 256u);
  // One more from node 0 is over its per-peer cap.
  EXPECT_FALSE(open_sync(sim, 0, 1));
  EXPECT_EQ(sim.node(1).streams().list().size(), 512u);
  // Every stream works.
  size_t written = 0;
  for (auto& [from, id] : got)
    sim.node(from).streams().write(*id, as_bytes("x"), [&](auto n) { written += n.value_or(0); });
  sim.run_until([&] { return written == 512; }, 20s);
  EXPECT_EQ(written, 512u);
}

TEST(Streams, UnreachableAndVanishedPeersAreBounded) {
  SimConfig cfg;
  cfg.node.streams.idle_timeout = 3s;
  cfg.node.streams.open_timeout = 2s;
  cfg.node.streams.close_timeout = 1s;
  Simulator sim(cfg);
  for (int i = 0; i < 3; ++i) sim.add_node();
  introduce(sim);
  TimePoint t0 = sim.now();
  EXPECT_FALSE(open_sync(sim, 0, 0));  // ourselves
  bool done = false;
  sim.node(0).streams().open(NodeId::hash_of(as_bytes("nobody")), [&](auto id) {
    EXPECT_FALSE(id);
    done = true;
  });
  sim.run_until([&] { return done; }, 10s);
  EXPECT_TRUE(done);
  auto id = open_sync(sim, 0, 1);
  auto id2 = open_sync(sim, 0, 2);
  ASSERT_TRUE(id && id2);
  EXPECT_EQ(write_sync(sim, 2, *id2, as_bytes("left behind")), 11u);
  sim.kill(1);
  sim.kill(2);
  t0 = sim.now();
  EXPECT_FALSE(open_sync(sim, 0, 1));
  EXPECT_LE(sim.now() - t0, 2s + 100ms);
  // No traffic from the dead peers: their streams close after the idle timeout; buffered bytes stay readable.
  sim.run_for(4s);
  EXPECT_FALSE(sim.node(0).streams().read(*id, std::nullopt));
  EXPECT_EQ(write_sync(sim, 0, *id2, as_bytes("x")), std::nullopt);
  EXPECT_EQ(sim.node(0).streams().read(*id2, std::nullopt), Bytes(as_bytes("left behind").begin(), as_bytes("left behind").end()));
  EXPECT_FALSE(sim.node(0).streams().read(*id2, std::nullopt));
  // Closing toward a dead peer returns after the close timeout.
  sim.restart(1, cfg.node);
  sim.node(1).streams().remember(sim.contact(0));
  sim.node(0).streams().remember(sim.contact(1));
  auto id3 = open_sync(sim, 0, 1);
  ASSERT_TRUE(id3);
  sim.kill(1);
  t0 = sim.now();
  EXPECT_TRUE(close_sync(sim, 0, *id3));
  EXPECT_LE(sim.now() - t0, 1s + 100ms);
  EXPECT_TRUE(sim.node(0).streams().list().empty());
}

TEST(Streams, SixteenMiBBitExactUnderLossDuplicationReordering) {
  SimConfig cfg;
  cfg.seed = 21;
  cfg.link.loss = 0.05;
  cfg.link.duplicate = 0.05;
  cfg.link.jitter = 20ms;
  Simulator sim(cfg);
  sim.add_node();
  sim.add_node();
  introduce(sim);
  auto id = open_sync(sim, 0, 1, 30s);
  ASSERT_TRUE(id);
  Bytes data = pattern(16 << 20, 9);
  Writer w{sim.node(0).streams(), *id, data};
  w.go();
  Bytes got;
  got.reserve(data.size());
  sim.run_until([&] {
    auto r = sim.node(1).streams().read(*id, std::nullopt);
    if (r) got.insert(got.end(), r->begin(), r->end());
    return got.size() == data.size() || w.failed;
  }, 600s);
  EXPECT_FALSE(w.failed);
  EXPECT_EQ(got.size(), data.size());
  EXPECT_EQ(hash(got), hash(data));
  EXPECT_GT(sim.stats().lost, 0u);
  EXPECT_GT(sim.stats().duplicated, 0u);
  EXPECT_TRUE(close_sync(sim, 0, *id));
}

TEST(Streams, RealSocketsSeveralNodes) {
  RealDriver driver;
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  std::vector<Node*> nodes;
  for (int i = 0; i < 3; ++i) nodes.push_back(&driver.add_node(lo, Identity::generate()));
  driver.call([&] {
    for (auto* a : nodes)
      for (auto* b : nodes)
        if (a != b) a->streams().remember(Contact{b->id(), b->public_key(), driver.local_endpoint(*b)});
  });
  auto open = [&](size_t from, size_t to) {
    std::promise<std::optional<StreamId>> p;
    driver.post([&] { nodes[from]->streams().open(nodes[to]->id(), [&p](auto id) { p.set_value(id); }); });
    return p.get_future().get();
  };
  auto write = [&](size_t n, const StreamId& id, ByteView data) {
    std::promise<std::optional<size_t>> p;
    driver.post([&] { nodes[n]->streams().write(id, data, [&p](auto r) { p.set_value(r); }); });
    return p.get_future().get();
  };
  auto close = [&](size_t n, const StreamId& id) {
    std::promise<bool> p;
    driver.post([&] { nodes[n]->streams().close(id, [&p](bool ok) { p.set_value(ok); }); });
    return p.get_future().get();
  };
  auto read = [&](size_t n, const StreamId& id, std::optional<size_t> max = std::nullopt) {
    return driver.call([&] { return nodes[n]->streams().read(id, max); });
  };
  auto a = open(0, 1), b = open(2, 1);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(driver.call([&] { return nodes[1]->streams().list().size(); }), 2u);
  EXPECT_EQ(write(0, *a, as_bytes("ping")), 4u);
  EXPECT_EQ(read(1, *a), Bytes({'p', 'i', 'n', 'g'}));
  EXPECT_EQ(write(1, *b, as_bytes("to two")), 6u);
  EXPECT_EQ(read(2, *b, 2), Bytes({'t', 'o'}));
  // 4 MiB through a 1 MiB window, bit-exact.
  Bytes data = pattern(4 << 20, 5);
  std::promise<bool> sent;
  Bytes got;
  std::promise<void> received;
  auto writer = std::make_shared<Writer>(Writer{nodes[0]->streams(), *a, data});
  std::function<void()> poll;
  driver.post([&] {
    writer->go();
    poll = [&] {
      auto r = nodes[1]->streams().read(*a, std::nullopt);
      if (r) got.insert(got.end(), r->begin(), r->end());
      if (got.size() >= data.size() || writer->failed) return received.set_value();
      NodeInternals::engine(*nodes[1]).schedule(1ms, poll);
    };
    poll();
  });
  received.get_future().wait();
  EXPECT_FALSE(writer->failed);
  EXPECT_EQ(hash(got), hash(data));
  EXPECT_TRUE(close(0, *a));
  EXPECT_FALSE(read(0, *a));
  EXPECT_EQ(write(1, *a, as_bytes("x")), std::nullopt);
  EXPECT_FALSE(read(1, *a));
  EXPECT_FALSE(close(0, *a));
  EXPECT_TRUE(close(2, *b));
  EXPECT_FALSE(read(1, *b));  // nothing was buffered on node 1's side
}

// Through the DHT: no contact is primed; the opener finds the peer by id.
TEST(Streams, OpensByIdThroughTheDht) {
  SimConfig cfg;
  cfg.seed = 4;
  Simulator sim(cfg);
  const size_t n = 30;
  for (size_t i = 0; i < n; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 4), n);
  auto id = open_sync(sim, 7, 22, 20s);
  ASSERT_TRUE(id);
  EXPECT_EQ(sim.node(22).streams().list()[*id].peer, sim.contact(7).id);
  EXPECT_EQ(write_sync(sim, 22, *id, as_bytes("found you")), 9u);
  EXPECT_EQ(sim.node(7).streams().read(*id, std::nullopt), Bytes(as_bytes("found you").begin(), as_bytes("found you").end()));
  TimePoint t0 = sim.now();
  bool done = false;
  sim.node(7).streams().open(NodeId::hash_of(as_bytes("absent")), [&](auto r) {
    EXPECT_FALSE(r);
    done = true;
  });
  sim.run_until([&] { return done; }, 20s);
  EXPECT_TRUE(done);
  EXPECT_LE(sim.now() - t0, 5s + 100ms);
}

// Real sockets, nothing primed: nodes join through the DHT, then message and stream by id.
TEST(Streams, RealSocketsByIdThroughTheDht) {
  RealDriver driver;
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  std::vector<Node*> nodes;
  for (int i = 0; i < 5; ++i) nodes.push_back(&driver.add_node(lo, Identity::generate()));
  Endpoint seed = driver.local_endpoint(*nodes[0]);
  for (size_t i = 1; i < nodes.size(); ++i) {
    std::promise<bool> p;
    driver.post([&] { nodes[i]->dht().bootstrap({seed}, [&p](bool ok) { p.set_value(ok); }); });
    ASSERT_TRUE(p.get_future().get());
  }
  std::promise<bool> sent;
  driver.post([&] { nodes[4]->messages().send(nodes[2]->id(), "[\"hi\"]", [&](bool ok) { sent.set_value(ok); }); });
  EXPECT_TRUE(sent.get_future().get());
  EXPECT_EQ(driver.call([&] { return nodes[2]->messages().take_all()[nodes[4]->id()]; }),
            std::vector<std::string>{"[\"hi\"]"});
  std::promise<std::optional<StreamId>> opened;
  driver.post([&] { nodes[3]->streams().open(nodes[1]->id(), [&](auto id) { opened.set_value(id); }); });
  auto id = opened.get_future().get();
  ASSERT_TRUE(id);
  std::promise<std::optional<size_t>> wrote;
  driver.post([&] { nodes[1]->streams().write(*id, as_bytes("abc"), [&](auto n) { wrote.set_value(n); }); });
  EXPECT_EQ(wrote.get_future().get(), 3u);
  EXPECT_EQ(driver.call([&] { return nodes[3]->streams().read(*id, std::nullopt); }), Bytes({'a', 'b', 'c'}));
  std::promise<bool> closed;
  driver.post([&] { nodes[1]->streams().close(*id, [&](bool ok) { closed.set_value(ok); }); });
  EXPECT_TRUE(closed.get_future().get());
  EXPECT_FALSE(driver.call([&] { return nodes[3]->streams().read(*id, std::nullopt); }));
}

TEST(Streams, CloseDeliversPendingWritesFirstAndARestartedPeerFailsWrites) {
  Simulator sim;
  sim.add_node();
  sim.add_node();
  introduce(sim);
  auto id = open_sync(sim, 0, 1);
  ASSERT_TRUE(id);
  Bytes data = pattern(512 * 1024, 8);
  std::optional<size_t> wrote;
  std::optional<bool> closed;
  sim.node(0).streams().write(*id, data, [&](auto n) { wrote = n; });
  sim.node(0).streams().close(*id, [&](bool ok) { closed = ok; });
  EXPECT_EQ(write_sync(sim, 0, *id, as_bytes("late")), std::nullopt);  // closing: new writes refused
  sim.run_until([&] { return wrote && closed; }, 10s);
  EXPECT_EQ(wrote, data.size());  // written before the close: delivered, then the close
  EXPECT_EQ(closed, true);
  EXPECT_EQ(sim.node(1).streams().read(*id, std::nullopt), data);
  EXPECT_FALSE(sim.node(1).streams().read(*id, std::nullopt));
  // The peer restarts and forgets its streams: our next write fails and the stream is gone.
  auto id2 = open_sync(sim, 0, 1);
  ASSERT_TRUE(id2);
  sim.restart(1, NodeConfig{});
  EXPECT_EQ(write_sync(sim, 0, *id2, as_bytes("x")), std::nullopt);
  EXPECT_FALSE(sim.node(0).streams().read(*id2, std::nullopt));
  EXPECT_TRUE(sim.node(0).streams().list().empty());
  bool called = false;
  sim.node(0).streams().on_writable(*id2, [&] { called = true; });  // unknown: runs at once
  EXPECT_TRUE(called);
}

// ------------------------------------------------------------------ budgets (docs/protocol.md 7, "Budgets")

TEST(StreamsRecvBuffer, TinyChunksAreChargedAndChunksAheadAreCapped) {
  streams::RecvBuffer rb(1 << 20, /*min_charge=*/1024, /*max_ahead=*/4);
  Bytes one{1};
  for (uint64_t off : {2, 4, 6, 8}) EXPECT_EQ(rb.add(off, one), streams::RecvBuffer::Add::kOk);
  EXPECT_EQ(rb.add(10, one), streams::RecvBuffer::Add::kTooManyAhead);
  EXPECT_EQ(rb.add(4, one), streams::RecvBuffer::Add::kOk);  // already held: not a new chunk
  EXPECT_EQ(rb.charged(), 4u * 1024);                         // four 1-byte chunks cost 1 KiB each
  EXPECT_EQ(rb.add(0, one), streams::RecvBuffer::Add::kOk);
  EXPECT_EQ(rb.charged(), 5u * 1024);
  EXPECT_EQ(rb.add(1, one), streams::RecvBuffer::Add::kOk);  // fills the gap: 2 is taken in, 4 is still ahead
  EXPECT_EQ(rb.ahead_chunks(), 3u);
  EXPECT_EQ(rb.add(10, one), streams::RecvBuffer::Add::kOk);
  rb.read(std::nullopt);
  EXPECT_EQ(rb.charged(), 4u * 1024);
  rb.drop_ahead();
  EXPECT_EQ(rb.charged(), 0u);
}

TEST(StreamsBudget, InboundStreamsAreCappedPerNetwork) {
  SimConfig cfg;
  cfg.node.streams.max_streams_per_prefix = 4;
  Simulator sim(cfg);
  for (int i = 0; i < 257; ++i) sim.add_node();  // 0..255 in 10.0.0.0/24, 256 in 10.0.1.0/24
  const size_t rx = 0, honest = 256;
  for (size_t i : {size_t(1), size_t(2), honest}) sim.node(i).streams().remember(sim.contact(rx));
  // Two keys from one /24: 4 streams between them, the rest refused.
  int opened = 0;
  for (size_t from : {1, 2})
    for (int k = 0; k < 3; ++k) opened += open_sync(sim, from, rx).has_value();
  EXPECT_EQ(opened, 4);
  EXPECT_EQ(sim.node(rx).streams().budget_stats().refused_prefix_streams, 2u);
  // A peer from another network still opens its streams.
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(open_sync(sim, honest, rx));
}

TEST(StreamsBudget, BufferedDataIsBoundedPerNetworkAndNodeAndFullBuffersOnlyDelayWriters) {
  SimConfig cfg;
  cfg.node.streams.receive_buffer = 64 * 1024;
  cfg.node.streams.max_buffered_per_prefix = 128 * 1024;
  cfg.node.streams.max_buffered = 160 * 1024;
  Simulator sim(cfg);
  for (int i = 0; i < 257; ++i) sim.add_node();
  const size_t rx = 0, attacker = 1, honest = 256;  // the attacker's /24 is 10.0.0.0, the honest peer's 10.0.1.0
  for (size_t i : {attacker, honest}) sim.node(i).streams().remember(sim.contact(rx));
  // The attacker fills four streams the receiving application never reads.
  std::vector<StreamId> flood;
  size_t flood_done = 0;
  Bytes junk = pattern(64 * 1024, 9);
  for (int k = 0; k < 4; ++k) {
    auto id = open_sync(sim, attacker, rx);
    ASSERT_TRUE(id);
    flood.push_back(*id);
    sim.node(attacker).streams().write(*id, junk, [&](auto) { ++flood_done; });
  }
  sim.run_for(3s);
  auto st = sim.node(rx).streams().budget_stats();
  EXPECT_LE(st.buffered, 128u * 1024);  // its network's share
  EXPECT_GT(st.refused_prefix_budget, 0u);
  EXPECT_EQ(flood_done, 2u);            // the other writes wait; their streams stay open
  // An honest peer from another network gets the rest of the node's budget at once...
  auto id = open_sync(sim, honest, rx);
  ASSERT_TRUE(id);
  Bytes data = pattern(64 * 1024, 10);
  std::optional<size_t> wrote;
  sim.node(honest).streams().write(*id, data, [&](auto n) { wrote = n; });
  sim.run_for(2s);
  st = sim.node(rx).streams().budget_stats();
  EXPECT_LE(st.buffered, 160u * 1024);
  EXPECT_GT(st.refused_node_budget, 0u);
  EXPECT_FALSE(wrote);  // half of it is refused while the node is full: the writer retries, not fails
  // ...and the rest once the receiver reads what it holds.
  Bytes got;
  sim.run_until([&] {
    for (auto& f : flood) sim.node(rx).streams().read(f, std::nullopt);
    if (auto part = sim.node(rx).streams().read(*id, std::nullopt)) got.insert(got.end(), part->begin(), part->end());
    return wrote.has_value() && got.size() == data.size();
  }, 10s);
  EXPECT_EQ(wrote, data.size());
  EXPECT_EQ(got, data);
  // The attacker's waiting writes complete too: refusals delayed them, nothing was lost.
  sim.run_until([&] {
    for (auto& f : flood) sim.node(rx).streams().read(f, std::nullopt);
    return flood_done == 4;
  }, 10s);
  EXPECT_EQ(sim.node(rx).streams().budget_stats().buffered, 0u);
  EXPECT_EQ(flood_done, 4u);
}
