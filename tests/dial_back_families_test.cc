// Dial-back per address family (src/dht/dial_back.h, docs/protocol.md 5.1 "Families"; issue 12): a dual-stack
// node behind an IPv4 NAT whose IPv6 address is open is reachable over IPv6 only, so it keeps relay
// reservations, on relays with an IPv4 address, for its IPv4 peers; and a helper that probes a node's other
// address than the one its self-check asked about (the open IPv6 one beside a NATed IPv4 one) proves only that
// family: the entries holding its IPv4 address stay unconfirmed.
#include <gtest/gtest.h>

#include <algorithm>

#include "dht/codec.h"
#include "dht/relay.h"
#include "engine/engine.h"
#include "node/node_internals.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using namespace std::chrono_literals;
using Type = NatModel::Type;
using Family = Endpoint::Family;

namespace {

NodeConfig config() {
  NodeConfig c;
  c.dht.k = 8;
  c.dht.dial_back = true;
  c.dht.relay = true;
  c.dht.republish_interval = 2min;  // maintenance every 15 s: unconfirmed entries rechecked 10 min later
  return c;
}

// Bootstraps nodes 1.. through node 0 (dual-stack), one after another: at its IPv4 address, or its IPv6 one for
// an IPv6-only node; with `every_family`, at each of its addresses of a family the node has. A dual-stack node
// told only the IPv4 one makes its IPv6 address known only by chance: it sends over IPv6 only to the IPv6-only
// nodes its lookups happen to meet (docs/protocol.md 5, "Addresses").
void join(Simulator& sim, bool every_family = false) {
  for (size_t i = 1; i < sim.size(); ++i) {
    std::vector<Endpoint> seeds;
    for (auto f : {Family::kV4, Family::kV6})
      if ((sim.families(i) & family_bit(f)) && (every_family || seeds.empty())) seeds.push_back(*sim.endpoint(0, f));
    bool done = false;
    sim.node(i).dht().bootstrap(seeds, [&](bool) { done = true; });
    sim.run_until([&] { return done; }, 30s);
  }
}

size_t add(Simulator& sim, uint8_t families) {
  size_t i = sim.add_node(config());
  sim.set_families(i, families);
  return i;
}

}  // namespace

TEST(DialBackFamilies, AnOpenIPv6AddressDoesNotMakeANattedIPv4SideReachable) {
  Simulator sim;
  for (int i = 0; i < 24; ++i) add(sim, kBothFamilies);
  for (int i = 0; i < 8; ++i) add(sim, kFamilyV4);
  for (int i = 0; i < 8; ++i) add(sim, kFamilyV6);
  size_t s = add(sim, kBothFamilies);
  sim.put_behind(s, sim.add_router({Type::kPortRestricted}));  // IPv4 only: no IPv6 NAT is modelled
  join(sim, true);  // so the dual-stack nodes know each other's IPv6 address, and the IPv6-only nodes find them
  sim.run_for(25min);  // self-checks (backing off while unproven), and the rechecks of entries 10 minutes later

  DhtStats st = sim.node(s).dht().stats();
  // Strangers' probes reached its IPv6 address (the IPv6-only nodes hold it there), never its IPv4 one.
  EXPECT_TRUE(st.reachable_v6);
  EXPECT_FALSE(st.reachable_v4);
  EXPECT_FALSE(st.reachable) << "judged on IPv4, the family nearly every peer has";
  // So it keeps reservations, and every relay it published has an IPv4 address its IPv4 peers reach.
  EXPECT_GT(st.relay_reservations_held, 0u);
  std::optional<Bytes> list;
  bool got = false;
  sim.node(0).dht().get(dht::relay_list_key(sim.node(s).id()), sim.node(s).id(), [&](GetResult r) {
    list = r.value;
    got = true;
  });
  sim.run_until([&] { return got; }, 30s);
  ASSERT_TRUE(list) << "its relay list is published";
  auto relays = dht::decode_relay_list(*list);
  ASSERT_TRUE(relays);
  ASSERT_FALSE(relays->empty());
  std::vector<NodeId> with_v4;
  for (const auto& r : *relays)
    if (r.endpoint.family == Family::kV4) with_v4.push_back(r.id);
  for (const auto& r : *relays)
    EXPECT_TRUE(std::count(with_v4.begin(), with_v4.end(), r.id)) << r.id.hex() << " has no IPv4 address listed";

  // Public dual-stack nodes are found reachable (most of them over IPv4 by now: in a network this small a node
  // may have talked lately to every helper that probed it, as in DhtDialBack.ReachableNodesAreConfirmed; their
  // IPv4 address is public, so an IPv6 proof counts too), and one that is holds no reservations.
  size_t public_reachable = 0;
  for (size_t i = 1; i < 24; ++i) {
    DhtStats p = sim.node(i).dht().stats();
    EXPECT_EQ(p.reachable, p.reachable_v4 || p.reachable_v6) << i;
    if (!p.reachable) continue;
    ++public_reachable;
    EXPECT_EQ(p.relay_reservations_held, 0u) << i;
  }
  EXPECT_GE(public_reachable, 18u);
  // IPv6-only nodes are judged on IPv6.
  size_t v6_reachable = 0;
  for (size_t i = 32; i < 40; ++i) {
    DhtStats p = sim.node(i).dht().stats();
    EXPECT_FALSE(p.reachable_v4) << i;
    EXPECT_EQ(p.reachable, p.reachable_v6) << i;
    v6_reachable += p.reachable;
  }
  EXPECT_GT(v6_reachable, 0u);
}

TEST(DialBackFamilies, AProbeOfTheOtherAddressProvesOnlyThatFamily) {
  Simulator sim;
  for (int i = 0; i < 4; ++i) add(sim, kBothFamilies);
  size_t liar = add(sim, kBothFamilies);
  size_t s = add(sim, kBothFamilies);
  sim.put_behind(s, sim.add_router({Type::kPortRestricted}));
  // Asked by S for a self-check over IPv4 (S behind the NAT), the liar probes S's open IPv6 address instead,
  // itself, with S's nonce. The probe comes in over IPv6: it proves S's IPv6 side, and nothing of its IPv4 one.
  Engine& le = NodeInternals::engine(sim.node(liar));
  const NodeId s_id = sim.node(s).id();
  const Endpoint s_v6 = sim.endpoint(s, Family::kV6).value();
  size_t diverted = 0;
  le.set_handler(Method::kDialBack, [&](const IncomingRequest& q, const Reply& r) {
    auto req = dht::decode_dial_back_request(q.payload);
    if (!req || req->kind != dht::DialBackKind::kSelfCheck || q.from.id != s_id ||
        q.from.endpoint.family != Family::kV4)
      return;
    ++diverted;
    dht::DialBackRequest probe;
    probe.kind = dht::DialBackKind::kProbe;
    probe.nonce = req->nonce;
    Contact at_v6{s_id, q.from.key, s_v6};
    le.request(at_v6, Method::kDialBack, dht::encode_dial_back_request(probe), [r](RpcResult&& res) {
      r.ok(dht::encode_bool(res.ok()));
    }, RpcOptions{2s, 2});
  });
  join(sim);
  sim.run_for(25min);

  size_t holders_v4 = 0;
  for (size_t i = 0; i < sim.size(); ++i) {
    if (i == s || i == liar) continue;
    for (const auto& c : sim.node(i).dht().peers()) {
      if (c.id != s_id || c.endpoint.family != Family::kV4) continue;
      ++holders_v4;
      EXPECT_FALSE(sim.node(i).dht().confirmed(s_id)) << "node " << i << " confirmed S's NATed IPv4 address";
    }
  }
  ASSERT_GT(holders_v4, 0u);
  ASSERT_GT(diverted, 0u) << "the liar was asked for S's IPv4 self-check";
  DhtStats st = sim.node(s).dht().stats();
  EXPECT_FALSE(st.reachable_v4);
  EXPECT_TRUE(st.reachable_v6);
  EXPECT_FALSE(st.reachable);
}

// The netlab's case (CI, 2026-12-04): in a small network every IPv4 helper is a peer a public dual-stack node
// talked to lately, so no IPv4 probe comes in unsolicited; strangers' probes of its IPv6 address do (its peers
// talk to it over IPv4). Its IPv4 address is public (no private one: no NAT in front), so the IPv6 proof counts:
// it offers to relay, and the NATed nodes get reservations with it.
TEST(DialBackFamilies, APublicDualStackNodeProvenOverIPv6AloneIsReachable) {
  Simulator sim;
  for (int i = 0; i < 6; ++i) add(sim, kBothFamilies);
  for (int i = 0; i < 3; ++i) add(sim, kFamilyV6);
  std::vector<size_t> natted;
  for (int i = 0; i < 3; ++i) {
    natted.push_back(add(sim, kFamilyV4));
    sim.put_behind(natted.back(), sim.add_router({Type::kPortRestricted}));
  }
  join(sim);
  sim.run_for(25min);

  size_t v6_alone = 0;
  for (size_t i = 0; i < 6; ++i) {
    DhtStats p = sim.node(i).dht().stats();
    EXPECT_EQ(p.reachable, p.reachable_v4 || p.reachable_v6) << i;
    if (p.reachable_v6 && !p.reachable_v4) {
      ++v6_alone;
      EXPECT_EQ(p.relay_reservations_held, 0u) << i;
    }
  }
  ASSERT_GT(v6_alone, 0u) << "the case under test: a public node proven over IPv6 alone";
  size_t granted = 0;
  for (size_t i = 0; i < 6; ++i) granted += sim.node(i).dht().stats().relay_reservations_granted;
  EXPECT_GT(granted, 0u) << "public nodes relay for the NATed ones";
  for (size_t n : natted) {
    DhtStats p = sim.node(n).dht().stats();
    EXPECT_FALSE(p.reachable) << n;
    EXPECT_GT(p.relay_reservations_held, 0u) << n;
  }
}
