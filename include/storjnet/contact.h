// Contact: how to reach a node. The id is BLAKE2b-160 of the key, so a contact is self-certifying: a peer
// that answers under `key` proves it owns `id` (datagrams are authenticated with that key).
//
// A node has at most one address per family (IPv4, IPv6): `endpoint`, the one to use, and `alt`, the other
// family's when known (docs/protocol.md 5, "Addresses"). Routing tables only hold addresses the node was heard
// from; a contact learned from a peer's answer may carry addresses nobody here has verified.
#pragma once
#include <optional>

#include "storjnet/endpoint.h"
#include "storjnet/identity.h"
#include "storjnet/node_id.h"

namespace storjnet {

struct Contact {
  NodeId id;
  PublicKey key{};
  Endpoint endpoint;
  Endpoint alt{};  // the other family's address, or none (family kNone); never endpoint's family

  static Contact from_key(const PublicKey& key, const Endpoint& ep) { return {Identity::id_of(key), key, ep}; }
  bool operator==(const Contact&) const = default;

  bool dual() const { return alt.valid(); }
  // The address of family f (endpoint or alt), or nullopt.
  std::optional<Endpoint> address(Endpoint::Family f) const {
    if (endpoint.family == f && endpoint.valid()) return endpoint;
    if (alt.family == f && alt.valid()) return alt;
    return std::nullopt;
  }
  // Whether a node that sends on `families` (kFamilyV4 | kFamilyV6 bits) can send to this contact.
  bool reachable_by(uint8_t families) const {
    return (family_bit(endpoint.family) & families) || (alt.valid() && (family_bit(alt.family) & families));
  }
  // This contact with `endpoint` of a family in `families`: endpoint and alt swapped when only alt is; as is
  // when endpoint already is, or when neither is.
  Contact for_families(uint8_t families) const {
    if ((family_bit(endpoint.family) & families) || !alt.valid() || !(family_bit(alt.family) & families)) return *this;
    Contact c = *this;
    std::swap(c.endpoint, c.alt);
    return c;
  }
  // Records `ep` as this node's address of its family: the endpoint when it has that family (or none yet),
  // else the alt.
  void set_address(const Endpoint& ep) {
    if (!endpoint.valid() || endpoint.family == ep.family) endpoint = ep;
    else alt = ep;
  }
};

}  // namespace storjnet
