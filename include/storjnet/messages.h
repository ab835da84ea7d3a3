// Messages: direct messages between nodes (message_send / message_list).
//
// A message is any JSON value, carried as its UTF-8 JSON text (at most kMaxMessageJson bytes). The sender
// finds the node by id (routing table, then a lookup; addresses cached), sends message_notify and reports
// true only once the receiver acknowledged queueing it. Each message is delivered exactly once and, per
// sender, in order, even when datagrams are lost, duplicated or reordered.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/environment.h"

namespace storjnet {

class Engine;
class Dht;

constexpr size_t kMaxMessageJson = 64 * 1024;

struct MessagesConfig {
  size_t max_queue = 8192;                // messages held for message_list
  size_t max_queue_bytes = 64 * 1024 * 1024;
  Duration send_timeout = 5s;             // message_send answers false after at most this
  // Fair shares of the queue (docs/protocol.md 6): one sender (node id), one network (IPv4 /24, IPv6 /48).
  size_t max_queue_per_sender = 1024;
  size_t max_queue_bytes_per_sender = 8 * 1024 * 1024;
  size_t max_queue_per_prefix = 2048;
  size_t max_queue_bytes_per_prefix = 16 * 1024 * 1024;
  double notify_rate = 5000;              // message_notify batches/s accepted from one sender
  double notify_burst = 10000;
};

// Refusals by the receiving side, for /metrics.
struct MessagesStats {
  uint64_t refused_queue_full = 0;    // messages refused: the node's queue is full
  uint64_t refused_sender_quota = 0;  // messages refused: their sender's share is full
  uint64_t refused_prefix_quota = 0;  // messages refused: their sender's network's share is full
  uint64_t rate_limited = 0;          // message_notify batches refused: sender over notify_rate
  uint64_t invalid_json = 0;          // messages acknowledged and dropped: not JSON (a sender skipping its check)
};

class Messages {
 public:
  Messages(Engine& engine, Dht& dht, MessagesConfig config);

  // Destroying Messages answers every send still in flight cb(false), during the destructor (the callbacks
  // must not call this Messages).
  ~Messages();

  // message_send: cb(true) once `to` acknowledged queueing `json`; cb(false) when it cannot be found, does
  // not answer, or its queue is full (within send_timeout). Sending to our own id queues locally. cb runs
  // exactly once, on the node's thread; before send returns when the answer is known at once (invalid JSON,
  // our own id, the outgoing queue full), later otherwise.
  void send(const NodeId& to, std::string json, std::function<void(bool)> cb);
  // message_list: everything received since the last call, by sender, each sender's messages in the order
  // sent; then the queue is empty.
  std::map<NodeId, std::vector<std::string>> take_all();
  size_t queued() const;
  MessagesStats stats() const;
  // Caches a contact (the address to use for its id), as a lookup would. Incoming messages also refresh it.
  void remember(const Contact& c);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace storjnet
