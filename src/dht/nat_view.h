// NatView: this node's address as the network sees it, per address family, and how its NAT maps ports
// (docs/protocol.md 5.1, "Mapping").
//
// Every kInterval it asks kademlia_stun of kPeers routing-table contacts at distinct IP addresses (confirmed
// first) over each family it sends on, and compares the answers (verdict()):
// - two answers name the same address and port: one public port for every destination ("independent": no
//   NAT, or a cone or port-restricted one, RFC 4787 endpoint-independent mapping); that is the node's
//   public address;
// - every answer at one address names another port: a new port per destination ("dependent": a symmetric
//   NAT, which hole punching cannot predict);
// - fewer than two answers, or no address named twice: "unknown".
// A peer can answer anything. With three answers one liar cannot turn an independent mapping into a dependent
// one (the two honest answers agree), nor a dependent one independent unless it knows another peer's port; with
// two answers it can. Nothing is sent while fewer than two contacts at distinct addresses exist (a network on
// one host never asks). All state is bounded: one verdict per family, at most kPeers asks in flight per family.
#pragma once
#include <optional>
#include <vector>

#include "dht/routing_table.h"
#include "engine/engine.h"
#include "storjnet/dht.h"

namespace storjnet::dht {

class NatView {
 public:
  static constexpr size_t kPeers = 3;                                    // asked per family and check
  static constexpr Duration kFirstCheck = std::chrono::seconds(10);      // after start
  static constexpr Duration kRetry = std::chrono::seconds(30);           // too few contacts, or answers
  static constexpr Duration kInterval = std::chrono::minutes(10);        // after a verdict

  struct View {
    NatMapping mapping = NatMapping::kUnknown;
    std::optional<Endpoint> address;  // the public address two answers agreed on (independent), or the
                                      // address every answer named with its own port (dependent, port 0)
  };
  // The verdict on these answers (any number; the rule above).
  static View verdict(const std::vector<Endpoint>& answers);

  NatView(Engine& engine, RoutingTable& table, Duration rpc_timeout);
  ~NatView();
  NatView(const NatView&) = delete;
  NatView& operator=(const NatView&) = delete;

  // The latest verdict over family f (kUnknown before the first).
  const View& view(Endpoint::Family f) const { return views_[f == Endpoint::Family::kV6 ? 1 : 0]; }
  void fill(DhtStats& s) const;

 private:
  void check();
  void check_family(Endpoint::Family f);
  std::vector<Contact> pick(Endpoint::Family f);

  Engine& engine_;
  RoutingTable& table_;
  Duration rpc_timeout_;
  View views_[2];
  bool asking_[2] = {false, false};
  Duration next_retry_ = kRetry;
  uint64_t asks_ = 0;
  Engine::Scope scope_;
};

}  // namespace storjnet::dht
