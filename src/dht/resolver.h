// Resolver: finds a node's contact by id, a service shared by messages and streams: the local cache first,
// then the DHT's routing table, then a DHT lookup (find_contact, which falls back to the relays a NATed node
// published: the contact is then the node's key at a relay's endpoint). Lookups for the same id are coalesced;
// results are cached (bounded) and forgotten when the peer stops answering.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/callback_scope.h"
#include "storjnet/contact.h"

namespace storjnet {

class Dht;

class Resolver {
 public:
  explicit Resolver(Dht& dht, size_t max_cached = 4096) : dht_(dht), max_cached_(max_cached) {}
  // cb runs exactly once, possibly before resolve returns (cache hit). A resolve waiting for the DHT when the
  // Resolver is destroyed: cb is destroyed without running (its owner is being destroyed too).
  void resolve(const NodeId& id, std::function<void(std::optional<Contact>)> cb);
  void remember(const Contact& c);
  void forget(const NodeId& id) { cache_.erase(id); }
  size_t cached() const { return cache_.size(); }

 private:
  Dht& dht_;
  size_t max_cached_;
  std::unordered_map<NodeId, Contact> cache_;
  std::unordered_map<NodeId, std::vector<std::function<void(std::optional<Contact>)>>> waiting_;
  CallbackScope scope_;  // the continuations handed to the DHT (ended first when it is destroyed)
};

}  // namespace storjnet
