// Contact: how to reach a node. The id is BLAKE2b-160 of the key, so a contact is self-certifying: a peer
// that answers under `key` proves it owns `id` (datagrams are authenticated with that key).
#pragma once
#include "storjnet/endpoint.h"
#include "storjnet/identity.h"
#include "storjnet/node_id.h"

namespace storjnet {

struct Contact {
  NodeId id;
  PublicKey key{};
  Endpoint endpoint;

  static Contact from_key(const PublicKey& key, const Endpoint& ep) { return {Identity::id_of(key), key, ep}; }
  bool operator==(const Contact&) const = default;
};

}  // namespace storjnet
