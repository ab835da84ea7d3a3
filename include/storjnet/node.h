// Node: one storjnet node, a pure state machine. A driver (real_driver.h, simulator.h) owns it, feeds it
// datagrams and wake-ups, and gives it an Environment. All methods must be called on the driver's thread;
// completion callbacks run there too.
#pragma once
#include <functional>
#include <memory>
#include <optional>

#include "storjnet/config.h"
#include "storjnet/contact.h"
#include "storjnet/environment.h"
#include "storjnet/identity.h"

namespace storjnet {

class Engine;

struct NodeConfig {
  EngineConfig engine;
};

class Node {
 public:
  Node(Environment& env, Identity identity, NodeConfig config = {});
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

  // The protocol core; services and tests use it directly.
  Engine& engine() { return *engine_; }

 private:
  std::unique_ptr<Engine> engine_;
};

}  // namespace storjnet
