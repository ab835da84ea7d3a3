// IPv6 and dual-stack nodes in the simulator (docs/protocol.md 5, "Addresses"): v4-only, v6-only and
// dual-stack nodes in one network; values put by one kind are got by the other through the dual-stack ones;
// dual-stack nodes learn each other's second address; a liar that names a victim's address as the second
// address of contacts gets at most a bounded number of small pings sent there, and the address is never
// handed out. Virtual time only.
#include <gtest/gtest.h>

#include <cstdio>

#include "dht/codec.h"
#include "engine/engine.h"
#include "node/node_internals.h"
#include "sim/rng.h"
#include "storjnet/simulator.h"

using namespace storjnet;
using namespace std::chrono_literals;

namespace {

struct Mixed {
  size_t dual, v4, v6;
};

// Nodes [0, dual) dual-stack, then v4-only, then v6-only. Each joins through a random earlier node that shares
// a family with it, at every address they share (a dual-stack node's seed is told both).
void join_mixed(Simulator& sim, Mixed m, uint64_t seed) {
  size_t n = m.dual + m.v4 + m.v6;
  for (size_t i = 0; i < n; ++i) {
    sim.add_node();
    sim.set_families(i, i < m.dual ? kBothFamilies : i < m.dual + m.v4 ? kFamilyV4 : kFamilyV6);
  }
  sim::Rng rng(seed);
  for (size_t i = 1; i < n; ++i) {
    size_t via;
    do via = rng.below(i);
    while (!(sim.families(via) & sim.families(i)));
    std::vector<Endpoint> seeds;
    for (auto f : {Endpoint::Family::kV4, Endpoint::Family::kV6})
      if ((family_bit(f) & sim.families(i)) && sim.endpoint(via, f)) seeds.push_back(*sim.endpoint(via, f));
    bool done = false;
    sim.node(i).dht().bootstrap(seeds, [&](bool) { done = true; });
    sim.run_until([&] { return done; }, 30s);
  }
  sim.run_for(30s);
}

TEST(DualStackSim, ValuesCrossFamiliesThroughDualStackNodes) {
  SimConfig cfg;
  cfg.seed = 5;
  Simulator sim(cfg);
  Mixed m{20, 15, 15};
  join_mixed(sim, m, 11);
  size_t first_v4 = m.dual, first_v6 = m.dual + m.v4, n = first_v6 + m.v6;

  // Dual-stack nodes learned each other's second address (answered there), and nothing else carries one.
  size_t dual_entries = 0, with_alt = 0;
  for (size_t i = 0; i < n; ++i)
    for (const Contact& c : sim.node(i).dht().peers()) {
      long j = sim.index_of(c.endpoint);
      ASSERT_GE(j, 0) << "node " << i << " holds " << c.endpoint.to_string();
      if (c.alt.valid()) {
        EXPECT_EQ(sim.index_of(c.alt), j);  // the alt is that node's own other address
        EXPECT_LT(static_cast<size_t>(j), m.dual);
      }
      if (static_cast<size_t>(j) < m.dual && i < m.dual) {
        ++dual_entries;
        with_alt += c.alt.valid();
      }
    }
  EXPECT_GT(with_alt * 2, dual_entries) << with_alt << " of " << dual_entries;
  std::printf("dual-stack entries of dual-stack nodes with both addresses: %zu of %zu\n", with_alt, dual_entries);

  // v6-only nodes put, v4-only nodes get (and the other way round).
  auto cross = [&](size_t from, size_t to, size_t count, const char* tag) {
    size_t put_ok = 0, got = 0;
    for (size_t k = 0; k < count; ++k) {
      std::string key = std::string(tag) + std::to_string(k);
      bool done = false;
      sim.node(from + k).dht().put(key, Bytes{1, 2, static_cast<uint8_t>(k)}, [&](const PutResult& r) {
        put_ok += r.ok;
        done = true;
      });
      sim.run_until([&] { return done; }, 20s);
    }
    for (size_t k = 0; k < count; ++k) {
      std::string key = std::string(tag) + std::to_string(k);
      bool done = false;
      sim.node(to + k).dht().get(key, sim.contact(from + k).id, [&](GetResult r) {
        got += r.value && *r.value == Bytes{1, 2, static_cast<uint8_t>(k)};
        done = true;
      });
      sim.run_until([&] { return done; }, 20s);
    }
    EXPECT_EQ(put_ok, count) << tag;
    EXPECT_EQ(got, count) << tag;
  };
  cross(first_v6, first_v4, 10, "six-to-four/");
  cross(first_v4, first_v6, 10, "four-to-six/");
}

// A v6-only node and a v4-only node share no family: each keeps reservations on dual-stack relays and lists
// each relay at both its addresses, so the other reaches it through one (docs/protocol.md 5.3, "Families").
TEST(DualStackSim, V6OnlyAndV4OnlyNodesMessageEachOtherThroughDualStackRelays) {
  SimConfig cfg;
  cfg.seed = 7;
  Simulator sim(cfg);
  Mixed m{20, 10, 10};
  join_mixed(sim, m, 5);
  size_t first_v4 = m.dual, first_v6 = m.dual + m.v4;
  sim.run_for(60s);  // reservations made and their lists published (every keepalive_interval)
  size_t held = 0;
  for (size_t i = first_v4; i < sim.size(); ++i) held += sim.node(i).dht().stats().relay_reservations_held > 0;
  EXPECT_EQ(held, m.v4 + m.v6);
  // Strangers of their own family reach them (dial-back), which alone would keep a node from reserving: the
  // reservations are for the other family.
  size_t reachable = 0;
  for (size_t i = first_v4; i < sim.size(); ++i) reachable += sim.node(i).dht().stats().reachable;
  EXPECT_GT(reachable, 0u);
  std::printf("single-family nodes holding reservations %zu of %zu, %zu of them reachable by dial-back\n", held,
              m.v4 + m.v6, reachable);
  size_t sent = 0, ok = 0;
  for (size_t k = 0; k < m.v4; ++k)
    for (auto [from, to] : {std::pair{first_v6 + k, first_v4 + k}, std::pair{first_v4 + k, first_v6 + k}}) {
      ++sent;
      sim.node(from).messages().send(sim.contact(to).id, "{\"k\":" + std::to_string(k) + "}", [&](bool r) { ok += r; });
    }
  sim.run_for(20s);
  EXPECT_EQ(ok, sent);
  size_t received = 0;
  for (size_t i = first_v4; i < sim.size(); ++i)
    for (auto& [from, list] : sim.node(i).messages().take_all()) received += list.size();
  EXPECT_EQ(received, sent);
  uint64_t relayed = 0;
  for (size_t i = 0; i < m.dual; ++i) relayed += sim.node(i).dht().stats().relay_forwarded;
  EXPECT_GT(relayed, 0u);
  std::printf("messages %zu of %zu delivered; %llu datagrams relayed by dual-stack nodes\n", ok, sent,
              static_cast<unsigned long long>(relayed));
}

TEST(DualStackSim, ALiarsSecondAddressesGetAtMostAFewSmallPingsSentToAVictim) {
  SimConfig cfg;
  cfg.seed = 9;
  Simulator sim(cfg);
  Mixed m{12, 12, 0};  // the dual-stack nodes hold v4-only contacts: entries lacking an IPv6 address
  join_mixed(sim, m, 3);
  // The victim: an IPv6 address no node has (a host outside the network).
  Endpoint victim = *Endpoint::parse("[fd00::99:99:99]:4000");
  size_t to_victim = 0, bytes_to_victim = 0;
  sim.set_send_tap([&](size_t, const Endpoint& to, size_t bytes) {
    if (to == victim) {
      ++to_victim;
      bytes_to_victim += bytes;
    }
  });
  // The liar answers every find_node with its true closest contacts, each given the victim as second address.
  const size_t liar = 1;
  Engine& le = NodeInternals::engine(sim.node(liar));
  size_t answers = 0, answer_bytes = 0;
  le.set_handler(Method::kFindNode, [&](const IncomingRequest& q, const Reply& r) {
    auto req = dht::decode_find_node_request(q.payload);
    if (!req) return r.error("malformed");
    std::vector<Contact> list;
    for (Contact c : sim.node(liar).dht().closest_known(req->target, 20)) {
      if (c.endpoint.family != Endpoint::Family::kV4) continue;
      c.alt = victim;
      list.push_back(c);
    }
    Bytes body = dht::encode_contacts(list);
    ++answers;
    answer_bytes += body.size();
    r.ok(body);
  });
  // Every node looks up random ids for a while: many of them ask the liar.
  sim::Rng rng(77);
  for (int round = 0; round < 20; ++round) {
    for (size_t i = 0; i < sim.size(); ++i) {
      if (i == liar) continue;
      std::array<uint8_t, NodeId::kSize> b;
      for (auto& x : b) x = static_cast<uint8_t>(rng.next());
      sim.node(i).dht().closest(NodeId(b), [](std::vector<Contact>) {});
    }
    sim.run_for(10s);
  }
  ASSERT_GT(answers, 100u);
  std::printf("liar answers %zu (%zu bytes); to the victim %zu datagrams, %zu bytes\n", answers, answer_bytes,
              to_victim, bytes_to_victim);
  // At most one check per (node, address) per 10 minutes: the run lasts 200 s, so one per dual-stack node (the
  // v4-only ones do not send on IPv6).
  EXPECT_GE(to_victim, 1u);
  EXPECT_LE(to_victim, m.dual);
  EXPECT_LT(bytes_to_victim, answer_bytes / 10);
  uint64_t checks = 0;
  for (size_t i = 0; i < sim.size(); ++i) checks += sim.node(i).dht().stats().address_checks;
  EXPECT_GT(checks, 0u);
  // The victim's address entered no table and is handed out by no one.
  for (size_t i = 0; i < sim.size(); ++i) {
    if (i == liar) continue;
    for (const Contact& c : sim.node(i).dht().peers()) EXPECT_NE(c.alt, victim) << "node " << i;
  }
  for (size_t i = 0; i < sim.size(); ++i) {
    if (i == liar) continue;
    for (const Contact& c : sim.node(i).dht().closest_known(sim.contact(0).id, 20)) EXPECT_NE(c.alt, victim);
  }
}

}  // namespace
