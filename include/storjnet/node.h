// Node: one storjnet node, a pure state machine: the engine (wire protocol, sessions, RPC) plus the four
// services built on it: DHT, direct messages, streams and pubsub.
//
// A driver (real_driver.h, simulator.h) owns it, feeds it datagrams and wake-ups, and gives it an
// Environment. All methods must be called on the node's thread (RealDriver::call/post with this node, or the
// simulator's thread); completion callbacks run there too, each exactly once: destroying the Node answers the
// callbacks still pending with their failure values during the destructor (see each service's header).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "storjnet/config.h"
#include "storjnet/contact.h"
#include "storjnet/dht.h"
#include "storjnet/environment.h"
#include "storjnet/identity.h"
#include "storjnet/messages.h"
#include "storjnet/pubsub.h"
#include "storjnet/streams.h"

namespace storjnet {

class Engine;
struct NodeInternals;

// A snapshot of a node's transport counters: what /metrics and benches read. Names are the wire method names
// (docs/protocol.md, "Method codes") and the drop reasons of docs/protocol.md; the views point at static text.
struct NodeStats {
  uint64_t datagrams_in = 0, datagrams_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t retransmits = 0, timeouts = 0, sessions_created = 0, sessions_evicted = 0;
  size_t sessions = 0, pending_rpcs = 0, reassembly_bytes = 0;
  size_t dormant_sessions = 0;  // peers whose idle session shrank to its replay floor
  struct MethodRequests {
    std::string_view method;
    uint64_t in = 0, out = 0;
  };
  std::vector<MethodRequests> requests;                       // every known method, and any other with traffic
  std::vector<std::pair<std::string_view, uint64_t>> drops;  // every drop reason, in a fixed order
  uint64_t drops_total() const {
    uint64_t t = 0;
    for (const auto& d : drops) t += d.second;
    return t;
  }
  // The count for one reason by name (0 for an unknown name).
  uint64_t drop_count(std::string_view reason) const {
    for (const auto& d : drops)
      if (d.first == reason) return d.second;
    return 0;
  }
};

// A relayed path (docs/protocol.md 5.3): this node reaches `peer` through `relay`, which hands on the sealed
// datagrams unchanged (set by the relay fallback after a failed punch, or by a relayed peer's first delivery).
struct RelayedPath {
  NodeId peer;
  Contact relay;
};

struct NodeConfig {
  EngineConfig engine;
  DhtConfig dht;
  MessagesConfig messages;
  StreamsConfig streams;
  PubsubConfig pubsub;
};

class Node {
 public:
  // `storage` keeps DHT values and the routing table; nullptr: in memory.
  Node(Environment& env, Identity identity, NodeConfig config = {}, std::unique_ptr<DhtStorage> storage = nullptr);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Driver entry points.
  void on_datagram(const Endpoint& from, ByteView data);
  void on_wake();

  const NodeId& id() const;
  const PublicKey& public_key() const;

  // kademlia_ping: the peer's id, or nullopt when it does not answer (after retries) or answers for another id.
  void ping(const Contact& peer, std::function<void(std::optional<NodeId>)> done);
  // kademlia_ping by address only (first contact): learns the key, then pings under it.
  void ping_address(const Endpoint& ep, std::function<void(std::optional<Contact>)> done);
  // kademlia_stun: our own [ip, port] as `peer` sees it.
  void stun(const Contact& peer, std::function<void(std::optional<Endpoint>)> done);

  Dht& dht() { return *dht_; }
  Messages& messages() { return *messages_; }
  Streams& streams() { return *streams_; }
  Pubsub& pubsub() { return *pubsub_; }
  NodeStats stats() const;
  // The peers this node reaches through a relay now, with their relays (a snapshot, in no order).
  std::vector<RelayedPath> relayed_paths() const;

 private:
  friend struct NodeInternals;  // src/node/node_internals.h: the engine, for in-tree tests and benches
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Dht> dht_;
  std::unique_ptr<Messages> messages_;
  std::unique_ptr<Streams> streams_;
  std::unique_ptr<Pubsub> pubsub_;
};

}  // namespace storjnet
