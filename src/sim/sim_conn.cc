#include "sim/sim_conn.h"

#include <algorithm>
#include <vector>

namespace storjnet::sim {

namespace {
// What the trace hash records of a connection event (besides the time and, for data, the bytes).
uint64_t what(uint8_t kind, uint64_t id) { return uint64_t(kind) << 56 ^ id; }
constexpr uint8_t kTraceOpen = 1, kTraceData = 2, kTraceClosed = 3;
}  // namespace

void Conns::at(TimePoint t, Event ev) {
  uint64_t token = next_token_++;
  pending_.emplace(token, std::move(ev));
  host_.schedule(t, token);
}

Conns::End* Conns::find(uint64_t id) {
  auto it = ends_.find(id);
  return it == ends_.end() ? nullptr : &it->second;
}

Duration Conns::jitter() {
  auto j = host_.link().jitter.count();
  return j > 0 ? Duration(static_cast<int64_t>(rng_.below(static_cast<uint64_t>(j) + 1))) : Duration(0);
}

// ------------------------------------------------------------ node calls
uint64_t Conns::connect(uint32_t n, const Endpoint& to) {
  uint64_t id = next_id_++;
  End& e = ends_[id];
  e.node = n;
  e.remote = to;
  TimePoint now = host_.now();
  auto dst = host_.route(n, to);
  if (!dst || !host_.alive(dst->first) || host_.cut(n, dst->first)) {  // nobody answers the SYN
    at(now + model_.connect_timeout, {Kind::kFail, id, 0, n});
    return id;
  }
  e.latency = host_.latency(n, dst->first);
  if (refusing_.count(dst->first) || !host_.listener(dst->first)) {  // a reset answers the SYN
    at(now + 2 * e.latency, {Kind::kFail, id, 0, n});
    return id;
  }
  Event syn{Kind::kSyn, 0, id, dst->first};
  syn.remote = dst->second;
  at(now + e.latency, std::move(syn));
  return id;
}

void Conns::send(uint32_t n, uint64_t id, Bytes bytes) {
  End* e = find(id);
  if (!e || e->node != n || e->broken || bytes.empty()) return;
  e->queued += bytes.size();
  e->queue.push_back(std::move(bytes));
  pump(id);
}

size_t Conns::queued(uint32_t n, uint64_t id) const {
  auto it = ends_.find(id);
  return it == ends_.end() || it->second.node != n ? 0 : it->second.queued;
}

// The bytes on the wire still arrive, then the FIN; what was queued behind them is dropped (as the real
// driver drops its queue). A dead node's ends close without a word.
void Conns::close(uint32_t n, uint64_t id) {
  End* e = find(id);
  if (!e || e->node != n) return;
  if (e->peer && !e->broken && usable(n))
    at(std::max(host_.now() + e->latency, e->last_arrival), {Kind::kFin, e->peer, id, e->peer_node});
  ends_.erase(id);
}

void Conns::refuse(uint32_t n, bool r) {
  if (r) refusing_.insert(n);
  else refusing_.erase(n);
}

size_t Conns::count(uint32_t n) const {
  return static_cast<size_t>(std::count_if(ends_.begin(), ends_.end(), [n](auto& e) { return e.second.node == n; }));
}

void Conns::forget(uint32_t n) {
  std::erase_if(ends_, [n](auto& e) { return e.second.node == n; });
}

size_t Conns::reset(uint32_t n) {
  std::vector<uint64_t> mine;
  for (auto& [id, e] : ends_)
    if (e.node == n && !e.broken) mine.push_back(id);
  TimePoint now = host_.now();
  for (uint64_t id : mine) {
    End& e = ends_.at(id);
    e.broken = true;
    ++host_.stats().conns_reset;
    at(now, {Kind::kReset, id, 0, n});
    if (End* p = e.peer ? find(e.peer) : nullptr) {
      p->broken = true;
      at(now + e.latency, {Kind::kReset, e.peer, 0, e.peer_node});
    }
  }
  return mine.size();
}

uint64_t Conns::inject(const Endpoint& from, uint32_t to, Bytes data, Duration delay) {
  uint64_t id = next_id_++;
  End& e = ends_[id];
  e.node = kStranger;
  e.remote = from;
  e.latency = delay;
  e.queued = data.size();
  if (!data.empty()) e.queue.push_back(std::move(data));
  Event syn{Kind::kSyn, 0, id, to};
  syn.remote = from;
  at(host_.now() + delay, std::move(syn));
  return id;
}

// ------------------------------------------------------------ events
void Conns::fire(uint64_t token) {
  auto node = pending_.extract(token);
  if (node.empty()) return;
  Event& ev = node.mapped();
  switch (ev.kind) {
    case Kind::kSyn: return on_syn(ev);
    case Kind::kSynAck: return on_syn_ack(ev.end);
    case Kind::kFail:
      if (find(ev.end)) {
        ++host_.stats().conns_failed;
        closed(ev.end);
      }
      return;
    case Kind::kSegment: return on_segment(ev);
    case Kind::kAck:
      if (End* a = find(ev.end); a && usable(a->node) && !a->broken) {
        a->in_flight -= std::min(a->in_flight, ev.n);
        pump(ev.end);
      }
      return;
    case Kind::kFin: return on_fin(ev.end);
    case Kind::kReset:
      if (find(ev.end)) closed(ev.end);
      return;
    case Kind::kResume: return deliver(ev.end);
  }
}

void Conns::on_syn(const Event& ev) {
  End* a = find(ev.from);
  if (!a) return;  // the opener gave up already
  uint32_t dst = ev.node;
  TimePoint now = host_.now();
  if (!host_.alive(dst) || host_.cut(a->node, dst)) {
    at(std::max(now, now + model_.connect_timeout - a->latency), {Kind::kFail, ev.from, 0, a->node});
    return;
  }
  ConnListener* l = host_.listener(dst);
  if (refusing_.count(dst) || !l) {
    at(now + a->latency, {Kind::kFail, ev.from, 0, a->node});
    return;
  }
  uint64_t id = next_id_++;
  End& b = ends_[id];
  b.node = dst;
  b.peer = ev.from;
  b.peer_node = a->node;
  b.inbound = b.open = true;
  b.remote = ev.remote;
  b.latency = a->latency;
  a->peer = id;
  a->peer_node = dst;
  at(now + a->latency, {Kind::kSynAck, ev.from, 0, a->node});
  host_.trace(what(kTraceOpen, id), {});
  l->on_conn_open(id, true, ev.remote);
}

void Conns::on_syn_ack(uint64_t id) {
  End* e = find(id);
  if (!e || !usable(e->node)) return;  // closed meanwhile (its FIN is on the way), or a dead node
  e->open = true;
  ++host_.stats().conns_opened;
  host_.trace(what(kTraceOpen, id), {});
  if (ConnListener* l = listener_of(e->node)) l->on_conn_open(id, false, e->remote);
  pump(id);
}

void Conns::pump(uint64_t id) {
  End* e = find(id);
  if (!e || !e->open || !e->peer || e->broken || !usable(e->node)) return;
  TimePoint now = host_.now();
  while (e->queued > 0 && e->in_flight < model_.window) {
    if (host_.cut(e->node, e->peer_node)) return reset_pair(id, now + model_.cut_timeout);
    size_t n = std::min({model_.segment, model_.window - e->in_flight, e->queued});
    Bytes seg;
    if (e->queue.front().size() == n) {
      seg = std::move(e->queue.front());
      e->queue.pop_front();
    } else {
      seg.reserve(n);
      while (seg.size() < n) {
        Bytes& f = e->queue.front();
        size_t take = std::min(n - seg.size(), f.size());
        seg.insert(seg.end(), f.begin(), f.begin() + static_cast<long>(take));
        if (take == f.size()) e->queue.pop_front();
        else f.erase(f.begin(), f.begin() + static_cast<long>(take));
      }
    }
    e->queued -= n;
    e->in_flight += n;
    uint64_t bw = std::max<uint64_t>(model_.bandwidth, 1);
    e->wire_free = std::max(now, e->wire_free) + Duration(static_cast<int64_t>(n * 1'000'000'000ull / bw));
    TimePoint arrive = e->wire_free + e->latency + jitter();
    double loss = host_.link().loss;
    for (int losses = 0; loss > 0 && rng_.uniform() < loss;) {
      if (++losses > model_.max_losses) return reset_pair(id, arrive);
      arrive += model_.rto;
    }
    e->last_arrival = arrive = std::max(arrive, e->last_arrival);  // in order: never overtakes
    at(arrive, {Kind::kSegment, e->peer, id, e->peer_node, 0, std::move(seg)});
  }
  // This end's queue drained below half the high-water mark: it reads again.
  if (e->paused && e->queued <= model_.high_water / 2) {
    e->paused = false;
    at(now, {Kind::kResume, id, 0, e->node});
  }
}

void Conns::on_segment(Event& ev) {
  if (!usable(ev.node)) return;  // a dead node: a black hole
  TimePoint now = host_.now();
  End* b = find(ev.end);
  if (!b) {  // a live node without this end (restarted, or closed it): a reset answers
    if (End* a = find(ev.from); a && !a->broken) {
      a->broken = true;
      ++host_.stats().conns_reset;
      at(now + a->latency, {Kind::kReset, ev.from, 0, a->node});
    }
    return;
  }
  if (b->broken) return;
  if (host_.cut(b->node, b->peer_node)) return reset_pair(ev.end, now + model_.cut_timeout);
  b->inbox.push_back(std::move(ev.bytes));
  deliver(ev.end);
}

void Conns::deliver(uint64_t id) {
  for (;;) {
    End* b = find(id);
    if (!b || b->broken) return;
    if (b->paused || b->inbox.empty()) {
      if (b->fin_pending && b->inbox.empty()) on_fin(id);
      return;
    }
    Bytes seg = std::move(b->inbox.front());
    b->inbox.pop_front();
    // The window reopens when the sender hears that these bytes were read.
    if (b->peer) at(host_.now() + b->latency, {Kind::kAck, b->peer, 0, b->peer_node, seg.size()});
    host_.stats().conn_bytes += seg.size();
    ++host_.stats().conn_segments;
    host_.trace(what(kTraceData, id), seg);
    if (ConnListener* l = listener_of(b->node)) l->on_conn_data(id, seg);
    b = find(id);
    if (b && b->queued > model_.high_water) b->paused = true;  // our answers pile up: stop reading
  }
}

void Conns::on_fin(uint64_t id) {
  End* b = find(id);
  if (!b || !usable(b->node)) return;
  if (!b->inbox.empty()) {
    b->fin_pending = true;  // after the bytes before it are read
    return;
  }
  ++host_.stats().conns_closed;
  closed(id);
}

void Conns::closed(uint64_t id) {
  End* e = find(id);
  if (!e) return;
  uint32_t n = e->node;
  ends_.erase(id);
  if (!usable(n)) return;
  host_.trace(what(kTraceClosed, id), {});
  if (ConnListener* l = listener_of(n)) l->on_conn_closed(id);
}

void Conns::reset_pair(uint64_t id, TimePoint when) {
  End* e = find(id);
  if (!e || e->broken) return;
  e->broken = true;
  ++host_.stats().conns_reset;
  at(when, {Kind::kReset, id, 0, e->node});
  if (End* p = e->peer ? find(e->peer) : nullptr) {
    p->broken = true;
    at(when, {Kind::kReset, e->peer, 0, e->peer_node});
  }
}

}  // namespace storjnet::sim
