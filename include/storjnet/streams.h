// Streams: ordered, reliable, flow-controlled byte streams between two nodes.
//
// A stream id is 32 random bytes (64 hex characters in text), the same at both ends. Writes complete once
// the peer holds the bytes in its receive buffer (bounded, default 1 MiB per stream); past that the writer
// gets a short count (0 when full) and can wait for space with on_writable.
// Callbacks run on the node's thread, exactly once. A callback may run before the call returns when the answer
// is known at once (an unknown or closed stream, a full window, data already buffered for on_readable, a
// failed open to ourselves or past max_streams); otherwise it runs from a later event. Destroying Streams (with
// its Node) with operations in flight answers each of them during the destructor: open and write nullopt,
// close false, on_readable and on_writable called. Such a callback must not call this Streams.
#pragma once
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "storjnet/contact.h"
#include "storjnet/environment.h"

namespace storjnet {

class Engine;
class Dht;

using StreamId = std::array<uint8_t, 32>;

struct StreamsConfig {
  size_t receive_buffer = 1024 * 1024;  // per stream
  size_t max_streams = 1024;            // per node
  size_t max_streams_per_peer = 256;    // opens from one peer beyond this are refused
  Duration open_timeout = 5s;           // stream_open answers null after at most this
  Duration close_timeout = 3s;          // stream_close waits at most this for the peer
  Duration idle_timeout = 30s;          // a peer silent for this long has its streams closed
  // Fair shares (docs/protocol.md 7, "Budgets"). A network is an IPv4 /24 or IPv6 /48 (Endpoint::prefix()).
  size_t max_streams_per_prefix = 256;               // inbound streams opened from one network
  size_t max_buffered = 256 * 1024 * 1024;           // node-wide: received data held (unread or ahead of a gap)
  size_t max_buffered_per_prefix = 64 * 1024 * 1024; // the same for the streams of one network
  size_t min_chunk_charge = 1024;                    // each held chunk counts at least this against both
  size_t max_chunks_ahead = 64;                      // per stream: chunks held ahead of a gap

  // Fast path bounds (docs/protocol.md 7.6 "Limits"). Every close they cause is counted in
  // StreamsFastPathStats and shown in /metrics.
  size_t max_links = 256;                      // connections, both directions
  size_t max_links_per_prefix = 16;            // accepted connections from one /24 (IPv4) or /48 (IPv6)
  Duration link_handshake_timeout = 5s;        // a connection must authenticate within this
  Duration link_idle_timeout = 60s;            // a link with no record from the peer for this long is closed
  Duration link_ack_timeout = 15s;             // a data record unanswered this long closes the link (UDP then)
  size_t link_send_cap = 32 * 1024 * 1024;     // bytes queued on one connection beyond this close it
  uint32_t link_handshakes_per_second = 200;   // inbound hellos answered per second (each costs an X25519)
  uint32_t link_handshakes_per_prefix = 20;    // of those, per second from one /24 or /48
  // Records are sealed with AES-128-OCB unless either end of a connection asks for AES-256-OCB with this
  // (docs/protocol.md 7.6). The keys come from X25519 (~128-bit security) either way; AES-256 costs ~40%
  // more per byte here.
  bool aes256_records = false;
};

// Receive-side refusals (each answered with an error; "receive buffers full" is retried by the writer).
struct StreamsBudgetStats {
  uint64_t refused_node_budget = 0;     // data refused: max_buffered reached
  uint64_t refused_prefix_budget = 0;   // data refused: the sender's network reached max_buffered_per_prefix
  uint64_t refused_chunks_ahead = 0;    // data refused: max_chunks_ahead held ahead of a gap
  uint64_t refused_prefix_streams = 0;  // stream_open refused: max_streams_per_prefix
  size_t buffered = 0;                  // bytes charged now (gauge)
};

// Fast path (docs/protocol.md 7.6): encrypted byte connections next to the engine's UDP RPC.
struct StreamsFastPathStats {
  uint64_t links_up = 0;       // authenticated connections established (both directions)
  uint64_t links_aes256 = 0;   // of links_up, those sealed with AES-256-OCB (either end asked for it)
  uint64_t links_failed = 0;   // connections that failed or were closed
  uint64_t bad_records = 0;    // malformed or unauthenticated records (each closes its connection)
  uint64_t bytes_sent = 0;     // stream data bytes sent over connections
  uint64_t bytes_received = 0; // stream data bytes received over connections
  uint64_t records_sealed_at_write = 0;  // data records sealed straight from a write's bytes (no copy first)
  // Closes and refusals by the fast-path bounds (StreamsConfig), each also counted in links_failed when a
  // connection was open.
  uint64_t handshake_timeouts = 0;   // not authenticated within link_handshake_timeout
  uint64_t idle_closed = 0;          // authenticated, then silent for link_idle_timeout
  uint64_t ack_timeouts = 0;         // a data record unanswered for link_ack_timeout (data went over UDP)
  uint64_t send_overflows = 0;       // more than link_send_cap bytes queued to a peer that does not read
  uint64_t handshakes_limited = 0;   // inbound hellos refused by the handshake budgets (node or prefix)
  uint64_t links_refused = 0;        // accepted connections closed at once: max_links or max_links_per_prefix
};

struct StreamInfo {
  NodeId peer;
  size_t unread = 0;
  uint64_t received = 0;  // bytes received in order since the stream opened (read or not)
  uint64_t sent = 0;      // bytes accepted from the application for sending
  bool inbound = false;   // opened by the peer
  // The sending side, for diagnosing a slow or stalled stream.
  uint64_t acked = 0;        // bytes the peer acknowledged (all below this offset)
  size_t in_flight = 0;      // datagram chunks awaiting an answer
  uint64_t losses = 0;       // datagram chunks lost or answered only after a resend
  double rate = 0;           // pacing, bytes/s (0: unpaced)
  int64_t heard_ms_ago = 0;  // since the peer last answered or sent on this stream
  bool fast_path = false;    // a byte connection carries it (else datagrams)
  std::string route;         // where its datagrams go now (Engine::route)
};

class Streams {
 public:
  Streams(Engine& engine, Dht& dht, StreamsConfig config);
  ~Streams();

  // stream_open: the new stream's id, or nullopt when the node cannot be reached (within open_timeout).
  void open(const NodeId& peer, std::function<void(std::optional<StreamId>)> cb);
  // stream_list: every open stream, opened by us or to us.
  std::map<StreamId, StreamInfo> list() const;
  // stream_write: bytes accepted into the peer's receive buffer (short when it is nearly full, 0 when
  // full), or nullopt when the stream is unknown or closed. Completes once the peer holds the bytes.
  void write(const StreamId& id, ByteView data, std::function<void(std::optional<size_t>)> cb);
  // Bytes a write would accept right now: the peer's free receive space not yet taken by earlier writes
  // (0 when full, closed or unknown). Writing at most this much keeps several writes in flight with none
  // of them short.
  size_t writable(const StreamId& id) const;
  // Runs cb once the peer's buffer has room again (or the stream closed).
  void on_writable(const StreamId& id, std::function<void()> cb);
  // Runs cb once bytes are buffered to read (at once when some already are), or the stream closed or is
  // unknown: a read after it returns data or nullopt, never an empty buffer unless another reader took it.
  void on_readable(const StreamId& id, std::function<void()> cb);
  // stream_read: up to max bytes (all buffered when max is nullopt); empty when nothing is buffered;
  // nullopt when unknown or closed (after the peer closed, buffered bytes are still readable, then nullopt).
  std::optional<Bytes> read(const StreamId& id, std::optional<size_t> max);
  // stream_close: true when the stream was open, false when unknown. Completes once the peer saw the close
  // or after close_timeout.
  void close(const StreamId& id, std::function<void(bool)> cb);
  // Runs cb(id, peer) for every stream a peer opens to us, after it is open (so read and write work on it).
  // One watcher: a later call replaces it; nullptr removes it. Streams opened by us are not reported.
  void on_inbound(std::function<void(const StreamId&, const NodeId&)> cb);
  // Caches a contact (the address to use for its id), as a lookup would.
  void remember(const Contact& c);
  // Fast-path counters; fast_path(id): whether the stream's peer is reached over a connection right now.
  StreamsFastPathStats fast_path_stats() const;
  StreamsBudgetStats budget_stats() const;
  bool fast_path(const StreamId& id) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace storjnet
