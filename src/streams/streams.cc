// Streams over the engine's authenticated, encrypted RPC (docs/protocol.md, "7. Streams"): stream_open
// creates the stream at both ends, data goes at explicit stream offsets (so retransmitted and reordered
// chunks are placed exactly once), acknowledgements carry the receiver's credit (read offset + window),
// window updates push credit when the application reads, and stream_close ends the stream once the closer's
// data is acknowledged. This file: the streams' lifecycle, the node's budgets, and what either transport
// delivers (streams_impl.h).
#include "streams/streams_impl.h"

#include <algorithm>

#include "common/once.h"
#include "streams/codec.h"

namespace storjnet {

using streams::Links;

namespace {
constexpr Duration kAttemptInterval = 250ms;  // open and close RPCs: one attempt per this much time left
constexpr Duration kMaxSweep = 250ms;         // idle check / credit probe period
}  // namespace

Streams::Impl::Impl(Engine& e, Dht& d, StreamsConfig c) : engine(e), dht(d), config(c), resolver(d), scope(e.scope()) {
  engine.set_handler(Method::kStreamOpen, [this](const IncomingRequest& q, const Reply& r) { on_open(q, r); flush(); });
  engine.set_handler(Method::kStreamData, [this](const IncomingRequest& q, const Reply& r) { on_data(q, r); flush(); });
  engine.set_handler(Method::kStreamClose, [this](const IncomingRequest& q, const Reply& r) { on_close(q, r); flush(); });
  engine.set_handler(Method::kStreamWindow, [this](const IncomingRequest& q, const Reply&) { on_window(q); flush(); });
  engine.set_rate_limited(Method::kStreamOpen);
}

Streams::Impl::~Impl() {
  for (auto m : {Method::kStreamOpen, Method::kStreamData, Method::kStreamClose, Method::kStreamWindow})
    engine.set_handler(m, nullptr);
  // Nothing of ours runs from here on: the engine drops our RPCs and timers (an open waiting for its answer
  // answers nullopt as its Once dies). Then the streams and the completions not yet delivered go, while the
  // rest of Impl is intact: their Onces answer with their failure values, and a callback that looks at the
  // streams finds none.
  scope.end();
  auto dying = std::move(streams);
  streams.clear();
  auto undelivered = std::move(deferred);
  deferred.clear();
}

void Streams::Impl::flush() {
  while (!deferred.empty()) {
    auto run = std::move(deferred);
    deferred.clear();
    for (auto& f : run) f();
  }
}

Streams::Impl::Stream* Streams::Impl::find(const StreamId& id) {
  auto it = streams.find(id);
  return it == streams.end() ? nullptr : &it->second;
}

Streams::Impl::Stream* Streams::Impl::find_from(const StreamId& id, const NodeId& peer) {
  Stream* s = find(id);
  return s && s->peer.id == peer ? s : nullptr;
}

void Streams::Impl::erase(const StreamId& id) {
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
  uncharge(s, s.rx.buffer().charged());
  streams.erase(it);
}

Streams::Impl::Stream& Streams::Impl::create(const StreamId& id, const Contact& peer, bool inbound, State st) {
  auto [it, fresh] = streams.try_emplace(id, config.receive_buffer, config);
  Stream& s = it->second;
  s.id = id;
  s.peer = peer;
  s.net = peer.endpoint.prefix();
  s.inbound = inbound;
  s.state = st;
  s.last_heard = engine.now();
  if (inbound) ++inbound_per_peer[peer.id], ++inbound_per_prefix[s.net];
  arm_sweep();
  return s;
}

// ------------------------------------------------------------ open

void Streams::Impl::open(const NodeId& peer, std::function<void(std::optional<StreamId>)> user_cb) {
  Once<std::optional<StreamId>> cb(std::move(user_cb), std::nullopt);
  if (peer == engine.id() || streams.size() >= config.max_streams) return cb(std::nullopt);
  TimePoint deadline = engine.now() + config.open_timeout;
  // The resolver is ours: a resolve still waiting when Impl is destroyed is dropped with it.
  resolver.resolve(peer, [this, cb, deadline](std::optional<Contact> c) {
    Duration left = deadline - engine.now();
    if (!c || left <= Duration(0) || streams.size() >= config.max_streams) return cb(std::nullopt);
    StreamId id;
    do engine.env().random(id); while (streams.count(id));
    create(id, *c, false, State::kOpening);
    RpcOptions opts;
    opts.timeout = left;
    opts.attempts = static_cast<int>(std::clamp<int64_t>(left / kAttemptInterval, 1, 20));
    auto body = streams::encode_open({id, static_cast<uint32_t>(config.receive_buffer)});
    engine.request(scope, *c, Method::kStreamOpen, body, [this, id, cb](RpcResult&& r) {
      Stream* s = find(id);
      auto window = r.ok() ? streams::decode_window_size(r.payload) : std::nullopt;
      if (!s || s->state != State::kOpening || !window) {
        if (s && s->state == State::kOpening) erase(id);
        if (r.status == RpcStatus::kTimeout) resolver.forget(r.from.id);
        cb(std::nullopt);
        return flush();
      }
      s->state = State::kOpen;
      // Where it answered from: a punch may have moved it (behind a symmetric router, to the port the punch
      // found; the address its contact named is filtered). The stream's data and the next resolve go there.
      // Not a relay's address (an answer through a relay comes from there): the fast path would dial the relay.
      if (r.from.endpoint.valid() && !engine.via(r.from.key)) {
        s->peer = r.from;
        resolver.remember(r.from);
      }
      s->tx.raise_limit(*window);
      s->last_heard = engine.now();
      links.ensure(s->peer);
      cb(id);
      flush();
    }, opts);
  });
}

void Streams::Impl::on_open(const IncomingRequest& req, const Reply& reply) {
  auto b = streams::decode_open(req.payload);
  if (!b) return reply.error("bad stream_open body");
  if (Stream* s = find(b->id)) {
    // A retransmitted open is answered again; anything else is a collision.
    if (s->peer.id == req.from.id && s->inbound)
      return reply.ok(streams::encode_window_size(uint32_t(s->rx.buffer().window())));
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
  s.tx.raise_limit(b->window);
  resolver.remember(req.from);
  reply.ok(streams::encode_window_size(static_cast<uint32_t>(config.receive_buffer)));
  if (inbound_watcher)
    // Bound to the scope: a watcher that destroys the node stops the rest of this flush from calling it.
    deferred.push_back(scope.bind<>([this, id = b->id, peer = req.from.id] {
      if (inbound_watcher && find(id)) inbound_watcher(id, peer);
    }));
}

// ------------------------------------------------------------ send side

void Streams::Impl::write(const StreamId& id, ByteView data, std::function<void(std::optional<size_t>)> user_cb) {
  Once<std::optional<size_t>> cb(std::move(user_cb), std::nullopt);
  Stream* s = find(id);
  if (!s || s->state != State::kOpen) return cb(std::nullopt);
  uint64_t conn = links.ready(s->peer.id);
  size_t n = write_fast(*s, conn, data);
  n += s->tx.write(data.subspan(n), conn ? Links::kMaxData : streams::kMaxChunk);
  if (n == 0) return cb(0);
  s->writes.push_back({s->tx.written(), n, std::move(cb)});
  pump(*s);
}

// Over a usable connection `conn` (0: none) with nothing waiting to go before it, the bytes are sealed straight
// from the writer's buffer and sent at once, kept sealed until acknowledged (no copy first). Returns how many.
size_t Streams::Impl::write_fast(Stream& s, uint64_t conn, ByteView data) {
  if (!conn || !s.tx.nothing_unsent()) return 0;
  size_t n = static_cast<size_t>(std::min<uint64_t>(s.tx.credit(), data.size())), at = 0;
  while (at < n) {
    auto sealed = links.send_data(conn, s.id, s.tx.written(), data.subspan(at, std::min(Links::kMaxData, n - at)));
    size_t len = sealed ? sealed->size() : 0;
    if (!s.tx.write_sent(conn, std::move(sealed))) break;  // the connection is closing: the rest goes by pump()
    at += len;
  }
  return at;
}

void Streams::Impl::pump(Stream& s) {
  for (auto& t : s.tx.poll(links.ready(s.peer.id), engine.now(), streams::kMaxChunk)) {
    if (t.path == streams::kDatagram) send_chunk(s, t.offset, t.data);
    else links.send(t.path, streams::Record::data_at(s.id, t.offset, t.data));
  }
  if (auto at = s.tx.pace_at(); at && !s.pace_timer) {
    s.pace_timer = engine.schedule(scope, *at - engine.now(), [this, id = s.id] {
      Stream* st = find(id);
      if (!st) return;
      st->pace_timer = TimerId{};
      if (st->sending()) pump(*st);
      flush();
    });
  }
}

// An acknowledgement by either path.
void Streams::Impl::on_acked(Stream& s, uint64_t path, uint64_t offset, uint64_t limit, bool resent) {
  if (!s.tx.on_ack(path, offset, limit, resent, engine.now())) return;
  on_credit(s, limit);
  complete_writes(s);
  if (s.state == State::kClosing && s.tx.all_acked()) return send_close(s);
  pump(s);
  probe_if_stalled(s);
}

// Credit from either path: an acknowledgement, a window update, a probe's answer.
void Streams::Impl::on_credit(Stream& s, uint64_t limit) {
  s.last_heard = engine.now();
  s.tx.raise_limit(limit);
  if (s.tx.credit() > 0) fire_writable(s);
}

void Streams::Impl::fire_writable(Stream& s) {
  for (auto& w : s.writable) deferred.push_back(std::move(w));
  s.writable.clear();
}

void Streams::Impl::complete_writes(Stream& s) {
  uint64_t acked = s.tx.acked();
  while (!s.writes.empty() && s.writes.front().end <= acked) {
    deferred.push_back([cb = std::move(s.writes.front().cb), n = s.writes.front().n] { cb(n); });
    s.writes.pop_front();
  }
}

void Streams::Impl::fail_writes(Stream& s) {
  for (auto& w : s.writes) deferred.push_back([cb = std::move(w.cb)] { cb(std::nullopt); });
  s.writes.clear();
  s.tx.reset();
  fire_writable(s);
}

void Streams::Impl::on_writable(const StreamId& id, std::function<void()> cb) {
  Stream* s = find(id);
  if (!s || s->state != State::kOpen || s->tx.credit() > 0) return cb();
  s->writable.push_back(Once<>(std::move(cb)));  // runs when the node is destroyed first
  probe_if_stalled(*s);
}

// A writer waits for credit that nothing in flight will bring: data in flight is acknowledged with the peer's
// limit (or fails and goes again), so only a stream with everything acknowledged needs to ask. (Asking at
// every stall cost a datagram round trip per window on a busy fast path.)
void Streams::Impl::probe_if_stalled(Stream& s) {
  if (!s.probing && !s.writable.empty() && s.tx.credit() == 0 && s.tx.all_acked()) probe(s);
}

// ------------------------------------------------------------ receive side

// Node-wide and per-network accounting of what the streams' receive buffers hold (RecvBuffer::charged()).
void Streams::Impl::uncharge(Stream& s, size_t n) {
  if (n == 0) return;
  budget.buffered -= n;
  auto it = buffered_per_prefix.find(s.net);
  if (it != buffered_per_prefix.end() && (it->second -= n) == 0) buffered_per_prefix.erase(it);
}

// After a change to the stream's receive buffer, which charged `before` ahead of it.
void Streams::Impl::recharge(Stream& s, size_t before) {
  size_t now = s.rx.buffer().charged();
  if (now <= before) return uncharge(s, before - now);
  budget.buffered += now - before;
  buffered_per_prefix[s.net] += now - before;
}

size_t Streams::Impl::buffered_by(const Endpoint::Prefix& net) const {
  auto it = buffered_per_prefix.find(net);
  return it == buffered_per_prefix.end() ? 0 : it->second;
}

// Places data from either path, within the stream's window and the node's budgets.
template <class Data>
Streams::Impl::Received Streams::Impl::receive(Stream& s, uint64_t offset, Data&& data) {
  s.last_heard = engine.now();
  size_t most = s.rx.buffer().max_charge(data.size());
  if (budget.buffered + most > config.max_buffered) {
    ++budget.refused_node_budget;
    return Received::kBusy;
  }
  if (buffered_by(s.net) + most > config.max_buffered_per_prefix) {
    ++budget.refused_prefix_budget;
    return Received::kBusy;
  }
  size_t before = s.rx.buffer().unread(), charged = s.rx.buffer().charged();
  auto got = s.rx.on_data(offset, std::forward<Data>(data));
  recharge(s, charged);
  if (got == streams::RecvSide::Got::kBeyondWindow) return Received::kBeyondWindow;
  if (got == streams::RecvSide::Got::kTooManyAhead) {
    ++budget.refused_chunks_ahead;
    return Received::kBusy;
  }
  if (s.rx.buffer().unread() > before) fire_readable(s);
  return Received::kOk;
}
template Streams::Impl::Received Streams::Impl::receive<ByteView>(Stream&, uint64_t, ByteView&&);
template Streams::Impl::Received Streams::Impl::receive<Bytes>(Stream&, uint64_t, Bytes&&);

void Streams::Impl::fire_readable(Stream& s) {
  for (auto& r : s.readable) deferred.push_back(std::move(r));
  s.readable.clear();
}

void Streams::Impl::on_readable(const StreamId& id, std::function<void()> cb) {
  Stream* s = find(id);
  if (!s || s->rx.buffer().unread() > 0 || (s->state != State::kOpen && s->state != State::kOpening)) return cb();
  s->readable.push_back(Once<>(std::move(cb)));  // runs when the node is destroyed first
}

std::optional<Bytes> Streams::Impl::read(const StreamId& id, std::optional<size_t> max) {
  Stream* s = find(id);
  if (!s) return std::nullopt;
  if (s->state == State::kPeerClosed && s->rx.buffer().unread() == 0) {
    erase(id);
    return std::nullopt;
  }
  if (s->state != State::kOpen && s->state != State::kPeerClosed) return std::nullopt;
  size_t charged = s->rx.buffer().charged();
  std::vector<Bytes> spent;
  Bytes out = s->rx.read(max, &spent);
  for (auto& b : spent) links.recycle(std::move(b));
  recharge(*s, charged);
  if (s->state == State::kOpen && !out.empty())
    if (auto limit = s->rx.window_update()) send_window(*s, *limit);
  return out;
}

// ------------------------------------------------------------ close

void Streams::Impl::close(const StreamId& id, std::function<void(bool)> user_cb) {
  Once<bool> cb(std::move(user_cb), false);
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
  s->close_timer = engine.schedule(scope, config.close_timeout, [this, id] {
    if (Stream* s = find(id)) s->close_timer = TimerId{};
    finish_close(id);
    flush();
  });
  // The peer sees our data first: stream_close goes out once every written byte is acknowledged.
  if (s->tx.all_acked()) send_close(*s);
}

void Streams::Impl::send_close(Stream& s) {
  Duration left = std::max<Duration>(s.close_deadline - engine.now(), 100ms);
  RpcOptions opts;
  opts.timeout = left;
  opts.attempts = static_cast<int>(std::clamp<int64_t>(left / kAttemptInterval, 1, 12));
  engine.request(scope, s.peer, Method::kStreamClose, streams::encode_close(s.id), [this, id = s.id](RpcResult&&) {
    finish_close(id);
    flush();
  }, opts);
}

void Streams::Impl::finish_close(const StreamId& id) {
  Stream* s = find(id);
  if (!s || s->state != State::kClosing) return;
  fail_writes(*s);
  auto cb = std::move(s->close_cb);
  erase(id);
  if (cb) deferred.push_back([cb = std::move(cb)] { cb(true); });
}

void Streams::Impl::on_close(const IncomingRequest& req, const Reply& reply) {
  auto id = streams::decode_close(req.payload);
  if (!id) return reply.error("bad stream_close body");
  Stream* s = find_from(*id, req.from.id);
  if (s && s->state != State::kClosing && s->state != State::kPeerClosed) peer_closed(*s);
  reply.ok({});  // idempotent: a retransmitted close is answered too
}

// The peer closed the stream or vanished: our writes fail from now on; buffered bytes stay readable.
void Streams::Impl::peer_closed(Stream& s) {
  if (s.state == State::kClosing) {
    fail_writes(s);
    return send_close(s);  // still tell it (it may just have lost the stream); finish on answer/timeout
  }
  fail_writes(s);
  fire_readable(s);
  size_t charged = s.rx.buffer().charged();
  s.rx.drop_ahead();
  recharge(s, charged);
  if (s.state == State::kOpening || s.rx.buffer().unread() == 0) return erase(s.id);
  s.state = State::kPeerClosed;
}

// ------------------------------------------------------------ liveness and credit probes

void Streams::Impl::arm_sweep() {
  if (sweep_timer) return;
  Duration period = std::clamp<Duration>(config.idle_timeout / 4, 10ms, kMaxSweep);
  sweep_timer = engine.schedule(scope, period, [this] {
    sweep_timer = TimerId{};
    sweep();
    flush();
    if (!streams.empty()) arm_sweep();
  });
}

void Streams::Impl::sweep() {
  TimePoint now = engine.now();
  std::vector<StreamId> dead;
  for (auto& [id, s] : streams) {
    if (auto wake = s.tx.wake_at(); wake && now >= *wake && s.sending()) {
      s.tx.clear_backoff(now);
      pump(s);  // data the peer had no room for, again
    }
    if (s.state != State::kOpen) continue;
    if (links.available() && !s.inbound) links.ensure(s.peer);  // (re)connect the fast path after kLinkRetry
    Duration idle = now - s.last_heard;
    if (idle > config.idle_timeout) {
      dead.push_back(id);
    } else if (!s.probing && idle > config.idle_timeout / 3) {
      probe(s);
    } else {
      probe_if_stalled(s);
    }
  }
  for (auto& id : dead)
    if (Stream* s = find(id)) peer_closed(*s);
}

std::map<StreamId, StreamInfo> Streams::Impl::list() const {
  std::map<StreamId, StreamInfo> out;
  for (auto& [id, s] : streams) {
    auto& rx = s.rx.buffer();
    if (s.state == State::kOpen || (s.state == State::kPeerClosed && rx.unread() > 0))
      out.emplace(id, StreamInfo{
                          .peer = s.peer.id,
                          .unread = rx.unread(),
                          .received = rx.received(),
                          .sent = s.tx.written(),
                          .inbound = s.inbound,
                          .acked = s.tx.acked(),
                          .in_flight = s.tx.in_flight(),
                          .losses = s.tx.losses(),
                          .rate = s.tx.rate(),
                          .heard_ms_ago = std::chrono::duration_cast<std::chrono::milliseconds>(engine.now() -
                                                                                                s.last_heard)
                                              .count(),
                          .fast_path = links.ready(s.peer.id) != 0,
                          .route = engine.route(s.peer),
                      });
  }
  return out;
}

bool Streams::Impl::fast_path(const StreamId& id) {
  Stream* s = find(id);
  return s && links.ready(s->peer.id);
}

// ------------------------------------------------------------ the public API

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
  return static_cast<size_t>(it->second.tx.credit());
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
