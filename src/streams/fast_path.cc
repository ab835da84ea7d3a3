// The fast path (docs/protocol.md 7.6): stream data, acknowledgements, window updates and refusals as
// records on the Links connections. A thin adapter: records go to the stream's state machine through
// Streams::Impl (streams.cc); a refused chunk goes again as a datagram, whose answer says why.
#include "streams/streams_impl.h"

namespace storjnet {

using streams::Record;
using streams::RecordType;

void Streams::Impl::on_link_up(const NodeId& peer) {
  for (auto& [id, s] : streams)
    if (s.peer.id == peer && s.sending()) pump(s);
}

// Whatever was on the connection and not acknowledged goes again, over another link or datagrams.
void Streams::Impl::on_link_down(uint64_t conn, const NodeId& peer) {
  for (auto& [id, s] : streams) {
    if (s.peer.id != peer) continue;
    s.tx.on_path_down(conn);
    if (s.sending()) pump(s);
  }
}

void Streams::Impl::on_record(uint64_t conn, const NodeId& peer, const Record& r, Bytes data) {
  Stream* s = find_from(r.id, peer);
  switch (r.type) {
    case RecordType::kData:
      if (!s || s->state == State::kClosing || s->state == State::kPeerClosed ||
          receive(*s, r.offset, std::move(data)) != Received::kOk)
        return links.send(conn, Record::error(r.id, r.offset));
      return links.send(conn, Record::ack(r.id, r.offset, s->rx.buffer().received(), s->rx.buffer().limit()));
    case RecordType::kAck:
      if (s) on_acked(*s, conn, r.offset, r.limit);
      return;
    case RecordType::kWindow:
      if (s && s->state == State::kOpen) {
        on_credit(*s, r.limit);
        pump(*s);
      }
      return;
    case RecordType::kError:
      // Refused (unknown or closed stream, beyond window, or no room): the chunk goes again as a datagram.
      if (s && s->tx.on_refused(conn, r.offset)) pump(*s);
      return;
  }
}

}  // namespace storjnet
