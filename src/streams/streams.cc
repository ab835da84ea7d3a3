// Streams over the engine's authenticated, encrypted RPC (docs/protocol.md, "7. Streams"): stream_open
// creates the stream at both ends, stream_write requests carry data at explicit stream offsets (so
// retransmitted and reordered chunks are placed exactly once), their answers carry the receiver's
// credit (read offset + window), stream_window pushes credit when the application reads, and stream_close
// ends the stream once the closer's data is acknowledged.
#include "storjnet/streams.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "crypto/session.h"
#include "engine/engine.h"
#include "messages/resolver.h"
#include "storjnet/dht.h"
#include "streams/codec.h"
#include "streams/conn.h"
#include "streams/recv_buffer.h"

namespace storjnet {

using streams::RecvBuffer;

namespace {
constexpr size_t kMaxInFlightChunks = 16;       // per stream: 512 KiB of unacknowledged data on the wire
constexpr Duration kDataTimeout = 3s;           // one stream_write request, retries included
constexpr int kDataAttempts = 8;
constexpr Duration kAttemptInterval = 250ms;
constexpr Duration kMaxSweep = 250ms;           // idle check / credit probe period

// Fast path (docs/protocol.md 7.6).
constexpr size_t kLinkChunk = 256 * 1024;       // data bytes in one record
constexpr size_t kMaxRecord = kLinkChunk + 64;  // plaintext bytes in one record
constexpr size_t kHelloSize = 4 + 32 + 32 + 1;  // magic, public key, salt, cipher flags
constexpr uint8_t kMagic[4] = {'S', 'J', 'T', '1'};
constexpr size_t kMaxLinks = 256;
constexpr Duration kLinkRetry = 10s;            // after a failed connection, UDP only for this long
enum : uint8_t { kRecData = 1, kRecAck = 2, kRecWindow = 3, kRecError = 4 };

void put64(Bytes& b, uint64_t v) {
  for (int i = 7; i >= 0; --i) b.push_back(uint8_t(v >> (8 * i)));
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
}  // namespace

struct Streams::Impl {
  enum class State { kOpening, kOpen, kClosing, kPeerClosed };
  struct Chunk {
    Bytes data;
    bool in_flight = false;
    uint64_t via = 0;  // connection carrying it (0: UDP RPC)
  };
  // One byte connection (fast path). Usable for sending once `ready`.
  struct Link {
    uint64_t conn = 0;
    bool inbound = false;
    bool ready = false;      // keys derived and the peer proven (outbound: its key; inbound: a valid record)
    bool keys = false;
    bool aes = false;
    NodeId peer{};
    PublicKey expect{};
    std::array<uint8_t, 32> my_salt{}, peer_salt{};
    crypto::SessionKey tx{}, rx{};
    uint64_t tx_ctr = 0, rx_ctr = 0;
    Bytes in;
    size_t in_pos = 0;
  };
  struct Write {
    uint64_t end;
    size_t n;
    std::function<void(std::optional<size_t>)> cb;
  };
  struct Stream {
    StreamId id{};
    Contact peer;
    State state = State::kOpening;
    bool inbound = false;
    RecvBuffer rx;
    uint64_t advertised = 0;          // highest limit we told the peer
    uint64_t send_off = 0;            // bytes accepted from the application
    uint64_t peer_limit = 0;          // we may send bytes below this offset
    std::map<uint64_t, Chunk> unacked;
    size_t in_flight = 0;
    std::deque<Write> writes;
    std::vector<std::function<void()>> writable;
    TimePoint last_heard{};
    bool probing = false;
    std::function<void(bool)> close_cb;
    TimerId close_timer;
    TimePoint close_deadline{};

    explicit Stream(size_t window) : rx(window) {}
    uint64_t credit() const { return peer_limit > send_off ? peer_limit - send_off : 0; }
  };

  Engine& engine;
  Dht& dht;
  StreamsConfig config;
  Resolver resolver;
  std::map<StreamId, Stream> streams;
  std::unordered_map<NodeId, size_t> inbound_per_peer;
  std::vector<std::function<void()>> deferred;
  TimerId sweep_timer;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  // Fast path.
  struct Listener final : streams::ConnListener {
    Impl* impl;
    explicit Listener(Impl* i) : impl(i) {}
    void on_conn_open(uint64_t c, bool inbound) override { impl->link_open(c, inbound); impl->flush(); }
    void on_conn_data(uint64_t c, ByteView b) override { impl->link_data(c, b); impl->flush(); }
    void on_conn_closed(uint64_t c) override { impl->link_closed(c); impl->flush(); }
  };
  streams::ConnProvider* net = nullptr;
  Listener listener{this};
  std::unordered_map<uint64_t, Link> links;
  std::unordered_map<NodeId, uint64_t> link_of;       // peer -> ready connection
  std::unordered_map<NodeId, uint64_t> connecting;    // peer -> connection being set up by us
  std::unordered_map<NodeId, TimePoint> retry_after;
  StreamsFastPathStats fstats;
  Bytes scratch;

  Impl(Engine& e, Dht& d, StreamsConfig c) : engine(e), dht(d), config(c), resolver(d) {
    net = dynamic_cast<streams::ConnProvider*>(&engine.env());
    if (net) net->set_conn_listener(&listener);
    engine.set_handler(Method::kStreamOpen, [this](const IncomingRequest& q, const Reply& r) { on_open(q, r); flush(); });
    engine.set_handler(Method::kStreamData, [this](const IncomingRequest& q, const Reply& r) { on_data(q, r); flush(); });
    engine.set_handler(Method::kStreamClose, [this](const IncomingRequest& q, const Reply& r) { on_close(q, r); flush(); });
    engine.set_handler(Method::kStreamWindow, [this](const IncomingRequest& q, const Reply&) { on_window(q); flush(); });
    engine.set_rate_limited(Method::kStreamOpen);
  }
  ~Impl() {
    *alive = false;
    for (auto m : {Method::kStreamOpen, Method::kStreamData, Method::kStreamClose, Method::kStreamWindow})
      engine.set_handler(m, nullptr);
    engine.cancel(sweep_timer);
    for (auto& [id, s] : streams) engine.cancel(s.close_timer);
    if (net) {
      net->set_conn_listener(nullptr);
      for (auto& [c, l] : links) net->conn_close(c);
    }
  }

  std::weak_ptr<bool> guard() const { return alive; }

  // Completion callbacks run after the state change that caused them, never while a Stream& is held.
  void flush() {
    while (!deferred.empty()) {
      auto run = std::move(deferred);
      deferred.clear();
      for (auto& f : run) f();
    }
  }

  Stream* find(const StreamId& id) {
    auto it = streams.find(id);
    return it == streams.end() ? nullptr : &it->second;
  }
  Stream* find_from(const StreamId& id, const NodeId& peer) {
    Stream* s = find(id);
    return s && s->peer.id == peer ? s : nullptr;
  }

  void erase(const StreamId& id) {
    auto it = streams.find(id);
    if (it == streams.end()) return;
    Stream& s = it->second;
    engine.cancel(s.close_timer);
    if (s.inbound) {
      auto p = inbound_per_peer.find(s.peer.id);
      if (p != inbound_per_peer.end() && --p->second == 0) inbound_per_peer.erase(p);
    }
    streams.erase(it);
  }

  Stream& create(const StreamId& id, const Contact& peer, bool inbound, State st) {
    auto [it, fresh] = streams.try_emplace(id, config.receive_buffer);
    Stream& s = it->second;
    s.id = id;
    s.peer = peer;
    s.inbound = inbound;
    s.state = st;
    s.last_heard = engine.now();
    s.advertised = s.rx.limit();
    if (inbound) ++inbound_per_peer[peer.id];
    arm_sweep();
    return s;
  }

  // ------------------------------------------------------------ open

  void open(const NodeId& peer, std::function<void(std::optional<StreamId>)> cb) {
    if (peer == engine.id() || streams.size() >= config.max_streams) return cb(std::nullopt);
    TimePoint deadline = engine.now() + config.open_timeout;
    resolver.resolve(peer, [this, cb = std::move(cb), deadline, g = guard()](std::optional<Contact> c) mutable {
      if (g.expired()) return;
      Duration left = deadline - engine.now();
      if (!c || left <= Duration(0) || streams.size() >= config.max_streams) return cb(std::nullopt);
      StreamId id;
      do engine.env().random(id); while (streams.count(id));
      create(id, *c, false, State::kOpening);
      RpcOptions opts;
      opts.timeout = left;
      opts.attempts = static_cast<int>(std::clamp<int64_t>(left / kAttemptInterval, 1, 20));
      auto body = streams::encode_open({id, static_cast<uint32_t>(config.receive_buffer)});
      engine.request(*c, Method::kStreamOpen, body, [this, id, cb = std::move(cb), g](RpcResult&& r) {
        if (g.expired()) return;
        Stream* s = find(id);
        auto window = r.ok() ? streams::decode_window_size(r.payload) : std::nullopt;
        if (!s || s->state != State::kOpening || !window) {
          if (s && s->state == State::kOpening) erase(id);
          if (r.status == RpcStatus::kTimeout) resolver.forget(r.from.id);
          cb(std::nullopt);
          return flush();
        }
        s->state = State::kOpen;
        s->peer_limit = *window;
        s->last_heard = engine.now();
        ensure_link(s->peer);
        cb(id);
        flush();
      }, opts);
    });
  }

  void on_open(const IncomingRequest& req, const Reply& reply) {
    auto b = streams::decode_open(req.payload);
    if (!b) return reply.error("bad stream_open body");
    if (Stream* s = find(b->id)) {
      // A retransmitted open is answered again; anything else is a collision.
      if (s->peer.id == req.from.id && s->inbound) return reply.ok(streams::encode_window_size(uint32_t(s->rx.window())));
      return reply.error("stream id in use");
    }
    if (streams.size() >= config.max_streams) return reply.error("too many streams");
    auto per = inbound_per_peer.find(req.from.id);
    if (per != inbound_per_peer.end() && per->second >= config.max_streams_per_peer)
      return reply.error("too many streams from this peer");
    Stream& s = create(b->id, req.from, true, State::kOpen);
    s.peer_limit = b->window;
    resolver.remember(req.from);
    reply.ok(streams::encode_window_size(static_cast<uint32_t>(config.receive_buffer)));
  }

  // ------------------------------------------------------------ write (sender side)

  void write(const StreamId& id, ByteView data, std::function<void(std::optional<size_t>)> cb) {
    Stream* s = find(id);
    if (!s || s->state != State::kOpen) return cb(std::nullopt);
    size_t n = static_cast<size_t>(std::min<uint64_t>(s->credit(), data.size()));
    if (n == 0) return cb(0);
    const size_t chunk = link_for(s->peer.id) ? kLinkChunk : streams::kMaxChunk;
    for (size_t at = 0; at < n; at += chunk) {
      size_t len = std::min(chunk, n - at);
      s->unacked.emplace(s->send_off + at, Chunk{Bytes(data.begin() + static_cast<long>(at),
                                                       data.begin() + static_cast<long>(at + len))});
    }
    s->send_off += n;
    s->writes.push_back({s->send_off, n, std::move(cb)});
    pump(*s);
  }

  void pump(Stream& s) {
    if (Link* l = link_for(s.peer.id)) {
      for (auto& [off, c] : s.unacked) {
        if (c.in_flight) continue;
        c.in_flight = true;
        c.via = l->conn;
        send_record_data(*l, s.id, off, c.data);
      }
      return;
    }
    for (auto it = s.unacked.begin(); it != s.unacked.end(); ++it) {
      auto& [off, c] = *it;
      if (s.in_flight >= kMaxInFlightChunks) break;
      if (c.in_flight) continue;
      if (c.data.size() > streams::kMaxChunk) {  // written for the fast path, now going over UDP
        Bytes rest(c.data.begin() + static_cast<long>(streams::kMaxChunk), c.data.end());
        c.data.resize(streams::kMaxChunk);
        s.unacked.emplace(off + streams::kMaxChunk, Chunk{std::move(rest)});
      }
      c.in_flight = true;
      ++s.in_flight;
      send_chunk(s, off, c.data);
    }
  }

  void send_chunk(Stream& s, uint64_t off, ByteView data) {
    RpcOptions opts;
    opts.timeout = kDataTimeout;
    opts.attempts = kDataAttempts;
    engine.request(s.peer, Method::kStreamData, streams::encode_data(s.id, off, data),
                   [this, id = s.id, off, g = guard()](RpcResult&& r) {
                     if (g.expired()) return;
                     on_data_result(id, off, r);
                     flush();
                   }, opts);
  }

  void heard(Stream& s, const streams::DataAck& a) {
    s.last_heard = engine.now();
    if (a.limit > s.peer_limit) s.peer_limit = a.limit;
    if (s.credit() > 0) fire_writable(s);
  }

  void fire_writable(Stream& s) {
    for (auto& w : s.writable) deferred.push_back(std::move(w));
    s.writable.clear();
  }

  void on_data_result(const StreamId& id, uint64_t off, const RpcResult& r) {
    Stream* s = find(id);
    if (!s) return;
    auto c = s->unacked.find(off);
    if (c == s->unacked.end() || !c->second.in_flight || c->second.via != 0) return;
    c->second.in_flight = false;
    --s->in_flight;
    if (r.ok()) {
      auto a = streams::decode_ack(r.payload);
      if (!a) return peer_closed(*s);
      s->unacked.erase(c);
      heard(*s, *a);
      complete_writes(*s);
    } else if (r.status == RpcStatus::kRemoteError) {
      return peer_closed(*s);  // the peer no longer knows the stream (closed, restarted, or refused)
    } else if (engine.now() - s->last_heard > config.idle_timeout) {
      return peer_closed(*s);  // vanished
    }
    if (s->state == State::kClosing && s->unacked.empty()) return send_close(*s);
    pump(*s);
  }

  void complete_writes(Stream& s) {
    uint64_t acked = s.unacked.empty() ? s.send_off : s.unacked.begin()->first;
    while (!s.writes.empty() && s.writes.front().end <= acked) {
      deferred.push_back([cb = std::move(s.writes.front().cb), n = s.writes.front().n] { cb(n); });
      s.writes.pop_front();
    }
  }

  void fail_writes(Stream& s) {
    for (auto& w : s.writes) deferred.push_back([cb = std::move(w.cb)] { cb(std::nullopt); });
    s.writes.clear();
    s.unacked.clear();
    s.in_flight = 0;
    fire_writable(s);
  }

  // ------------------------------------------------------------ receive side

  void on_data(const IncomingRequest& req, const Reply& reply) {
    auto b = streams::decode_data(req.payload);
    if (!b) return reply.error("bad stream_write body");
    Stream* s = find_from(b->id, req.from.id);
    if (!s) return reply.error("unknown stream");
    if (s->state == State::kClosing || s->state == State::kPeerClosed) return reply.error("stream closed");
    s->last_heard = engine.now();
    if (s->rx.add(b->offset, b->data) == RecvBuffer::Add::kBeyondWindow) return reply.error("beyond window");
    s->advertised = std::max(s->advertised, s->rx.limit());
    reply.ok(streams::encode_ack({s->rx.received(), s->rx.limit()}));
  }

  void on_window(const IncomingRequest& req) {
    auto b = streams::decode_window(req.payload);
    if (!b) return;
    Stream* s = find_from(b->id, req.from.id);
    if (!s || s->state != State::kOpen) return;
    heard(*s, {0, b->limit});
  }

  std::optional<Bytes> read(const StreamId& id, std::optional<size_t> max) {
    Stream* s = find(id);
    if (!s) return std::nullopt;
    if (s->state == State::kPeerClosed) {
      if (s->rx.unread() == 0) {
        erase(id);
        return std::nullopt;
      }
      return s->rx.read(max);
    }
    if (s->state != State::kOpen) return std::nullopt;
    Bytes out = s->rx.read(max);
    // Tell the writer about freed space when it is worth a datagram or the writer may be stalled.
    uint64_t limit = s->rx.limit();
    if (!out.empty() && (limit - s->advertised >= s->rx.window() / 4 || s->advertised <= s->rx.received())) {
      s->advertised = limit;
      if (Link* l = link_for(s->peer.id)) {
        Bytes r{kRecWindow};
        r.insert(r.end(), id.begin(), id.end());
        put64(r, limit);
        send_record(*l, r);
      } else {
        engine.notify(s->peer, Method::kStreamWindow, streams::encode_window({id, limit}));
      }
    }
    return out;
  }

  // ------------------------------------------------------------ close

  void close(const StreamId& id, std::function<void(bool)> cb) {
    Stream* s = find(id);
    if (!s || s->state == State::kOpening || s->state == State::kClosing) return cb(false);
    if (s->state == State::kPeerClosed) {
      erase(id);
      return cb(true);
    }
    s->state = State::kClosing;
    s->close_cb = std::move(cb);
    s->close_deadline = engine.now() + config.close_timeout;
    fire_writable(*s);
    s->close_timer = engine.schedule(config.close_timeout, [this, id] {
      if (Stream* s = find(id)) s->close_timer = TimerId{};
      finish_close(id);
      flush();
    });
    // The peer sees our data first: stream_close goes out once every written byte is acknowledged.
    if (s->unacked.empty()) send_close(*s);
  }

  void send_close(Stream& s) {
    Duration left = std::max<Duration>(s.close_deadline - engine.now(), 100ms);
    RpcOptions opts;
    opts.timeout = left;
    opts.attempts = static_cast<int>(std::clamp<int64_t>(left / kAttemptInterval, 1, 12));
    engine.request(s.peer, Method::kStreamClose, streams::encode_close(s.id), [this, id = s.id, g = guard()](RpcResult&&) {
      if (g.expired()) return;
      finish_close(id);
      flush();
    }, opts);
  }

  void finish_close(const StreamId& id) {
    Stream* s = find(id);
    if (!s || s->state != State::kClosing) return;
    fail_writes(*s);
    auto cb = std::move(s->close_cb);
    erase(id);
    if (cb) deferred.push_back([cb = std::move(cb)] { cb(true); });
  }

  void on_close(const IncomingRequest& req, const Reply& reply) {
    auto id = streams::decode_close(req.payload);
    if (!id) return reply.error("bad stream_close body");
    Stream* s = find_from(*id, req.from.id);
    if (s && s->state != State::kClosing && s->state != State::kPeerClosed) peer_closed(*s);
    reply.ok({});  // idempotent: a retransmitted close is answered too
  }

  // The peer closed the stream or vanished: our writes fail from now on; buffered bytes stay readable.
  void peer_closed(Stream& s) {
    if (s.state == State::kClosing) {
      fail_writes(s);
      return send_close(s);  // still tell it (it may just have lost the stream); finish on answer/timeout
    }
    fail_writes(s);
    s.rx.drop_ahead();
    if (s.state == State::kOpening || s.rx.unread() == 0) return erase(s.id);
    s.state = State::kPeerClosed;
  }

  // ------------------------------------------------------------ liveness and credit probes

  Duration sweep_period() const { return std::clamp<Duration>(config.idle_timeout / 4, 10ms, kMaxSweep); }

  void arm_sweep() {
    if (sweep_timer) return;
    sweep_timer = engine.schedule(sweep_period(), [this] {
      sweep_timer = TimerId{};
      sweep();
      flush();
      if (!streams.empty()) arm_sweep();
    });
  }

  void sweep() {
    TimePoint now = engine.now();
    std::vector<StreamId> dead;
    for (auto& [id, s] : streams) {
      if (s.state != State::kOpen) continue;
      if (net && !s.inbound) ensure_link(s.peer);  // (re)connect the fast path after kLinkRetry
      Duration idle = now - s.last_heard;
      if (idle > config.idle_timeout) {
        dead.push_back(id);
      } else if (!s.probing && (idle > config.idle_timeout / 3 || (!s.writable.empty() && s.credit() == 0))) {
        probe(s);
      }
    }
    for (auto& id : dead)
      if (Stream* s = find(id)) peer_closed(*s);
  }

  // An empty stream_write: proves the peer still has the stream and fetches its credit.
  void probe(Stream& s) {
    s.probing = true;
    RpcOptions opts;
    opts.timeout = std::min<Duration>(config.idle_timeout / 3, 2s);
    opts.attempts = 4;
    engine.request(s.peer, Method::kStreamData, streams::encode_data(s.id, s.send_off, {}),
                   [this, id = s.id, g = guard()](RpcResult&& r) {
                     if (g.expired()) return;
                     Stream* s = find(id);
                     if (!s) return;
                     s->probing = false;
                     if (r.ok()) {
                       if (auto a = streams::decode_ack(r.payload)) heard(*s, *a);
                     } else if (r.status == RpcStatus::kRemoteError && s->state == State::kOpen) {
                       peer_closed(*s);
                     }
                     flush();
                   }, opts);
  }

  void on_writable(const StreamId& id, std::function<void()> cb) {
    Stream* s = find(id);
    if (!s || s->state != State::kOpen || s->credit() > 0) return cb();
    s->writable.push_back(std::move(cb));
    if (!s->probing) probe(*s);
  }

  // ------------------------------------------------------------ fast path (docs/protocol.md 7.6)

  Link* link_for(const NodeId& peer) {
    auto it = link_of.find(peer);
    if (it == link_of.end()) return nullptr;
    auto l = links.find(it->second);
    return l != links.end() && l->second.ready ? &l->second : nullptr;
  }

  void ensure_link(const Contact& peer) {
    if (!net || link_of.count(peer.id) || connecting.count(peer.id) || links.size() >= kMaxLinks) return;
    auto r = retry_after.find(peer.id);
    if (r != retry_after.end()) {
      if (engine.now() < r->second) return;
      retry_after.erase(r);
    }
    uint64_t c = net->conn_connect(peer.endpoint);
    if (!c) return;
    Link& l = links[c];
    l.conn = c;
    l.peer = peer.id;
    l.expect = peer.key;
    connecting[peer.id] = c;
    send_hello(l);  // queued by the driver until the connection is up
  }

  void send_hello(Link& l) {
    engine.env().random(l.my_salt);
    Bytes h(kMagic, kMagic + 4);
    auto& pk = engine.identity().public_key();
    h.insert(h.end(), pk.begin(), pk.end());
    h.insert(h.end(), l.my_salt.begin(), l.my_salt.end());
    h.push_back(crypto_aead_aes256gcm_is_available() ? 1 : 0);
    net->conn_send(l.conn, h);
  }

  // Direction-separated keys: BLAKE2b(pair key || initiator salt || responder salt || direction).
  void derive(Link& l, const crypto::SessionKey& pair) {
    auto k = [&](uint8_t dir, crypto::SessionKey& out) {
      crypto_generichash_state st;
      crypto_generichash_init(&st, nullptr, 0, out.size());
      crypto_generichash_update(&st, pair.data(), pair.size());
      const auto& si = l.inbound ? l.peer_salt : l.my_salt;
      const auto& sr = l.inbound ? l.my_salt : l.peer_salt;
      crypto_generichash_update(&st, si.data(), si.size());
      crypto_generichash_update(&st, sr.data(), sr.size());
      crypto_generichash_update(&st, &dir, 1);
      crypto_generichash_final(&st, out.data(), out.size());
    };
    k(l.inbound ? 2 : 1, l.tx);
    k(l.inbound ? 1 : 2, l.rx);
    l.keys = true;
  }

  void link_open(uint64_t c, bool inbound) {
    if (!inbound) return;  // ours: the hello is already queued
    if (links.size() >= kMaxLinks) return net->conn_close(c);
    Link& l = links[c];
    l.conn = c;
    l.inbound = true;
  }

  void drop_link(uint64_t c, bool bad) {
    auto it = links.find(c);
    if (it == links.end()) return;
    if (bad) ++fstats.bad_records;
    ++fstats.links_failed;
    NodeId peer = it->second.peer;
    bool was = it->second.ready;
    if (!it->second.inbound) retry_after[peer] = engine.now() + kLinkRetry;
    links.erase(it);
    auto lo = link_of.find(peer);
    if (lo != link_of.end() && lo->second == c) link_of.erase(lo);
    auto co = connecting.find(peer);
    if (co != connecting.end() && co->second == c) connecting.erase(co);
    if (!was) return;
    // Whatever was on this connection and not acknowledged goes again, over another link or UDP.
    for (auto& [id, s] : streams) {
      if (s.peer.id != peer) continue;
      for (auto& [off, ch] : s.unacked)
        if (ch.via == c) ch.in_flight = false, ch.via = 0;
      if (s.state == State::kOpen || s.state == State::kClosing) pump(s);
    }
  }

  void link_closed(uint64_t c) { drop_link(c, false); }

  void bad_link(uint64_t c) {
    net->conn_close(c);
    drop_link(c, true);
  }

  void link_data(uint64_t c, ByteView bytes) {
    auto it = links.find(c);
    if (it == links.end()) return;
    Link* l = &it->second;
    if (l->in_pos > 0 && l->in_pos == l->in.size()) l->in.clear(), l->in_pos = 0;
    l->in.insert(l->in.end(), bytes.begin(), bytes.end());
    while (true) {
      it = links.find(c);
      if (it == links.end()) return;
      l = &it->second;
      size_t avail = l->in.size() - l->in_pos;
      const uint8_t* p = l->in.data() + l->in_pos;
      if (!l->keys) {
        if (avail < kHelloSize) break;
        if (!on_hello(*l, p)) return bad_link(c);
        l->in_pos += kHelloSize;
        continue;
      }
      if (avail < 4) break;
      size_t len = (size_t(p[0]) << 24) | (size_t(p[1]) << 16) | (size_t(p[2]) << 8) | p[3];
      if (len < 16 + 1 || len > kMaxRecord + 16) return bad_link(c);
      if (avail < 4 + len) break;
      if (!open_record(*l, p + 4, len)) return bad_link(c);
      l->in_pos += 4 + len;
      if (!on_record(c, scratch)) return;
    }
    if (l->in_pos > 0 && l->in_pos * 2 > l->in.size()) {
      l->in.erase(l->in.begin(), l->in.begin() + static_cast<long>(l->in_pos));
      l->in_pos = 0;
    }
  }

  bool on_hello(Link& l, const uint8_t* p) {
    if (std::memcmp(p, kMagic, 4) != 0) return false;
    PublicKey pk;
    std::memcpy(pk.data(), p + 4, 32);
    std::memcpy(l.peer_salt.data(), p + 36, 32);
    bool peer_aes = p[68] == 1;
    if (!l.inbound && pk != l.expect) return false;
    crypto::SessionKey pair;
    if (!crypto::derive_session_key(engine.identity(), pk, pair, !l.inbound)) return false;
    l.aes = peer_aes && crypto_aead_aes256gcm_is_available();
    if (l.inbound) {
      l.peer = Identity::id_of(pk);
      send_hello(l);
    }
    derive(l, pair);
    if (!l.inbound) {
      // The responder proved nothing yet, but only the holder of its secret key can read what we send.
      connecting.erase(l.peer);
      l.ready = true;
      link_of[l.peer] = l.conn;
      ++fstats.links_up;
      for (auto& [id, s] : streams)
        if (s.peer.id == l.peer && (s.state == State::kOpen || s.state == State::kClosing)) pump(s);
    }
    return true;
  }

  void nonce(const Link& l, uint64_t ctr, uint8_t* n) {
    std::memset(n, 0, 24);
    for (int i = 0; i < 8; ++i) n[i] = uint8_t(ctr >> (8 * i));
    (void)l;
  }

  bool open_record(Link& l, const uint8_t* c, size_t len) {
    uint8_t n[24];
    nonce(l, l.rx_ctr++, n);
    scratch.resize(len - 16);
    unsigned long long out = 0;
    int rc = l.aes ? crypto_aead_aes256gcm_decrypt(scratch.data(), &out, nullptr, c, len, nullptr, 0, n, l.rx.data())
                   : crypto_aead_xchacha20poly1305_ietf_decrypt(scratch.data(), &out, nullptr, c, len, nullptr, 0, n,
                                                                l.rx.data());
    if (rc != 0) return false;
    scratch.resize(out);
    if (l.inbound && !l.ready) {  // the initiator proved it holds the pair key
      l.ready = true;
      link_of[l.peer] = l.conn;
      ++fstats.links_up;
    }
    return true;
  }

  void send_record(Link& l, ByteView plain) {
    uint8_t n[24];
    nonce(l, l.tx_ctr++, n);
    size_t len = plain.size() + 16;
    Bytes out(4 + len);
    out[0] = uint8_t(len >> 24), out[1] = uint8_t(len >> 16), out[2] = uint8_t(len >> 8), out[3] = uint8_t(len);
    unsigned long long clen = 0;
    if (l.aes)
      crypto_aead_aes256gcm_encrypt(out.data() + 4, &clen, plain.data(), plain.size(), nullptr, 0, nullptr, n, l.tx.data());
    else
      crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + 4, &clen, plain.data(), plain.size(), nullptr, 0, nullptr,
                                                 n, l.tx.data());
    net->conn_send(l.conn, out);
  }

  void send_record_data(Link& l, const StreamId& id, uint64_t off, ByteView data) {
    Bytes r;
    r.reserve(1 + 32 + 8 + data.size());
    r.push_back(kRecData);
    r.insert(r.end(), id.begin(), id.end());
    put64(r, off);
    r.insert(r.end(), data.begin(), data.end());
    fstats.bytes_sent += data.size();
    send_record(l, r);
  }

  void send_simple(Link& l, uint8_t type, const StreamId& id, std::initializer_list<uint64_t> vals) {
    Bytes r{type};
    r.insert(r.end(), id.begin(), id.end());
    for (auto v : vals) put64(r, v);
    send_record(l, r);
  }

  // False when the connection was closed.
  bool on_record(uint64_t conn, const Bytes& r) {
    Link& l = links.at(conn);
    if (r.size() < 1 + 32) {
      bad_link(conn);
      return false;
    }
    StreamId id;
    std::memcpy(id.data(), r.data() + 1, 32);
    const uint8_t* b = r.data() + 33;
    size_t n = r.size() - 33;
    switch (r[0]) {
      case kRecData: {
        if (n < 8) break;
        uint64_t off = get64(b);
        ByteView data{b + 8, n - 8};
        fstats.bytes_received += data.size();
        Stream* s = find_from(id, l.peer);
        if (!s || s->state == State::kClosing || s->state == State::kPeerClosed ||
            s->rx.add(off, data) == RecvBuffer::Add::kBeyondWindow) {
          send_simple(l, kRecError, id, {off});
          return true;
        }
        s->last_heard = engine.now();
        s->advertised = std::max(s->advertised, s->rx.limit());
        send_simple(l, kRecAck, id, {off, s->rx.received(), s->rx.limit()});
        return true;
      }
      case kRecAck: {
        if (n != 24) break;
        uint64_t off = get64(b);
        Stream* s = find_from(id, l.peer);
        if (!s) return true;
        auto c = s->unacked.find(off);
        if (c == s->unacked.end() || c->second.via != conn) return true;
        s->unacked.erase(c);
        heard(*s, {get64(b + 8), get64(b + 16)});
        complete_writes(*s);
        if (s->state == State::kClosing && s->unacked.empty()) send_close(*s);
        else pump(*s);
        return true;
      }
      case kRecWindow: {
        if (n != 8) break;
        Stream* s = find_from(id, l.peer);
        if (s && s->state == State::kOpen) {
          heard(*s, {0, get64(b)});
          pump(*s);
        }
        return true;
      }
      case kRecError: {
        if (n != 8) break;
        Stream* s = find_from(id, l.peer);
        if (!s) return true;
        auto c = s->unacked.find(get64(b));
        if (c == s->unacked.end() || c->second.via != conn) return true;
        peer_closed(*s);
        return true;
      }
      default:
        break;
    }
    bad_link(conn);
    return false;
  }

  bool fast_path(const StreamId& id) {
    Stream* s = find(id);
    return s && link_for(s->peer.id);
  }

  std::map<StreamId, StreamInfo> list() const {
    std::map<StreamId, StreamInfo> out;
    for (auto& [id, s] : streams)
      if (s.state == State::kOpen || (s.state == State::kPeerClosed && s.rx.unread() > 0))
        out.emplace(id, StreamInfo{s.peer.id, s.rx.unread()});
    return out;
  }
};

Streams::Streams(Engine& engine, Dht& dht, StreamsConfig config)
    : impl_(std::make_unique<Impl>(engine, dht, config)) {}
Streams::~Streams() = default;

void Streams::open(const NodeId& peer, std::function<void(std::optional<StreamId>)> cb) {
  impl_->open(peer, std::move(cb));
  impl_->flush();
}
std::map<StreamId, StreamInfo> Streams::list() const { return impl_->list(); }
void Streams::write(const StreamId& id, ByteView data, std::function<void(std::optional<size_t>)> cb) {
  impl_->write(id, data, std::move(cb));
  impl_->flush();
}
void Streams::on_writable(const StreamId& id, std::function<void()> cb) {
  impl_->on_writable(id, std::move(cb));
  impl_->flush();
}
std::optional<Bytes> Streams::read(const StreamId& id, std::optional<size_t> max) {
  auto out = impl_->read(id, max);
  impl_->flush();
  return out;
}
void Streams::close(const StreamId& id, std::function<void(bool)> cb) {
  impl_->close(id, std::move(cb));
  impl_->flush();
}
void Streams::remember(const Contact& c) { impl_->resolver.remember(c); }
StreamsFastPathStats Streams::fast_path_stats() const { return impl_->fstats; }
bool Streams::fast_path(const StreamId& id) const { return impl_->fast_path(id); }

}  // namespace storjnet
