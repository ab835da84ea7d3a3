// Streams fast path (docs/protocol.md 7.6) on real sockets: stream data over the encrypted TCP connection
// arrives bit-exact, write semantics and back-pressure hold, a killed connection falls back to the engine's
// UDP RPC, garbage on the TCP port closes that connection (counted) without harming the node, and a peer
// that sends but never reads is bounded by the driver's high-water mark. (The other bounds are attacked in
// virtual time in streams_links_test.cc.)
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/socket.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio.hpp>
#include <future>
#include <thread>

#include "crypto/session.h"
#include "storjnet/real_driver.h"
#include "streams/record_cipher.h"
#include "wire/datagram.h"

using namespace storjnet;

namespace {

struct Pair {
  RealDriver driver;
  Node* a;
  Node* b;
  explicit Pair(RealDriver::Options options = {}, NodeConfig config = {}) : driver(options) {
    auto lo = *Endpoint::parse("127.0.0.1:1");
    lo.port = 0;
    a = &driver.add_node(lo, Identity::generate(), config);
    b = &driver.add_node(lo, Identity::generate(), config);
    driver.call([&] {
      a->streams().remember(Contact{b->id(), b->public_key(), driver.local_endpoint(*b)});
      b->streams().remember(Contact{a->id(), a->public_key(), driver.local_endpoint(*a)});
    });
  }
  std::optional<StreamId> open() {
    std::promise<std::optional<StreamId>> p;
    driver.post([&] { a->streams().open(b->id(), [&p](auto id) { p.set_value(id); }); });
    return p.get_future().get();
  }
  std::optional<size_t> write(const StreamId& id, ByteView data) {
    std::promise<std::optional<size_t>> p;
    driver.post([&] { a->streams().write(id, data, [&p](auto r) { p.set_value(r); }); });
    return p.get_future().get();
  }
  std::optional<Bytes> read(const StreamId& id, std::optional<size_t> max = std::nullopt) {
    return driver.call([&] { return b->streams().read(id, max); });
  }
  // Up to 30 s: the link comes up in milliseconds, but a sanitizer build on two cores busy with the large
  // simulations once took over 3 s (the bound this had).
  bool wait_fast(const StreamId& id, bool want = true) {
    for (int i = 0; i < 3000; ++i) {
      if (driver.call([&] { return a->streams().fast_path(id); }) == want) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  // Writes all of `data` from a and reads on b as bytes arrive, all on the io thread: the writer keeps the
  // window full (writable(), on_writable), the reader drains on on_readable. Returns what b read (short
  // when the stream failed or 60 s passed).
  Bytes transfer(const StreamId& id, const Bytes& data, size_t piece = 300000) {
    Bytes got;
    size_t sent = 0;
    bool over = false;
    std::promise<void> done;
    auto finish = [&] {
      if (!over) over = true, done.set_value();
    };
    std::function<void()> write_more = [&] {
      while (sent < data.size() && !over) {
        size_t n = std::min({piece, data.size() - sent, a->streams().writable(id)});
        if (n == 0) return a->streams().on_writable(id, write_more);
        a->streams().write(id, ByteView(data).subspan(sent, n), [&, n](std::optional<size_t> r) {
          if (r != n) finish();
        });
        sent += n;
      }
    };
    std::function<void()> read_more = [&] {
      auto r = b->streams().read(id, std::nullopt);
      if (!r) return finish();
      got.insert(got.end(), r->begin(), r->end());
      if (got.size() >= data.size()) return finish();
      b->streams().on_readable(id, read_more);
    };
    driver.post([&] {
      b->streams().on_readable(id, read_more);
      write_more();
    });
    auto f = done.get_future();
    bool in_time = f.wait_for(60s) == std::future_status::ready;
    driver.call([&] { over = true; });  // late callbacks do nothing
    EXPECT_TRUE(in_time);
    return driver.call([&] { return got; });
  }
};

Bytes random_bytes(size_t n) {
  Bytes b(n);
  randombytes_buf(b.data(), b.size());
  return b;
}

// A raw TCP client on 127.0.0.1:`port`: sends `bytes` (may be empty), then reads until the node closes the
// connection. Returns what ended the reading (eof when the node closed it) and how long that took.
std::pair<boost::system::error_code, std::chrono::steady_clock::duration> raw_client(uint16_t port, const Bytes& bytes) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  auto t0 = std::chrono::steady_clock::now();
  if (!bytes.empty()) asio::write(s, asio::buffer(bytes));
  Bytes sink(4096);
  boost::system::error_code ec;
  while (!ec) s.read_some(asio::buffer(sink), ec);
  return {ec, std::chrono::steady_clock::now() - t0};
}

// After hostile connections, a stream from a to b still runs over the fast path, bit-exact.
void expect_streams_still_work(Pair& p) {
  auto id = p.open();
  ASSERT_TRUE(id);
  ASSERT_TRUE(p.wait_fast(*id));
  Bytes data = random_bytes(1 << 20);
  EXPECT_TRUE(p.transfer(*id, data) == data);
}

}  // namespace

TEST(StreamsTcp, DataOverFastPathArrivesBitExact) {
  Pair p;
  auto id = p.open();
  ASSERT_TRUE(id);
  ASSERT_TRUE(p.wait_fast(*id));
  Bytes data = random_bytes(8 << 20);
  Bytes got = p.transfer(*id, data);
  EXPECT_TRUE(got == data) << got.size() << " of " << data.size();
  auto sa = p.driver.call([&] { return p.a->streams().fast_path_stats(); });
  auto sb = p.driver.call([&] { return p.b->streams().fast_path_stats(); });
  EXPECT_GE(sa.links_up, 1u);
  EXPECT_GE(sb.links_up, 1u);
  EXPECT_GE(sa.bytes_sent, data.size() * 9 / 10);  // (a few bytes may go over UDP before the link is up)
  EXPECT_GE(sb.bytes_received, data.size() * 9 / 10);
  EXPECT_EQ(sa.bad_records + sb.bad_records, 0u);
  std::promise<bool> closed;
  p.driver.post([&] { p.a->streams().close(*id, [&](bool ok) { closed.set_value(ok); }); });
  EXPECT_TRUE(closed.get_future().get());
}

// A writer that keeps the window full stalls for credit at every window, with data in flight whose
// acknowledgements bring the credit: no stream_write datagram (a credit probe) goes out for that. (It used
// to go at every stall: a datagram round trip per window, a quarter of the records at 2 GiB.)
TEST(StreamsTcp, BusyFastPathSendsNoCreditProbes) {
  Pair p;
  auto id = p.open();
  ASSERT_TRUE(id);
  ASSERT_TRUE(p.wait_fast(*id));
  auto stream_writes = [&] {
    uint64_t n = 0;
    for (auto& m : p.driver.call([&] { return p.a->stats(); }).requests)
      if (m.method == "stream_write") n += m.out;
    return n;
  };
  uint64_t before = stream_writes();
  Bytes data = random_bytes(16 << 20);
  EXPECT_TRUE(p.transfer(*id, data) == data);
  EXPECT_LE(stream_writes() - before, 2u);  // none expected; the old behaviour sent dozens
}

TEST(StreamsTcp, WriteSemanticsAndBackPressure) {
  Pair p;
  auto id = p.open();
  ASSERT_TRUE(id);
  ASSERT_TRUE(p.wait_fast(*id));
  // The window is 1 MiB: a larger write is short, then a full window answers 0.
  Bytes big = random_bytes(1536 * 1024);
  auto n = p.write(*id, big);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1024u * 1024u);
  // The write completed: the peer holds the bytes.
  EXPECT_EQ(p.driver.call([&] { return p.b->streams().list().at(*id).unread; }), 1024u * 1024u);
  EXPECT_EQ(p.write(*id, ByteView(big).subspan(*n)), std::optional<size_t>(0));
  // Reading frees space; on_writable fires and the rest goes through.
  std::promise<void> writable;
  p.driver.post([&] { p.a->streams().on_writable(*id, [&] { writable.set_value(); }); });
  auto first = p.read(*id);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), 1024u * 1024u);
  ASSERT_EQ(writable.get_future().wait_for(5s), std::future_status::ready);
  auto m = p.write(*id, ByteView(big).subspan(*n));
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, big.size() - *n);
  auto rest = p.read(*id);
  ASSERT_TRUE(rest);
  first->insert(first->end(), rest->begin(), rest->end());
  EXPECT_TRUE(*first == big);
}

TEST(StreamsTcp, WritableAndOnReadableTrackTheWindowAndTheClose) {
  Pair p;
  auto id = p.open();
  ASSERT_TRUE(id);
  ASSERT_TRUE(p.wait_fast(*id));
  // writable() is the peer's window less what earlier writes took, at once (before they complete).
  EXPECT_EQ(p.driver.call([&] { return p.a->streams().writable(*id); }), 1024u * 1024u);
  std::promise<std::optional<size_t>> w;
  size_t left = p.driver.call([&] {
    p.a->streams().write(*id, Bytes(300000, 7), [&](auto n) { w.set_value(n); });
    return p.a->streams().writable(*id);
  });
  EXPECT_EQ(left, 1024u * 1024u - 300000u);
  EXPECT_EQ(w.get_future().get(), std::optional<size_t>(300000));
  // on_readable fires at once when bytes are buffered.
  std::promise<void> ready;
  p.driver.post([&] { p.b->streams().on_readable(*id, [&] { ready.set_value(); }); });
  EXPECT_EQ(ready.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_EQ(p.read(*id)->size(), 300000u);
  // Waiting on an empty stream: the peer's close wakes the reader, whose read then answers null.
  std::promise<void> woke;
  p.driver.post([&] { p.b->streams().on_readable(*id, [&] { woke.set_value(); }); });
  std::promise<bool> closed;
  p.driver.post([&] { p.a->streams().close(*id, [&](bool ok) { closed.set_value(ok); }); });
  EXPECT_TRUE(closed.get_future().get());
  EXPECT_EQ(woke.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(p.read(*id));
  EXPECT_EQ(p.driver.call([&] { return p.a->streams().writable(*id); }), 0u);
}

TEST(StreamsTcp, KilledConnectionFallsBackToUdp) {
  Pair p;
  auto id = p.open();
  ASSERT_TRUE(id);
  ASSERT_TRUE(p.wait_fast(*id));
  Bytes data = random_bytes(3 << 20);
  // Half over the fast path, then the connection dies; the rest (and anything unacknowledged) goes over UDP.
  Bytes got = p.transfer(*id, Bytes(data.begin(), data.begin() + (data.size() / 2)));
  EXPECT_GE(p.driver.drop_connections(*p.a), 1u);
  EXPECT_TRUE(p.wait_fast(*id, false));
  Bytes second(data.begin() + (data.size() / 2), data.end());
  Bytes got2 = p.transfer(*id, second);
  got.insert(got.end(), got2.begin(), got2.end());
  EXPECT_TRUE(got == data) << got.size() << " of " << data.size();
  EXPECT_GE(p.driver.call([&] { return p.a->streams().fast_path_stats().links_failed; }), 1u);
}

TEST(StreamsTcp, GarbageOnTheTcpPortClosesThatConnectionOnly) {
  Pair p;
  EXPECT_EQ(raw_client(p.driver.local_endpoint(*p.b).port, Bytes(200, 0x41)).first, boost::asio::error::eof);
  EXPECT_EQ(p.driver.call([&] { return p.b->streams().fast_path_stats().bad_records; }), 1u);
  expect_streams_still_work(p);
}

// A client that speaks the hello correctly but cannot seal records (it lacks the pair key), or announces
// a record longer than the limit: that connection is closed and counted; streams keep working.
TEST(StreamsTcp, UnauthenticatedAndOversizedRecordsCloseTheConnection) {
  Pair p;
  auto ep = p.driver.local_endpoint(*p.b);
  auto bad_records = [&] { return p.driver.call([&] { return p.b->streams().fast_path_stats().bad_records; }); };
  auto hello = [] {
    Bytes h{'S', 'J', 'T', '1'};
    Bytes rest(32 + 32, 0);
    auto pk = Identity::generate().public_key();
    std::copy(pk.begin(), pk.end(), rest.begin());
    h.insert(h.end(), rest.begin(), rest.end());
    h.push_back(2);  // AES-256-OCB
    return h;
  };
  Bytes forged = hello();  // a record of 100 random bytes under no key anyone holds
  forged.insert(forged.end(), {0, 0, 0, 100});
  Bytes junk = random_bytes(100);
  forged.insert(forged.end(), junk.begin(), junk.end());
  Bytes oversized = hello();
  oversized.insert(oversized.end(), {0x7f, 0xff, 0xff, 0xff});
  uint64_t expect = 0;
  for (const Bytes* msg : {&forged, &oversized}) {
    // The node answers with its own hello, then closes: reading reaches end of file.
    EXPECT_EQ(raw_client(ep.port, *msg).first, boost::asio::error::eof);
    EXPECT_EQ(bad_records(), ++expect);
  }
  expect_streams_still_work(p);
}

// A client that connects and never proves itself (no hello, or a hello and no record) is closed after the
// 5 s handshake limit, so idle connections cannot hold the node's 256 connection slots.
TEST(StreamsTcp, SilentConnectionsAreClosedAfterTheHandshakeLimit) {
  Pair p;
  auto [ec, waited] = raw_client(p.driver.local_endpoint(*p.b).port, {});
  EXPECT_EQ(ec, boost::asio::error::eof);
  EXPECT_GE(waited, 4s);
  EXPECT_LE(waited, 30s);
  EXPECT_EQ(p.driver.call([&] { return p.b->streams().fast_path_stats().handshake_timeouts; }), 1u);
}

namespace {

// A peer that speaks the fast path just far enough to be authenticated (hello, keys, ready record) over a
// blocking socket with a small receive buffer, then sends records and never reads.
struct NonReadingPeer {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s{io};
  Identity me = Identity::generate();
  std::unique_ptr<streams::RecordCipher> tx;

  NonReadingPeer(uint16_t port, const PublicKey& victim) {
    namespace asio = boost::asio;
    s.open(asio::ip::tcp::v4());
    int small = 4096;
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    timeval tv{2, 0};  // a write blocked this long: the victim stopped reading
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    std::array<uint8_t, 32> salt;
    randombytes_buf(salt.data(), salt.size());
    Bytes hello{'S', 'J', 'T', '1'};
    hello.insert(hello.end(), me.public_key().begin(), me.public_key().end());
    hello.insert(hello.end(), salt.begin(), salt.end());
    hello.push_back(2);  // AES-256-OCB: the connection then uses it whatever the node prefers
    asio::write(s, asio::buffer(hello));
    Bytes theirs(69);
    asio::read(s, asio::buffer(theirs));  // (their ready record stays unread, like everything after it)
    crypto::SessionKey pair;
    EXPECT_TRUE(crypto::derive_session_key(me, victim, pair, false));
    // Opener to acceptor: BLAKE2b-256(pair key || opener salt || acceptor salt || 1).
    streams::RecordCipher::Key key;
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, key.size());
    crypto_generichash_update(&st, pair.data(), pair.size());
    crypto_generichash_update(&st, salt.data(), salt.size());
    crypto_generichash_update(&st, theirs.data() + 36, 32);
    uint8_t dir = 1;
    crypto_generichash_update(&st, &dir, 1);
    crypto_generichash_final(&st, key.data(), key.size());
    tx = std::make_unique<streams::RecordCipher>(streams::RecordCipher::Suite::kAes256Ocb, key,
                                                 streams::RecordCipher::Direction::kSeal);
  }
  // A record: type, stream id byte, value, body.
  Bytes record(uint8_t type, uint8_t id, ByteView body) {
    uint8_t head[48] = {};
    head[0] = type;
    head[8] = id;
    size_t len = 48 + body.size() + streams::RecordCipher::kTagSize;
    Bytes out(4 + len);
    wire::put_u32(out.data(), static_cast<uint32_t>(len));
    tx->seal({ByteView(head, 48), body}, out.data() + 4);
    return out;
  }
  // Sends until a write stays blocked (the victim stopped reading) or `limit` bytes went; returns the bytes.
  size_t flood(size_t limit) {
    boost::system::error_code ec;
    boost::asio::write(s, boost::asio::buffer(record(5, 0, {})), ec);  // ready
    size_t sent = 0;
    uint8_t one = 1;
    while (!ec && sent < limit) {
      Bytes batch;
      for (int i = 0; i < 1000; ++i) {  // one-byte data records for streams the victim does not have
        Bytes r = record(1, uint8_t(i), ByteView(&one, 1));
        batch.insert(batch.end(), r.begin(), r.end());
      }
      sent += boost::asio::write(s, boost::asio::buffer(batch), ec);
    }
    return sent;
  }
};

}  // namespace

// Each record from this peer is answered (an error record), and it never reads the answers: past the
// high-water mark the node stops reading it, so what it queues for the peer stays bounded; the silent link
// then times out as idle, and the node keeps serving others.
TEST(StreamsTcp, PeerThatNeverReadsIsNotReadEither) {
  RealDriver::Options options;
  options.conn_high_water = 64 * 1024;
  NodeConfig config;
  config.streams.link_idle_timeout = 2s;
  Pair p(options, config);
  NonReadingPeer attacker(p.driver.local_endpoint(*p.b).port, p.b->public_key());
  size_t sent = attacker.flood(64 << 20);
  EXPECT_LT(sent, size_t(64) << 20) << "the node kept reading";
  auto cs = p.driver.conn_stats(*p.b);
  EXPECT_GE(cs.paused_reads, 1u);
  // Queued answers: at most the mark plus the answers to one read (256 KiB of records, answered 1:1).
  EXPECT_LE(cs.queued, options.conn_high_water + 300 * 1024);
  bool closed = false;
  for (int i = 0; i < 300 && !closed; ++i) {  // generous: the idle limit is 2 s
    closed = p.driver.call([&] { return p.b->streams().fast_path_stats().idle_closed; }) == 1;
    if (!closed) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(closed);
  EXPECT_EQ(p.driver.conn_stats(*p.b).queued, 0u);
  expect_streams_still_work(p);
}
