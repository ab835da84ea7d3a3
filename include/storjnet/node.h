// Node: one storjnet node, a pure state machine: the engine (wire protocol, sessions, RPC) plus the four
// services built on it: DHT, direct messages, streams and pubsub.
//
// A driver (real_driver.h, simulator.h) owns it, feeds it datagrams and wake-ups, and gives it an
// Environment. All methods must be called on the driver's thread; completion callbacks run there too.
#pragma once
#include <functional>
#include <memory>
#include <optional>

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
  // The protocol core; services and tests use it directly.
  Engine& engine() { return *engine_; }

 private:
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Dht> dht_;
  std::unique_ptr<Messages> messages_;
  std::unique_ptr<Streams> streams_;
  std::unique_ptr<Pubsub> pubsub_;
};

}  // namespace storjnet
