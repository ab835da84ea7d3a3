// Streams over the engine's authenticated, encrypted RPC (docs/protocol.md, "7. Streams"): stream_open
// creates the stream at both ends, stream_write requests carry data at explicit stream offsets (so
// retransmitted and reordered chunks are placed exactly once), their answers carry the receiver's
// credit (read offset + window), stream_window pushes credit when the application reads, and stream_close
// ends the stream once the closer's data is acknowledged.
#include "storjnet/streams.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "engine/engine.h"
#include "dht/resolver.h"
#include "storjnet/dht.h"
#include "streams/codec.h"
#include "streams/links.h"
#include "streams/recv_buffer.h"

namespace storjnet {

using streams::Links;
using streams::Record;
using streams::RecordType;
using streams::RecvBuffer;

namespace {
constexpr size_t kMaxInFlightChunks = 16;       // per stream: 512 KiB of unacknowledged data on the wire
constexpr Duration kDataTimeout = 3s;           // one stream_write request, retries included
constexpr int kDataAttempts = 8;
constexpr Duration kAttemptInterval = 250ms;
constexpr Duration kMaxSweep = 250ms;           // idle check / credit probe period
// The receiver's answer to data it cannot hold right now (node or network budget, chunks ahead): the writer
// keeps the data and sends it again later, instead of giving the stream up.
constexpr std::string_view kBusy = "receive buffers full";

}  // namespace

struct Streams::Impl final : Links::Events {
  enum class State { kOpening, kOpen, kClosing, kPeerClosed };
  struct Chunk {
    Bytes data;
    bool in_flight = false;
    uint64_t via = 0;  // connection carrying it (0: UDP RPC)
    bool rpc = false;  // refused on a connection: goes over stream_write, which says why
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
    Endpoint::Prefix net;  // the peer's network, for the per-network budgets
    RecvBuffer rx;
    uint64_t advertised = 0;          // highest limit we told the peer
    uint64_t send_off = 0;            // bytes accepted from the application
    uint64_t peer_limit = 0;          // we may send bytes below this offset
    std::map<uint64_t, Chunk> unacked;
    size_t in_flight = 0;
    std::deque<Write> writes;
    std::vector<std::function<void()>> writable;
    std::vector<std::function<void()>> readable;
    TimePoint last_heard{};
    bool probing = false;
    std::function<void(bool)> close_cb;
    TimerId close_timer;
    TimePoint close_deadline{};
    TimePoint backoff_until{};        // the peer's buffers were full: no stream_write before this

    Stream(size_t window, const StreamsConfig& c) : rx(window, c.min_chunk_charge, c.max_chunks_ahead) {}
    uint64_t credit() const { return peer_limit > send_off ? peer_limit - send_off : 0; }
  };

  Engine& engine;
  Dht& dht;
  StreamsConfig config;
  Resolver resolver;
  std::map<StreamId, Stream> streams;
  std::unordered_map<NodeId, size_t> inbound_per_peer;
  std::unordered_map<Endpoint::Prefix, size_t> inbound_per_prefix;
  std::unordered_map<Endpoint::Prefix, size_t> buffered_per_prefix;  // RecvBuffer::charged() summed
  StreamsBudgetStats budget;
  std::vector<std::function<void()>> deferred;
  std::function<void(const StreamId&, const NodeId&)> inbound_watcher;  // Streams::on_inbound
  TimerId sweep_timer;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  Links links{engine, *this, config};  // fast path; last, so it goes first (its connections close silently)

  Impl(Engine& e, Dht& d, StreamsConfig c) : engine(e), dht(d), config(c), resolver(d) {
    engine.set_handler(Method::kStreamOpen, [this](const IncomingRequest& q, const Reply& r) { on_open(q, r); flush(); });
    engine.set_handler(Method::kStreamData, [this](const IncomingRequest& q, const Reply& r) { on_data(q, r); flush(); });
    engine.set_handler(Method::kStreamClose, [this](const IncomingRequest& q, const Reply& r) { on_close(q, r); flush(); });
    engine.set_handler(Method::kStreamWindow, [this](const IncomingRequest& q, const Reply&) { on_window(q); flush(); });
    engine.set_rate_limited(Method::kStreamOpen);
  }
  ~Impl() override {
    *alive = false;
    for (auto m : {Method::kStreamOpen, Method::kStreamData, Method::kStreamClose, Method::kStreamWindow})
      engine.set_handler(m, nullptr);
    engine.cancel(sweep_timer);
    for (auto& [id, s] : streams) engine.cancel(s.close_timer);
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
    fire_readable(s);  // its reads answer null from now on
    if (s.inbound) {
      auto p = inbound_per_peer.find(s.peer.id);
      if (p != inbound_per_peer.end() && --p->second == 0) inbound_per_peer.erase(p);
      auto n = inbound_per_prefix.find(s.net);
      if (n != inbound_per_prefix.end() && --n->second == 0) inbound_per_prefix.erase(n);
    }
    uncharge(s, s.rx.charged());
    streams.erase(it);
  }

  Stream& create(const StreamId& id, const Contact& peer, bool inbound, State st) {
    auto [it, fresh] = streams.try_emplace(id, config.receive_buffer, config);
    Stream& s = it->second;
    s.id = id;
    s.peer = peer;
    s.net = peer.endpoint.prefix();
    s.inbound = inbound;
    s.state = st;
    s.last_heard = engine.now();
    s.advertised = s.rx.limit();
    if (inbound) ++inbound_per_peer[peer.id], ++inbound_per_prefix[s.net];
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
        links.ensure(s->peer);
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
    auto net = inbound_per_prefix.find(req.from.endpoint.prefix());
    if (net != inbound_per_prefix.end() && net->second >= config.max_streams_per_prefix) {
      ++budget.refused_prefix_streams;
      return reply.error("too many streams from this network");
    }
    Stream& s = create(b->id, req.from, true, State::kOpen);
    s.peer_limit = b->window;
    resolver.remember(req.from);
    reply.ok(streams::encode_window_size(static_cast<uint32_t>(config.receive_buffer)));
    if (inbound_watcher)
      deferred.push_back([this, id = b->id, peer = req.from.id, g = guard()] {
        if (!g.expired() && inbound_watcher && find(id)) inbound_watcher(id, peer);
      });
  }

  // ------------------------------------------------------------ write (sender side)

  void write(const StreamId& id, ByteView data, std::function<void(std::optional<size_t>)> cb) {
    Stream* s = find(id);
    if (!s || s->state != State::kOpen) return cb(std::nullopt);
    size_t n = static_cast<size_t>(std::min<uint64_t>(s->credit(), data.size()));
    if (n == 0) return cb(0);
    const size_t chunk = links.ready(s->peer.id) ? Links::kMaxData : streams::kMaxChunk;
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
    uint64_t conn = links.ready(s.peer.id);
    if (conn) {
      for (auto& [off, c] : s.unacked) {
        if (c.in_flight || c.rpc) continue;
        c.in_flight = true;
        c.via = conn;
        links.send(conn, Record::data_at(s.id, off, c.data));
      }
    }
    if (engine.now() < s.backoff_until) return;
    for (auto it = s.unacked.begin(); it != s.unacked.end(); ++it) {
      auto& [off, c] = *it;
      if (s.in_flight >= kMaxInFlightChunks) break;
      if (c.in_flight || (conn && !c.rpc)) continue;
      if (c.data.size() > streams::kMaxChunk) {  // written for the fast path, now going over UDP
        Bytes rest(c.data.begin() + static_cast<long>(streams::kMaxChunk), c.data.end());
        c.data.resize(streams::kMaxChunk);
        s.unacked.emplace(off + streams::kMaxChunk, Chunk{std::move(rest), false, 0, c.rpc});
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
    } else if (r.status == RpcStatus::kRemoteError && r.error == kBusy) {
      s->backoff_until = engine.now() + kAttemptInterval;  // sent again by the sweep
      return;
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
    switch (receive(*s, b->offset, ByteView(b->data))) {
      case Received::kOk: break;
      case Received::kBeyondWindow: return reply.error("beyond window");
      case Received::kBusy: return reply.error(kBusy);
    }
    reply.ok(streams::encode_ack({s->rx.received(), s->rx.limit()}));
  }

  // Node-wide and per-network accounting of what the streams' receive buffers hold.
  void charge(Stream& s, size_t n) {
    budget.buffered += n;
    buffered_per_prefix[s.net] += n;
  }
  void uncharge(Stream& s, size_t n) {
    if (n == 0) return;
    budget.buffered -= n;
    auto it = buffered_per_prefix.find(s.net);
    if (it != buffered_per_prefix.end() && (it->second -= n) == 0) buffered_per_prefix.erase(it);
  }
  void recharge(Stream& s, size_t before) {
    size_t now = s.rx.charged();
    if (now > before) charge(s, now - before);
    else uncharge(s, before - now);
  }
  size_t buffered_by(const Endpoint::Prefix& net) const {
    auto it = buffered_per_prefix.find(net);
    return it == buffered_per_prefix.end() ? 0 : it->second;
  }

  enum class Received { kOk, kBeyondWindow, kBusy };
  // Places data from the peer (either path), within the stream's window and the node's budgets.
  template <class Data>
  Received receive(Stream& s, uint64_t offset, Data&& data) {
    s.last_heard = engine.now();
    size_t most = s.rx.max_charge(data.size());
    if (budget.buffered + most > config.max_buffered) {
      ++budget.refused_node_budget;
      return Received::kBusy;
    }
    if (buffered_by(s.net) + most > config.max_buffered_per_prefix) {
      ++budget.refused_prefix_budget;
      return Received::kBusy;
    }
    size_t before = s.rx.unread(), charged = s.rx.charged();
    auto added = s.rx.add(offset, std::forward<Data>(data));
    recharge(s, charged);
    if (added == RecvBuffer::Add::kBeyondWindow) return Received::kBeyondWindow;
    if (added == RecvBuffer::Add::kTooManyAhead) {
      ++budget.refused_chunks_ahead;
      return Received::kBusy;
    }
    s.advertised = std::max(s.advertised, s.rx.limit());
    if (s.rx.unread() > before) fire_readable(s);
    return Received::kOk;
  }

  void fire_readable(Stream& s) {
    for (auto& r : s.readable) deferred.push_back(std::move(r));
    s.readable.clear();
  }

  void on_readable(const StreamId& id, std::function<void()> cb) {
    Stream* s = find(id);
    if (!s || s->rx.unread() > 0 || (s->state != State::kOpen && s->state != State::kOpening)) return cb();
    s->readable.push_back(std::move(cb));
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
    size_t charged = s->rx.charged();
    if (s->state == State::kPeerClosed) {
      if (s->rx.unread() == 0) {
        erase(id);
        return std::nullopt;
      }
      Bytes out = s->rx.read(max);
      recharge(*s, charged);
      return out;
    }
    if (s->state != State::kOpen) return std::nullopt;
    Bytes out = s->rx.read(max);
    recharge(*s, charged);
    // Tell the writer about freed space when it is worth a datagram or the writer may be stalled.
    uint64_t limit = s->rx.limit();
    if (!out.empty() && (limit - s->advertised >= s->rx.window() / 4 || s->advertised <= s->rx.received())) {
      s->advertised = limit;
      if (uint64_t conn = links.ready(s->peer.id)) {
        links.send(conn, Record::window(id, limit));
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
    fire_readable(*s);
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
    fire_readable(s);
    size_t charged = s.rx.charged();
    s.rx.drop_ahead();
    recharge(s, charged);
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
      if (s.backoff_until != TimePoint{} && now >= s.backoff_until && (s.state == State::kOpen || s.state == State::kClosing)) {
        s.backoff_until = TimePoint{};
        pump(s);  // data the peer had no room for, again
      }
      if (s.state != State::kOpen) continue;
      if (links.available() && !s.inbound) links.ensure(s.peer);  // (re)connect the fast path after kLinkRetry
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

  void on_link_up(const NodeId& peer) override {
    for (auto& [id, s] : streams)
      if (s.peer.id == peer && (s.state == State::kOpen || s.state == State::kClosing)) pump(s);
  }

  // Whatever was on the connection and not acknowledged goes again, over another link or UDP.
  void on_link_down(uint64_t conn, const NodeId& peer) override {
    for (auto& [id, s] : streams) {
      if (s.peer.id != peer) continue;
      for (auto& [off, ch] : s.unacked)
        if (ch.via == conn) ch.in_flight = false, ch.via = 0;
      if (s.state == State::kOpen || s.state == State::kClosing) pump(s);
    }
  }

  void after_events() override { flush(); }

  void on_record(uint64_t conn, const NodeId& peer, const Record& r, Bytes data) override {
    Stream* s = find_from(r.id, peer);
    switch (r.type) {
      case RecordType::kData:
        if (!s || s->state == State::kClosing || s->state == State::kPeerClosed ||
            receive(*s, r.offset, std::move(data)) != Received::kOk)
          return links.send(conn, Record::error(r.id, r.offset));
        return links.send(conn, Record::ack(r.id, r.offset, s->rx.received(), s->rx.limit()));
      case RecordType::kAck: {
        if (!s) return;
        auto c = s->unacked.find(r.offset);
        if (c == s->unacked.end() || c->second.via != conn) return;
        s->unacked.erase(c);
        heard(*s, {r.received, r.limit});
        complete_writes(*s);
        if (s->state == State::kClosing && s->unacked.empty()) return send_close(*s);
        return pump(*s);
      }
      case RecordType::kWindow:
        if (s && s->state == State::kOpen) {
          heard(*s, {0, r.limit});
          pump(*s);
        }
        return;
      case RecordType::kError: {
        // Refused (unknown or closed stream, beyond window, or no room): the chunk goes again over
        // stream_write, whose answer says which, so a full peer only delays it.
        if (!s) return;
        auto c = s->unacked.find(r.offset);
        if (c == s->unacked.end() || c->second.via != conn) return;
        c->second.in_flight = false;
        c->second.via = 0;
        c->second.rpc = true;
        return pump(*s);
      }
    }
  }

  bool fast_path(const StreamId& id) {
    Stream* s = find(id);
    return s && links.ready(s->peer.id);
  }

  std::map<StreamId, StreamInfo> list() const {
    std::map<StreamId, StreamInfo> out;
    for (auto& [id, s] : streams)
      if (s.state == State::kOpen || (s.state == State::kPeerClosed && s.rx.unread() > 0))
        out.emplace(id, StreamInfo{s.peer.id, s.rx.unread(), s.rx.received(), s.send_off, s.inbound});
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
size_t Streams::writable(const StreamId& id) const {
  auto it = impl_->streams.find(id);
  if (it == impl_->streams.end() || it->second.state != Impl::State::kOpen) return 0;
  return static_cast<size_t>(it->second.credit());
}
void Streams::on_readable(const StreamId& id, std::function<void()> cb) {
  impl_->on_readable(id, std::move(cb));
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
void Streams::on_inbound(std::function<void(const StreamId&, const NodeId&)> cb) { impl_->inbound_watcher = std::move(cb); }
void Streams::remember(const Contact& c) { impl_->resolver.remember(c); }
StreamsFastPathStats Streams::fast_path_stats() const { return impl_->links.stats(); }
StreamsBudgetStats Streams::budget_stats() const { return impl_->budget; }
bool Streams::fast_path(const StreamId& id) const { return impl_->fast_path(id); }

}  // namespace storjnet
