// DialBack: AutoNAT-style reachability checks for the routing table (docs/protocol.md 5.1).
//
// Three roles, one RPC (kademlia_dial_back):
// - Verifier V: a contact S newly in its routing table is unconfirmed. V asks up to kHelpers random helpers
//   H (confirmed contacts first, never one at S's IP address), one after another, to probe S. S is marked
//   confirmed when one relays a valid testimony of S saying the probe came in unsolicited.
// - Helper H: serves asks only from askers whose address is proven (else it challenges the address and drops
//   the ask, so the asker's retransmission is served), at most `rate` asks/s per asker and `total_rate` in
//   all, at most kMaxProbes probes in flight; it probes S (H is a stranger to S) and relays S's answer.
// - Probed node S: answers a probe with a testimony signed by its key over (network, nonce, H's key,
//   unsolicited), where unsolicited means S sent nothing to the probe's source address within
//   RecentSends::kWindow before it arrived: the probe then crossed any NAT in front of S unsolicited, so
//   strangers reach S. S records that per address family (reachable(f)). At most kTestimonyRate signatures/s.
// Families: an ask names one address of S, the one V holds; helpers have an address of its family; S signs the
// family the probe came over, so a probe of S's other address (open IPv6 beside a NATed IPv4) confirms nothing.
// A lying helper cannot forge S's signature; a lying S can only get itself confirmed (it could anyway).
// Refusals are counted under DropReason::kDhtDialBackRefused. All state is bounded.
#pragma once
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "common/token_bucket.h"
#include "dht/codec.h"
#include "dht/routing_table.h"
#include "dht/store_rate.h"
#include "engine/engine.h"
#include "storjnet/dht.h"

namespace storjnet::dht {

class DialBack {
 public:
  static constexpr size_t kHelpers = 3;          // helpers asked per check, one after another
  static constexpr size_t kMaxChecks = 64;       // checks in flight (verifier)
  static constexpr size_t kMaxProbes = 128;      // probes in flight (helper)
  static constexpr double kTestimonyRate = 20;   // testimonies signed per second (probed node)
  static constexpr Duration kReachableFor = std::chrono::hours(1);  // reachable(): an unsolicited probe this recent

  DialBack(Engine& engine, RoutingTable& table, const DhtConfig& cfg);
  ~DialBack();
  DialBack(const DialBack&) = delete;
  DialBack& operator=(const DialBack&) = delete;

  // Verifier: checks `s` unless disabled, already checking it, or kMaxChecks are in flight.
  void check(const Contact& s);
  // Whether an unsolicited probe over family f reached this node within kReachableFor, or every routing-table
  // entry is on a loopback address (a network on one host: nothing NATs there).
  bool reachable(Endpoint::Family f) const;
  // reachable(judged_family(the families this node sends on)), over IPv4 when it has IPv4; or reachable over
  // its other family when the judged one has no private address (no NAT in front of it, lan_endpoint).
  bool reachable() const;
  // Whether this node's route out over its judged family has a public address (Environment::lan_endpoint is
  // none: no NAT in front of it).
  bool open() const;
  // Adds the counters and reachable to `s`.
  void fill(DhtStats& s) const;

 private:
  struct Check;
  void on_request(const IncomingRequest& q, const Reply& r);
  void serve_ask(const IncomingRequest& q, const DialBackRequest& ask, const Reply& r);
  void answer_probe(const IncomingRequest& q, const DialBackRequest& probe, const Reply& r);
  void ask_next(std::shared_ptr<Check> c);
  std::vector<Contact> pick_helpers(const Contact& s);
  void refuse();
  bool loopback_only() const;

  Engine& engine_;
  RoutingTable& table_;
  bool enabled_;
  Duration rpc_timeout_;
  int rpc_attempts_;
  double total_rate_;
  StoreRate per_asker_;
  TokenBucket total_{}, testimonies_{};
  std::unordered_set<NodeId> checking_;
  size_t probes_ = 0;
  std::optional<TimePoint> reached_at_[2];  // IPv4, IPv6
  uint64_t asks_sent_ = 0, asks_served_ = 0, asks_refused_ = 0, probes_answered_ = 0, confirmed_ = 0,
           forged_ = 0;
  Engine::Scope scope_;  // its RPCs (ended first when it is destroyed)
};

}  // namespace storjnet::dht
