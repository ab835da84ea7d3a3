// AddressCheck: the second address of a dual-stack node (docs/protocol.md 5, "Addresses") enters the routing
// table only once the node answered there. An address of the other family than a table entry's endpoint is
// *claimed* when the node's datagram came from it unproven (a request), or when a peer's answer names it
// (hearsay: anyone may write any address into a contact). Either way this node sends one ping, one attempt,
// to the entry's key at that address; the answer, authenticated from that address, reaches the table through
// the engine's contact hook (answered) and becomes the entry's alt. Until then the address is neither used
// nor handed out.
//
// A liar can thus aim pings at a victim's address by naming it as the second address of contacts. Bounded:
// only for contacts the table holds, only for a family the entry lacks and this node can send on, one
// (key, address) once per kRecheck (kRemembered pairs remembered), kMaxInFlight at a time, and kRate a second
// (burst kBurst) in all, each ping a single small datagram with no retry (protocol.md 10.14).
#pragma once
#include <unordered_map>
#include <unordered_set>

#include "common/token_bucket.h"
#include "dht/routing_table.h"
#include "engine/engine.h"

namespace storjnet::dht {

class AddressCheck {
 public:
  static constexpr double kRate = 2, kBurst = 8;
  static constexpr size_t kMaxInFlight = 16, kRemembered = 1024, kMaxEarly = 256;
  static constexpr Duration kRecheck = std::chrono::minutes(10);

  AddressCheck(Engine& engine, RoutingTable& table, Duration rpc_timeout);
  ~AddressCheck();
  AddressCheck(const AddressCheck&) = delete;
  AddressCheck& operator=(const AddressCheck&) = delete;

  // `c` (its endpoint) came from the node itself, unproven, at a family its table entry lacks.
  void claimed(const Contact& c) { check(c.id, c.key, c.endpoint); }
  // Contacts a peer's answer named: each turned towards a family this node can send on, and any address of
  // such a family that a held entry lacks is checked.
  void learned(std::vector<Contact>& contacts);

  // A request sender the table does not hold yet (its newcomer check runs): the address it came from is kept
  // (kMaxEarly, reset when full) so that a datagram from its other family, arriving while the newcomer check of
  // the first one runs, is checked once it entered (`added`). Only on a node with both families.
  void early(const Contact& c);
  void added(const Contact& c);
  // A single-family node cannot check an address of the family it lacks: the last one an answer named for a
  // contact is only remembered (kRemembered contacts, reset when full), as hearsay. It serves to pick
  // dual-stack relays and to list their other address in this node's relay list (docs/protocol.md 5.3,
  // "Families"), never to send to. nullopt when none was named.
  std::optional<Endpoint> hearsay(const NodeId& id) const;
  // Whether an answer ever named an address of a family this node lacks: the network has nodes this one
  // cannot reach directly (false in a network of one family).
  bool mixed() const { return mixed_; }

  uint64_t checks() const { return checks_; }      // pings sent
  uint64_t refused() const { return refused_; }    // claims not checked: over the rate or in-flight bound

 private:
  void check(const NodeId& id, const PublicKey& key, const Endpoint& at);

  Engine& engine_;
  RoutingTable& table_;
  Duration timeout_;
  TokenBucket rate_;
  std::unordered_set<NodeId> in_flight_;
  std::unordered_map<Endpoint, TimePoint> recent_;  // addresses checked, by when (reset when full)
  std::unordered_map<NodeId, Endpoint> hearsay_;     // addresses of a family we lack, as answers named them
  std::unordered_map<NodeId, Contact> early_;        // newcomers' other-family addresses, until they enter
  bool mixed_ = false;
  uint64_t checks_ = 0, refused_ = 0;
  Engine::Scope scope_;
};

}  // namespace storjnet::dht
