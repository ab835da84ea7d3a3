// ConnProvider: byte connections for the streams fast path (docs/protocol.md 7.6), an optional side interface
// of an Environment. A driver that can carry ordered, reliable byte connections (the real driver: TCP on the
// same port number as the node's UDP socket) implements ConnProvider next to Environment; the streams service
// finds it with dynamic_cast and otherwise uses the engine's UDP RPC only (the simulator offers it only with
// SimConfig::conns.enabled: src/sim/sim_conn.h).
// Same threading contract as Environment: every call and every listener event on the node's thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "storjnet/bytes.h"
#include "storjnet/endpoint.h"

namespace storjnet {

class ConnListener {
 public:
  virtual ~ConnListener() = default;
  // A connection is up: ours from conn_connect (inbound=false), or one the driver accepted (inbound=true);
  // `remote` is the peer's address (for fairness budgets by prefix).
  virtual void on_conn_open(uint64_t conn, bool inbound, const Endpoint& remote) = 0;
  virtual void on_conn_data(uint64_t conn, ByteView bytes) = 0;
  // Closed or failed (also when conn_connect did not succeed); the id is not reused.
  virtual void on_conn_closed(uint64_t conn) = 0;
};

class ConnProvider {
 public:
  virtual ~ConnProvider() = default;
  // Starts a connection; 0 when unsupported. The outcome arrives as on_conn_open or on_conn_closed.
  virtual uint64_t conn_connect(const Endpoint& to) = 0;
  // Queues bytes in order. Ignored for an unknown or closed connection.
  virtual void conn_send(uint64_t conn, Bytes bytes) = 0;
  // Queues `bytes` in order like conn_send, without taking them: `keep` holds them (or what owns them) and
  // the provider keeps it until it no longer needs them. The real driver writes straight from them; this
  // default copies.
  virtual void conn_send_kept(uint64_t conn, ByteView bytes, std::shared_ptr<const void> keep) {
    (void)keep;
    conn_send(conn, Bytes(bytes.begin(), bytes.end()));
  }
  // A buffer for the next conn_send: a spent one with its old size and (stale) contents, or an empty one.
  // Resizing a reused buffer to a size it had skips the allocation and zero-fill of a fresh one.
  virtual Bytes conn_buffer() { return {}; }
  // A buffer the caller is done with (a stream chunk the application's read consumed), for a later
  // conn_buffer(): receiving a record then needs no allocation and no zero-fill either. The default drops it.
  virtual void conn_recycle(Bytes bytes) { (void)bytes; }
  // Bytes queued on `conn` and not yet taken by the kernel (0 for an unknown connection). A provider may
  // stop reading from a connection whose queue is long (docs/protocol.md 7.6, send queue).
  virtual size_t conn_queued(uint64_t conn) const = 0;
  // Closes without an on_conn_closed event.
  virtual void conn_close(uint64_t conn) = 0;
  virtual void set_conn_listener(ConnListener* l) = 0;
};

}  // namespace storjnet
