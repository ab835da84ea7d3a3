// Links: the streams fast path's encrypted byte connections (docs/protocol.md 7.6).
//
// At most one usable connection per peer, shared by every stream to it. Links owns connection set-up
// (plaintext hello, per-direction keys from the engine's pair key, then one authenticated ready record each
// way), record framing and AES-OCB (128-bit keys unless either end asks for 256: StreamsConfig::aes256_records),
// and hands each authenticated, well-formed record to its Events. Bad input (a wrong hello, a record that does
// not authenticate, is too long or malformed) closes the connection and is counted in stats().bad_records. It
// also enforces the fast path's bounds (StreamsConfig: connection
// caps overall and per prefix, inbound handshake budgets, handshake, idle and acknowledgement timeouts, a cap
// on bytes queued to a peer), each close or refusal counted in stats().
// Without byte connections in the environment (the simulator unless SimConfig::conns.enabled), available()
// is false and nothing happens.
// Same threading as the engine: every call and event on the node's thread.
#pragma once
#include <cstdint>
#include <memory>

#include "storjnet/contact.h"
#include "storjnet/streams.h"
#include "streams/stream_state.h"

namespace storjnet {
class Engine;
}

namespace storjnet::streams {

// (Type 5, the ready record each side sends once its keys are set, is Links' own and never passed on.)
enum class RecordType : uint8_t { kData = 1, kAck = 2, kWindow = 3, kError = 4 };

// One record's plaintext. offset: data, ack and error; received + limit: ack; limit: window.
struct Record {
  RecordType type = RecordType::kData;
  StreamId id{};
  uint64_t offset = 0, received = 0, limit = 0;
  ByteView data;  // data records only; valid during on_record

  static Record data_at(const StreamId& id, uint64_t offset, ByteView data) {
    return {RecordType::kData, id, offset, 0, 0, data};
  }
  static Record ack(const StreamId& id, uint64_t offset, uint64_t received, uint64_t limit) {
    return {RecordType::kAck, id, offset, received, limit, {}};
  }
  static Record window(const StreamId& id, uint64_t limit) { return {RecordType::kWindow, id, 0, 0, limit, {}}; }
  static Record error(const StreamId& id, uint64_t offset) { return {RecordType::kError, id, offset, 0, 0, {}}; }
};

class Links {
 public:
  static constexpr size_t kMaxData = 128 * 1024;  // stream bytes in one data record (8 per 1 MiB window)

  class Events {
   public:
    virtual ~Events() = default;
    // A connection to `peer` became usable: a record from the peer authenticated (either direction).
    virtual void on_link_up(const NodeId& peer) = 0;
    // A usable connection failed or closed (also by a bound, e.g. a data record unanswered for
    // link_ack_timeout): what was sent over it and not acknowledged must go again.
    virtual void on_link_down(uint64_t conn, const NodeId& peer) = 0;
    // An authenticated record. A data record's bytes are both r.data and `data`, which the callee may keep.
    virtual void on_record(uint64_t conn, const NodeId& peer, const Record& r, Bytes data) = 0;
    // After each batch of connection events (the owner runs its deferred completions here).
    virtual void after_events() = 0;
  };

  Links(Engine& engine, Events& events, const StreamsConfig& config);
  ~Links();  // closes every connection, without events

  bool available() const;
  // Connects to `peer` unless a connection is up or being set up, max_links is reached, or the last
  // attempt to it failed less than 10 s ago.
  void ensure(const Contact& peer);
  // The usable connection to `peer`, or 0.
  uint64_t ready(const NodeId& peer) const;
  // Queues a record on `conn` (data up to kMaxData). Ignored when the connection is gone or closing. When
  // the queue passes link_send_cap the connection is closed after the current event (on_link_down then),
  // never from inside send().
  void send(uint64_t conn, const Record& r);
  // A data record sent without a copy: sealed straight from `data` (at most kMaxData bytes) into the buffer the
  // connection writes from, which the returned chunk keeps (and can open again) until the caller drops it. Null,
  // and nothing sent, when the connection is gone or closing. Same bound as send().
  std::shared_ptr<const SealedChunk> send_data(uint64_t conn, const StreamId& id, uint64_t offset, ByteView data);
  // A buffer done with (a chunk the application's read consumed): received records may reuse it.
  void recycle(Bytes bytes);
  const StreamsFastPathStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace storjnet::streams
