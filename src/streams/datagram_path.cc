// The datagram path: stream data, acknowledgements and window updates as the engine's stream RPCs
// (docs/protocol.md 7): a stream_write request per chunk (its answer is the acknowledgement, or says why
// not), stream_window notifications, and empty stream_writes as liveness and credit probes. A thin adapter:
// what arrives goes to the stream's state machine through Streams::Impl (streams.cc).
#include <algorithm>

#include "engine/message.h"
#include "streams/codec.h"
#include "streams/streams_impl.h"
#include "wire/frame.h"

namespace storjnet {

namespace {
constexpr Duration kDataTimeout = 3s;  // one stream_write request, retries included
constexpr int kDataAttempts = 8;
// The receiver's answer to data it cannot hold right now (node or network budget, chunks ahead): the writer
// keeps the data and sends it again later, instead of giving the stream up.
constexpr std::string_view kBusy = "receive buffers full";
// A paced chunk of the smallest size goes as one datagram (no fragments): its stream_write request fits whole.
static_assert(streams::SendSide::kMinPacedChunk + streams::kIdSize + 8 + msg::kHeader <= wire::kMaxWhole);
}  // namespace

void Streams::Impl::send_chunk(Stream& s, uint64_t off, ByteView data) {
  RpcOptions opts;
  opts.timeout = kDataTimeout;
  opts.attempts = kDataAttempts;
  engine.request(scope, s.peer, Method::kStreamData, streams::encode_data(s.id, off, data),
                 [this, id = s.id, off](RpcResult&& r) {
                   on_data_result(id, off, r);
                   flush();
                 }, opts);
}

void Streams::Impl::on_data_result(const StreamId& id, uint64_t off, const RpcResult& r) {
  Stream* s = find(id);
  if (!s) return;
  if (r.ok()) {
    if (auto a = streams::decode_ack(r.payload))
      return on_acked(*s, streams::kDatagram, off, a->limit, r.resent);
  }
  bool busy = r.status == RpcStatus::kRemoteError && r.error == kBusy;
  if (!s->tx.on_datagram_failed(off, busy, engine.now())) return;
  if (r.ok() || (r.status == RpcStatus::kRemoteError && !busy)) {
    // A malformed answer, or the peer no longer knows the stream (closed, restarted, or refused).
    return peer_closed(*s);
  }
  if (busy) return;  // sent again by the sweep once the backoff ends
  if (engine.now() - s->last_heard > config.idle_timeout) return peer_closed(*s);  // vanished
  if (s->state == State::kClosing && s->tx.all_acked()) return send_close(*s);
  pump(*s);
}

void Streams::Impl::on_data(const IncomingRequest& req, const Reply& reply) {
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
  reply.ok(streams::encode_ack({s->rx.buffer().received(), s->rx.buffer().limit()}));
}

void Streams::Impl::on_window(const IncomingRequest& req) {
  auto b = streams::decode_window(req.payload);
  if (!b) return;
  Stream* s = find_from(b->id, req.from.id);
  if (s && s->state == State::kOpen) on_credit(*s, b->limit);
}

// Over the fast path when it is up, else as a stream_window notification.
void Streams::Impl::send_window(Stream& s, uint64_t limit) {
  if (uint64_t conn = links.ready(s.peer.id)) return links.send(conn, streams::Record::window(s.id, limit));
  engine.notify(s.peer, Method::kStreamWindow, streams::encode_window({s.id, limit}));
}

// An empty stream_write: proves the peer still has the stream and fetches its credit.
void Streams::Impl::probe(Stream& s) {
  s.probing = true;
  RpcOptions opts;
  opts.timeout = std::min<Duration>(config.idle_timeout / 3, 2s);
  opts.attempts = 4;
  engine.request(scope, s.peer, Method::kStreamData, streams::encode_data(s.id, s.tx.written(), {}),
                 [this, id = s.id](RpcResult&& r) {
                   Stream* s = find(id);
                   if (!s) return;
                   s->probing = false;
                   if (r.ok()) {
                     if (auto a = streams::decode_ack(r.payload)) on_credit(*s, a->limit);
                   } else if (r.status == RpcStatus::kRemoteError && s->state == State::kOpen) {
                     peer_closed(*s);
                   }
                   flush();
                 }, opts);
}

}  // namespace storjnet
