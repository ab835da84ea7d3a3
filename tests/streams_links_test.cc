// The streams fast path's bounds (src/streams/links.cc, docs/protocol.md 7.6 "Limits") in virtual time:
// Links instances over in-memory byte connections, attacked by raw peers that speak only as much of the
// protocol as the attack needs. Real-socket behaviour (the driver's high-water mark) is in
// streams_tcp_test.cc.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <map>

#include "crypto/session.h"
#include "engine/engine.h"
#include "storjnet/conn_provider.h"
#include "streams/links.h"
#include "streams/record_cipher.h"
#include "wire/datagram.h"

using namespace storjnet;
using streams::Links;
using streams::Record;
using streams::RecordType;

namespace {

struct World;

// One node: an environment with byte connections, an engine and its Links; answers every data record
// with an ack, as Streams does, unless told not to.
struct Side final : Environment, ConnProvider, Links::Events {
  Side(World& w, Endpoint ep, StreamsConfig cfg, uint8_t seed);
  TimePoint now() override;
  uint64_t unix_us() override { return 1; }
  void send(const Endpoint&, ByteView) override {}
  void wake_at(TimePoint at) override { wake = at; }
  void random(std::span<uint8_t> out) override {
    for (auto& b : out) b = uint8_t((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 56);
  }
  uint64_t conn_connect(const Endpoint& to) override;
  void conn_send(uint64_t c, Bytes bytes) override;
  size_t conn_queued(uint64_t c) const override;
  void conn_close(uint64_t c) override;
  Bytes conn_buffer() override {
    if (pool.empty()) return {};
    Bytes b = std::move(pool.back());
    pool.pop_back();
    return b;
  }
  void conn_recycle(Bytes b) override { pool.push_back(std::move(b)); }
  // Kept sends: what was handed over (the view and its holder), then delivered like any send.
  void conn_send_kept(uint64_t c, ByteView bytes, std::shared_ptr<const void> keep) override {
    kept.push_back({bytes, keep});
    conn_send(c, Bytes(bytes.begin(), bytes.end()));
  }
  struct Kept {
    ByteView bytes;
    std::shared_ptr<const void> keep;
  };
  std::vector<Kept> kept;
  void set_conn_listener(ConnListener* l) override { listener = l; }

  void on_link_up(const NodeId&) override { ++ups; }
  void on_link_down(uint64_t, const NodeId&) override {
    ++downs;
    EXPECT_FALSE(sending) << "on_link_down from inside Links::send";
  }
  void on_record(uint64_t conn, const NodeId&, const Record& r, Bytes data) override {
    ++records;
    if (r.type == RecordType::kData) got.push_back({r.offset, std::move(data)});
    if (r.type == RecordType::kData && answer_data) links.send(conn, Record::ack(r.id, r.offset, 0, 0));
  }
  void after_events() override {}

  void send_data(uint64_t conn, size_t n) {
    Bytes data(n, 7);
    sending = true;
    links.send(conn, Record::data_at(StreamId{1}, offset, data));
    sending = false;
    offset += n;
  }
  Contact contact() const { return {engine.id(), engine.identity().public_key(), ep}; }

  World& world;
  Endpoint ep;
  uint64_t rng;
  TimePoint wake = TimePoint::max();
  ConnListener* listener = nullptr;
  Engine engine;
  Links links;
  int ups = 0, downs = 0, records = 0;
  bool answer_data = true, sending = false;
  uint64_t offset = 0;
  std::vector<std::pair<uint64_t, Bytes>> got;  // data records received: offset, bytes
  std::vector<Bytes> pool;                       // conn_recycle'd buffers, for conn_buffer
};

// In-memory byte connections. An end without a Side is a raw peer driven by the test.
struct World {
  struct End {
    Side* side = nullptr;
    Bytes inbox;         // sent to this end, not yet read
    bool reads = true;   // false: a peer that never reads
    bool told = false;   // saw the other end close
  };
  struct Pipe {
    std::array<End, 2> ends;
    bool closed = false;
  };
  TimePoint clock{std::chrono::seconds(1000)};
  std::map<uint64_t, Pipe> pipes;
  std::vector<Side*> sides;
  uint64_t next_conn = 1;

  Side* at(const Endpoint& ep) {
    for (auto* s : sides)
      if (s->ep == ep) return s;
    return nullptr;
  }
  // The end of `c` that is not `s`'s (for a side's calls).
  End& far(uint64_t c, const Side* s) {
    auto& p = pipes.at(c);
    return p.ends[0].side == s ? p.ends[1] : p.ends[0];
  }
  // A raw peer at `from` connects to `to`.
  uint64_t raw_connect(Side& to, const Endpoint& from) {
    uint64_t c = next_conn++;
    pipes[c].ends[1].side = &to;
    to.listener->on_conn_open(c, true, from);
    return c;
  }
  void raw_send(uint64_t c, ByteView b) {
    auto& p = pipes.at(c);
    if (!p.closed) p.ends[1].inbox.insert(p.ends[1].inbox.end(), b.begin(), b.end());
  }
  Bytes& raw_inbox(uint64_t c) { return pipes.at(c).ends[0].inbox; }
  bool closed(uint64_t c) { return pipes.at(c).closed; }

  // Delivers every readable byte and close until nothing moves.
  void pump() {
    for (bool moved = true; moved;) {
      moved = false;
      for (auto& [c, p] : pipes) {
        for (auto& e : p.ends) {
          if (!e.side || !e.reads) continue;
          if (!p.closed && !e.inbox.empty()) {
            Bytes b = std::move(e.inbox);
            e.inbox.clear();
            e.side->listener->on_conn_data(c, b);
            moved = true;
          } else if (p.closed && !e.told) {
            e.told = true;
            e.side->listener->on_conn_closed(c);
            moved = true;
          }
        }
      }
    }
  }
  // Moves virtual time forward by d, running every timer that falls due on the way.
  void advance(Duration d) {
    TimePoint until = clock + d;
    for (;;) {
      pump();
      TimePoint next = TimePoint::max();
      for (auto* s : sides) next = std::min(next, s->wake);
      if (next > until) break;
      clock = std::max(clock, next);
      for (auto* s : sides)
        if (s->wake <= clock) {
          s->wake = TimePoint::max();
          s->engine.on_wake();
        }
    }
    clock = until;
    pump();
  }
};

Side::Side(World& w, Endpoint e, StreamsConfig cfg, uint8_t seed)
    : world(w), ep(e), rng(seed), engine(*this, Identity::from_seed(Bytes(32, seed))), links(engine, *this, cfg) {
  world.sides.push_back(this);
}
TimePoint Side::now() { return world.clock; }
uint64_t Side::conn_connect(const Endpoint& to) {
  uint64_t c = world.next_conn++;
  auto& p = world.pipes[c];
  p.ends[0].side = this;
  if (Side* other = world.at(to)) {
    p.ends[1].side = other;
    other->listener->on_conn_open(c, true, ep);
  }
  // (the opener's on_conn_open carries nothing Links needs)
  return c;
}
void Side::conn_send(uint64_t c, Bytes bytes) {
  auto& p = world.pipes.at(c);
  if (p.closed) return;
  auto& e = world.far(c, this);
  e.inbox.insert(e.inbox.end(), bytes.begin(), bytes.end());
}
size_t Side::conn_queued(uint64_t c) const {
  auto it = world.pipes.find(c);
  if (it == world.pipes.end() || it->second.closed) return 0;
  return world.far(c, this).inbox.size();
}
void Side::conn_close(uint64_t c) {
  auto& p = world.pipes.at(c);
  p.closed = true;
  (p.ends[0].side == this ? p.ends[0] : p.ends[1]).told = true;  // no event for the closer
}

Endpoint ep(const std::string& s) { return *Endpoint::parse(s); }

Bytes hello_from(const PublicKey& pk, uint8_t salt = 9) {
  Bytes h(4 + pk.size() + 32 + 1, salt);  // filled at once: GCC 12 warns (-Warray-bounds) on growing inserts
  std::memcpy(h.data(), "SJT1", 4);
  std::memcpy(h.data() + 4, pk.data(), pk.size());
  h.back() = 2;  // AES-256-OCB
  return h;
}

constexpr size_t kHelloSize = 69;

// Connects a to b; a's usable connection to b (0 when none).
uint64_t link(World& w, Side& a, Side& b) {
  a.links.ensure(b.contact());
  w.pump();
  return a.links.ready(b.engine.id());
}

StreamsConfig config() { return {}; }

}  // namespace

TEST(StreamsLinks, BothSidesAreReadyOnlyAfterTheOthersAuthenticatedRecord) {
  World w;
  Side a(w, ep("10.0.0.1:1"), config(), 1), b(w, ep("10.0.1.1:1"), config(), 2);
  a.links.ensure(b.contact());
  EXPECT_EQ(a.links.ready(b.engine.id()), 0u);
  w.pump();
  EXPECT_NE(a.links.ready(b.engine.id()), 0u);
  EXPECT_NE(b.links.ready(a.engine.id()), 0u);
  EXPECT_EQ(a.ups, 1);
  EXPECT_EQ(b.ups, 1);
  EXPECT_EQ(a.links.stats().links_up + b.links.stats().links_up, 2u);
}

// An impostor at B's address answers A's hello with B's (public) key: A derives keys, but the impostor
// cannot seal a record, so A never counts the link ready and closes it at the handshake limit.
TEST(StreamsLinks, OpenerDoesNotTrustAHelloAlone) {
  World w;
  Side a(w, ep("10.0.0.1:1"), config(), 1);
  Identity b = Identity::from_seed(Bytes(32, 2));
  Contact fake{b.id(), b.public_key(), ep("10.9.9.9:1")};  // no side there: a raw peer
  a.links.ensure(fake);
  uint64_t c = w.pipes.rbegin()->first;
  w.pump();
  ASSERT_EQ(w.pipes.at(c).ends[1].inbox.size(), kHelloSize);  // A's hello
  Bytes reply = hello_from(b.public_key());
  w.pipes.at(c).ends[0].inbox.insert(w.pipes.at(c).ends[0].inbox.end(), reply.begin(), reply.end());
  w.pump();
  EXPECT_GT(w.pipes.at(c).ends[1].inbox.size(), kHelloSize);  // A's ready record followed
  EXPECT_EQ(a.links.ready(b.id()), 0u);
  w.advance(config().link_handshake_timeout + 1s);
  EXPECT_TRUE(w.closed(c));
  EXPECT_EQ(a.ups, 0);
  EXPECT_EQ(a.links.stats().handshake_timeouts, 1u);
  EXPECT_EQ(a.links.stats().links_up, 0u);
}

// A raw peer that connects and says nothing, or sends a hello (costing the acceptor an X25519) and never a
// record: closed at the handshake limit, counted, with nothing reported up.
TEST(StreamsLinks, AcceptorClosesSilentAndHelloOnlyPeers) {
  World w;
  Side b(w, ep("10.0.1.1:1"), config(), 2);
  uint64_t silent = w.raw_connect(b, ep("10.0.0.1:5"));
  uint64_t hello_only = w.raw_connect(b, ep("10.0.0.2:5"));
  w.raw_send(hello_only, hello_from(Identity::from_seed(Bytes(32, 3)).public_key()));
  w.pump();
  EXPECT_GT(w.raw_inbox(hello_only).size(), kHelloSize);  // B's hello and ready record
  w.advance(config().link_handshake_timeout - 1s);
  EXPECT_FALSE(w.closed(silent));
  EXPECT_FALSE(w.closed(hello_only));
  w.advance(2s);
  EXPECT_TRUE(w.closed(silent));
  EXPECT_TRUE(w.closed(hello_only));
  EXPECT_EQ(b.links.stats().handshake_timeouts, 2u);
  EXPECT_EQ(b.ups, 0);
}

// An authenticated link that carries nothing is closed after link_idle_timeout; that is no failure, so the
// opener may connect again at once.
TEST(StreamsLinks, IdleAuthenticatedLinksTimeOut) {
  World w;
  StreamsConfig cfg = config();
  cfg.link_idle_timeout = 20s;
  Side a(w, ep("10.0.0.1:1"), cfg, 1), b(w, ep("10.0.1.1:1"), cfg, 2);
  uint64_t c = link(w, a, b);
  ASSERT_NE(c, 0u);
  // Traffic keeps it open.
  for (int i = 0; i < 4; ++i) {
    w.advance(10s);
    a.send_data(c, 100);
  }
  EXPECT_EQ(a.links.ready(b.engine.id()), c);
  w.advance(21s);
  EXPECT_TRUE(w.closed(c));
  EXPECT_EQ(a.links.ready(b.engine.id()), 0u);
  EXPECT_EQ(b.links.ready(a.engine.id()), 0u);
  EXPECT_GE(a.links.stats().idle_closed + b.links.stats().idle_closed, 1u);
  EXPECT_EQ(a.downs, 1);
  EXPECT_EQ(b.downs, 1);
  a.links.ensure(b.contact());
  w.pump();
  EXPECT_NE(a.links.ready(b.engine.id()), 0u);
}

// A peer whose owner never acknowledges data: after link_ack_timeout the link closes (its data then goes
// over the datagram path) and the opener waits before connecting again.
TEST(StreamsLinks, UnacknowledgedDataClosesTheLink) {
  World w;
  Side a(w, ep("10.0.0.1:1"), config(), 1), b(w, ep("10.0.1.1:1"), config(), 2);
  uint64_t c = link(w, a, b);
  ASSERT_NE(c, 0u);
  // Acknowledged data over twice the limit: no timeout.
  for (int i = 0; i < 8; ++i) {
    a.send_data(c, 1000);
    w.advance(config().link_ack_timeout / 4);
  }
  EXPECT_EQ(a.links.ready(b.engine.id()), c);
  b.answer_data = false;
  a.send_data(c, 1000);
  w.advance(config().link_ack_timeout - 1s);
  EXPECT_EQ(a.links.ready(b.engine.id()), c);
  w.advance(2s);
  EXPECT_EQ(a.links.ready(b.engine.id()), 0u);
  EXPECT_EQ(a.links.stats().ack_timeouts, 1u);
  EXPECT_EQ(a.downs, 1);
  a.links.ensure(b.contact());  // within the retry delay: no new connection
  EXPECT_EQ(w.pipes.size(), 1u);
}

// send_data seals straight from the caller's bytes into the buffer the connection writes; the chunk it
// returns holds that record and opens to the same bytes, also once the connection is gone. A connection that
// is closing (past the send cap) or unknown takes nothing.
TEST(StreamsLinks, DataSentWithoutACopyArrivesAndOpensAgain) {
  World w;
  StreamsConfig cfg = config();
  cfg.link_send_cap = 1 << 20;
  Side a(w, ep("10.0.0.1:1"), cfg, 1), b(w, ep("10.0.1.1:1"), cfg, 2);
  uint64_t c = link(w, a, b);
  ASSERT_NE(c, 0u);
  Bytes data(2 * Links::kMaxData);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7 + 3);
  auto first = a.links.send_data(c, StreamId{1}, 0, ByteView(data).first(1000));
  auto second = a.links.send_data(c, StreamId{1}, 1000, ByteView(data).subspan(1000));  // capped at kMaxData
  ASSERT_TRUE(first && second);
  // Handed to the connection without a copy: the bytes written are held by the very chunk returned, sized
  // as a record (length, head, data, tag).
  ASSERT_EQ(a.kept.size(), 2u);
  auto same_owner = [](const std::shared_ptr<const void>& x, const auto& y) {
    return !x.owner_before(y) && !y.owner_before(x);
  };
  EXPECT_TRUE(same_owner(a.kept[0].keep, first));
  EXPECT_TRUE(same_owner(a.kept[1].keep, second));
  EXPECT_EQ(a.kept[0].bytes.size(), 4u + 48 + 1000 + 16);
  EXPECT_EQ(a.kept[1].bytes.size(), 4u + 48 + Links::kMaxData + 16);
  EXPECT_EQ(first->size(), 1000u);
  EXPECT_EQ(second->size(), Links::kMaxData);
  w.pump();
  ASSERT_EQ(b.got.size(), 2u);
  EXPECT_EQ(b.got[0].first, 0u);
  EXPECT_EQ(b.got[0].second, Bytes(data.begin(), data.begin() + 1000));
  EXPECT_EQ(b.got[1].first, 1000u);
  EXPECT_EQ(b.got[1].second, Bytes(data.begin() + 1000, data.begin() + 1000 + Links::kMaxData));
  EXPECT_EQ(a.links.stats().bytes_sent, 1000u + Links::kMaxData);
  // Records sealed after these still open (each knows its own counter).
  a.send_data(c, 10);
  w.pump();
  EXPECT_EQ(b.got.size(), 3u);
  EXPECT_EQ(first->open(), b.got[0].second);
  EXPECT_EQ(second->open(), b.got[1].second);
  // Past the send cap the link is closing: nothing more is taken, and the held chunks still open.
  w.far(c, &a).reads = false;
  for (int i = 0; i < 9; ++i) a.send_data(c, Links::kMaxData);
  EXPECT_EQ(a.links.send_data(c, StreamId{1}, 0, data), nullptr);
  EXPECT_EQ(a.links.send_data(c + 100, StreamId{1}, 0, data), nullptr);  // unknown
  w.advance(1ms);
  EXPECT_TRUE(w.closed(c));
  EXPECT_EQ(second->open(), b.got[1].second);
}

// A received data record is decrypted into a recycled buffer of about its size (no allocation, no zero-fill);
// one more than an eighth larger is left for others, so small records never hold big buffers.
TEST(StreamsLinks, ReceivedDataReusesRecycledBuffersOfItsSize) {
  World w;
  Side a(w, ep("10.0.0.1:1"), config(), 1), b(w, ep("10.0.1.1:1"), config(), 2);
  uint64_t c = link(w, a, b);
  ASSERT_NE(c, 0u);
  b.links.recycle(Bytes(Links::kMaxData, 0xee));
  const uint8_t* spare = b.pool.back().data();
  Bytes data(Links::kMaxData - 3);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 5 + 1);
  a.links.send_data(c, StreamId{1}, 0, data);
  w.pump();
  ASSERT_EQ(b.got.size(), 1u);
  EXPECT_EQ(b.got[0].second.data(), spare);  // reused
  EXPECT_EQ(b.got[0].second, data);
  EXPECT_TRUE(b.pool.empty());
  b.links.recycle(std::move(b.got[0].second));
  a.send_data(c, 100);  // small: the big buffer stays in the pool
  w.pump();
  ASSERT_EQ(b.got.size(), 2u);
  EXPECT_NE(b.got[1].second.data(), spare);
  EXPECT_EQ(b.got[1].second, Bytes(100, 7));
  ASSERT_EQ(b.pool.size(), 1u);
  EXPECT_EQ(b.pool.back().data(), spare);
  // Nor is a buffer smaller than the record (it would be reallocated, its stale bytes copied).
  b.pool.clear();
  b.links.recycle(Bytes(1000, 0xee));
  const uint8_t* small = b.pool.back().data();
  a.send_data(c, 5000);
  w.pump();
  ASSERT_EQ(b.got.size(), 3u);
  EXPECT_NE(b.got[2].second.data(), small);
  EXPECT_EQ(b.got[2].second, Bytes(5000, 7));
  ASSERT_EQ(b.pool.size(), 1u);
  EXPECT_EQ(b.pool.back().data(), small);
}

// A peer that never reads: what is queued to it is bounded by link_send_cap; past it the connection is
// closed (after the send, not inside it) and the owner told.
TEST(StreamsLinks, PeerThatNeverReadsIsClosedPastTheSendCap) {
  World w;
  StreamsConfig cfg = config();
  cfg.link_send_cap = 1 << 20;
  Side a(w, ep("10.0.0.1:1"), cfg, 1), b(w, ep("10.0.1.1:1"), cfg, 2);
  uint64_t c = link(w, a, b);
  ASSERT_NE(c, 0u);
  w.far(c, &a).reads = false;
  for (int i = 0; i < 9; ++i) a.send_data(c, Links::kMaxData);  // 9 x 128 KiB > 1 MiB
  EXPECT_EQ(a.downs, 0);
  size_t queued = a.conn_queued(c);
  a.send_data(c, Links::kMaxData);  // ignored: the link is closing
  EXPECT_EQ(a.conn_queued(c), queued);
  w.advance(1ms);
  EXPECT_TRUE(w.closed(c));
  EXPECT_EQ(a.downs, 1);
  EXPECT_EQ(a.links.stats().send_overflows, 1u);
}

// Inbound hellos are budgeted node-wide and per prefix; each refused one closes its connection before any
// curve operation, and the budget refills after a second.
TEST(StreamsLinks, HandshakeFloodIsBudgetedNodeWideAndPerPrefix) {
  World w;
  StreamsConfig cfg = config();
  cfg.link_handshakes_per_second = 8;
  cfg.link_handshakes_per_prefix = 3;
  Side b(w, ep("10.0.1.1:1"), cfg, 2);
  auto flood = [&](auto addr_of, int n) {
    int answered = 0;
    for (int i = 0; i < n; ++i) {
      uint64_t c = w.raw_connect(b, ep(addr_of(i)));
      w.raw_send(c, hello_from(Identity::from_seed(Bytes(32, uint8_t(100 + i))).public_key()));
      w.pump();
      answered += !w.closed(c) && w.raw_inbox(c).size() > kHelloSize;
    }
    return answered;
  };
  // Ten fresh keys from one /24: three answered.
  EXPECT_EQ(flood([](int i) { return "192.0.2." + std::to_string(i + 1) + ":7"; }, 10), 3);
  EXPECT_EQ(b.links.stats().handshakes_limited, 7u);
  // Ten from ten prefixes: the node-wide budget (8) has five left.
  EXPECT_EQ(flood([](int i) { return "198.51." + std::to_string(i) + ".1:7"; }, 10), 5);
  EXPECT_EQ(b.links.stats().handshakes_limited, 12u);
  w.advance(1s);
  EXPECT_EQ(flood([](int i) { return "203.0.113." + std::to_string(i + 1) + ":7"; }, 1), 1);
}

// Accepted connections from one prefix are capped (max_links_per_prefix) so one network cannot take every
// slot; others still get in, and a closed connection frees its slot.
TEST(StreamsLinks, ConnectionsPerPrefixAreCapped) {
  World w;
  StreamsConfig cfg = config();
  cfg.max_links_per_prefix = 4;
  Side b(w, ep("10.0.1.1:1"), cfg, 2);
  std::vector<uint64_t> conns;
  for (int i = 0; i < 6; ++i) conns.push_back(w.raw_connect(b, ep("192.0.2." + std::to_string(i + 1) + ":7")));
  int refused = 0;
  for (auto c : conns) refused += w.closed(c);
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(b.links.stats().links_refused, 2u);
  EXPECT_FALSE(w.closed(w.raw_connect(b, ep("192.0.3.1:7"))));
  w.advance(cfg.link_handshake_timeout + 1s);  // the silent ones time out and free their slots
  EXPECT_FALSE(w.closed(w.raw_connect(b, ep("192.0.2.99:7"))));
}

namespace {

// A raw opener that speaks the handshake itself: its hello asks for `asks` (the cipher byte), then it seals
// its ready record with `seals`, whatever the two hellos agreed. Returns the connection.
uint64_t raw_opener(World& w, Side& to, uint8_t asks, streams::RecordCipher::Suite seals, uint8_t seed) {
  Identity me = Identity::from_seed(Bytes(32, seed));
  uint64_t c = w.raw_connect(to, ep("192.0.2." + std::to_string(seed) + ":7"));
  Bytes hello = hello_from(me.public_key(), seed);
  hello.back() = asks;
  w.raw_send(c, hello);
  w.pump();
  if (w.closed(c) || w.raw_inbox(c).size() < kHelloSize) return c;
  const Bytes theirs(w.raw_inbox(c).begin(), w.raw_inbox(c).begin() + kHelloSize);
  crypto::SessionKey pair;
  EXPECT_TRUE(crypto::derive_session_key(me, to.engine.identity().public_key(), pair, false));
  // Opener to acceptor: BLAKE2b-256(pair key || opener salt || acceptor salt || 1).
  streams::RecordCipher::Key key;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, key.size());
  crypto_generichash_update(&st, pair.data(), pair.size());
  crypto_generichash_update(&st, hello.data() + 36, 32);
  crypto_generichash_update(&st, theirs.data() + 36, 32);
  uint8_t dir = 1;
  crypto_generichash_update(&st, &dir, 1);
  crypto_generichash_final(&st, key.data(), key.size());
  streams::RecordCipher tx(seals, key, streams::RecordCipher::Direction::kSeal);
  uint8_t head[48] = {5};  // the ready record: type 5, zero stream id and value, no body
  Bytes ready(4 + sizeof head + streams::RecordCipher::kTagSize);
  wire::put_u32(ready.data(), static_cast<uint32_t>(ready.size() - 4));
  tx.seal({ByteView(head, sizeof head)}, ready.data() + 4);
  w.raw_send(c, ready);
  w.pump();
  return c;
}

}  // namespace

// The hello's cipher byte: records are sealed with AES-128-OCB when both ends ask for it (the default) and
// with AES-256-OCB when either asks for that (aes256_records); any other byte closes the connection. Checked
// on the wire: a raw peer's ready record opens only under the agreed cipher.
TEST(StreamsLinks, RecordsAreAes128OcbUnlessEitherEndAsksForAes256) {
  using Suite = streams::RecordCipher::Suite;
  for (bool a256 : {false, true})
    for (bool b256 : {false, true}) {
      SCOPED_TRACE(testing::Message() << "a256 " << a256 << " b256 " << b256);
      World w;
      StreamsConfig ca = config(), cb = config();
      ca.aes256_records = a256;
      cb.aes256_records = b256;
      Side a(w, ep("10.0.0.1:1"), ca, 1), b(w, ep("10.0.1.1:1"), cb, 2);
      uint64_t c = link(w, a, b);
      ASSERT_NE(c, 0u);
      a.send_data(c, 1000);
      w.pump();
      ASSERT_EQ(b.got.size(), 1u);
      EXPECT_EQ(b.got[0].second, Bytes(1000, 7));
      EXPECT_EQ(a.links.stats().links_aes256, a256 || b256 ? 1u : 0u);
      EXPECT_EQ(b.links.stats().links_aes256, a256 || b256 ? 1u : 0u);
    }
  for (bool b256 : {false, true}) {
    SCOPED_TRACE(testing::Message() << "b256 " << b256);
    World w;
    StreamsConfig cb = config();
    cb.aes256_records = b256;
    Side b(w, ep("10.0.1.1:1"), cb, 2);
    const Suite agreed = b256 ? Suite::kAes256Ocb : Suite::kAes128Ocb;
    const Suite other = b256 ? Suite::kAes128Ocb : Suite::kAes256Ocb;
    // The node states its own wish in its hello.
    uint64_t ok = raw_opener(w, b, 3, agreed, 11);
    ASSERT_GE(w.raw_inbox(ok).size(), kHelloSize);
    EXPECT_EQ(w.raw_inbox(ok)[kHelloSize - 1], b256 ? 2 : 3);
    EXPECT_FALSE(w.closed(ok));
    EXPECT_EQ(b.ups, 1);
    // A peer that asks for AES-256 gets it from any node.
    uint64_t strong = raw_opener(w, b, 2, Suite::kAes256Ocb, 12);
    EXPECT_FALSE(w.closed(strong));
    EXPECT_EQ(b.ups, 2);
    EXPECT_EQ(b.links.stats().links_aes256, b256 ? 2u : 1u);
    // Sealed under the other cipher than the hellos agreed: does not authenticate.
    uint64_t wrong = raw_opener(w, b, 3, other, 13);
    EXPECT_TRUE(w.closed(wrong));
    EXPECT_EQ(b.ups, 2);
    EXPECT_EQ(b.links.stats().bad_records, 1u);
    // An unknown cipher byte: closed at the hello, before any key work.
    uint64_t unknown = raw_opener(w, b, 7, agreed, 14);
    EXPECT_TRUE(w.closed(unknown));
    EXPECT_EQ(w.raw_inbox(unknown).size(), 0u);
    EXPECT_EQ(b.links.stats().bad_records, 2u);
  }
}
