// Upgrades of relayed paths (src/dht/birthday.h, docs/protocol.md 5.2 "Upgrade") on the simulator's NAT
// routers: a symmetric NAT facing a port-restricted one goes direct by birthday punching, a pair a failed punch
// left relayed goes direct by a punch coordinated over the relay, an open stream keeps an upgraded path, and
// SYNCs from a peer are bounded.
#include <gtest/gtest.h>

#include <algorithm>

#include "api/status_board.h"
#include "dht/birthday.h"
#include "dht/punch_codec.h"
#include "engine/methods.h"
#include "sim_nat_pair.h"
#include "storjnet/streams.h"

using namespace storjnet;
using Type = NatModel::Type;

namespace {

// Every node with `tweak` applied; a with `tweak_a` on top, when given.
struct Net : NatPair {
  Net(Type ka, Type kb, uint64_t seed, const std::function<void(NodeConfig&)>& tweak = {},
      const std::function<void(NodeConfig&)>& tweak_a = {})
      : NatPair(ka, kb, config(seed, tweak), a_config(seed, tweak, tweak_a)) {}
  static SimConfig config(uint64_t seed, const std::function<void(NodeConfig&)>& tweak) {
    SimConfig c;
    c.seed = seed;
    if (tweak) tweak(c.node);
    return c;
  }
  static std::optional<NodeConfig> a_config(uint64_t seed, const std::function<void(NodeConfig&)>& tweak,
                                            const std::function<void(NodeConfig&)>& tweak_a) {
    if (!tweak_a) return std::nullopt;
    NodeConfig n = config(seed, tweak).node;
    tweak_a(n);
    return n;
  }
};

}  // namespace

// Symmetric (a new random port per destination) facing port-restricted (only endpoints it sent to get in): no
// punch can connect them, a relay does, and the upgrade's birthday makes the path direct: the symmetric side's
// 128 fresh ports meet the other side's 2048 probed ports (TTL-limited: they die past its router) with
// probability 98% per try, three tries.
TEST(UpgradeSim, SymmetricAndPortRestrictedGoDirectByBirthday) {
  for (bool symmetric_starts : {true, false}) {
    SCOPED_TRACE(symmetric_starts);
    Net net(Type::kSymmetric, Type::kPortRestricted, 7);
    EXPECT_EQ(net.stats(net.a).nat_mapping_v4, NatMapping::kDependent);
    EXPECT_EQ(net.stats(net.b).nat_mapping_v4, NatMapping::kIndependent);
    // /api/status punched_paths of a: b, with its path, or "absent".
    api::StatusBoard board("9.9.9", 1);
    board.add(net.sim.node(net.a), "http://127.0.0.1:5000", net.sim.endpoint(net.a));
    auto status_path = [&]() -> std::string {
      const auto st = board.status(0);
      for (const auto& p : st["punched_paths"])
        if (p["peer"] == net.sim.node(net.b).id().hex()) return p["path"];
      return "absent";
    };
    size_t from = symmetric_starts ? net.a : net.b, to = symmetric_starts ? net.b : net.a;
    ASSERT_TRUE(net.send(from, to));
    EXPECT_TRUE(net.relayed(from, to));  // first through a relay
    EXPECT_EQ(status_path(), "absent");
    ASSERT_TRUE(net.sim.run_until([&] { return !net.relayed(net.a, net.b) && !net.relayed(net.b, net.a); },
                                  std::chrono::seconds(200)));
    net.sim.run_for(std::chrono::seconds(10));  // the attempt's window ends
    EXPECT_EQ(net.stats(from).upgrade_syncs_sent, net.stats(from).upgrades_ok + net.stats(from).upgrades_failed);
    EXPECT_GE(net.stats(net.a).birthdays, 1u);
    EXPECT_GE(net.stats(net.a).birthday_ports, DhtConfig{}.birthday_ports);
    EXPECT_GE(net.stats(net.b).birthdays, 1u);
    // The probes stop once the peer is heard: up to 2048 per try, every one dead past b's router.
    EXPECT_GE(net.stats(net.b).birthday_probes, 1u);
    // (and the symmetric side's first datagram from each fresh port, TTL-limited too, which only opens its router)
    EXPECT_EQ(net.sim.stats().ttl_expired, net.stats(net.b).birthday_probes + net.stats(net.a).birthday_ports);
    EXPECT_TRUE(net.sim.node(net.a).dht().punched(net.sim.node(net.b).id()));
    EXPECT_TRUE(net.sim.node(net.b).dht().punched(net.sim.node(net.a).id()));
    // Listed as punched whether or not the routing table holds it (/api/status punched_paths).
    auto listed = [&](size_t x, size_t y) {
      auto ids = net.sim.node(x).dht().punched_ids();
      return std::count(ids.begin(), ids.end(), net.sim.node(y).id()) == 1;
    };
    EXPECT_TRUE(listed(net.a, net.b));
    EXPECT_TRUE(listed(net.b, net.a));
    EXPECT_EQ(status_path(), "punched");
    // Both ways, directly now.
    uint64_t relayed_before = net.engine(net.a).stats().relayed_out + net.engine(net.b).stats().relayed_out;
    EXPECT_TRUE(net.send(net.a, net.b));
    EXPECT_TRUE(net.send(net.b, net.a));
    EXPECT_FALSE(net.relayed(net.a, net.b));
    EXPECT_FALSE(net.relayed(net.b, net.a));
    EXPECT_EQ(net.engine(net.a).stats().relayed_out + net.engine(net.b).stats().relayed_out, relayed_before);
  }
}

// An upgraded path has no keepalives of its own (docs/protocol.md 5.2, "Keeping it"): an open stream's liveness
// probes keep it (both routers' 30 s mappings, the fresh port), five idle minutes long; once the stream is closed
// and the pair idle, the path lapses, and the next message still gets through: relayed, then upgraded again.
TEST(UpgradeSim, AnOpenStreamKeepsAnUpgradedPathAndAnIdlePairStillConnects) {
  Net net(Type::kSymmetric, Type::kPortRestricted, 7);
  auto upgrades = [&] { return net.stats(net.a).upgrades_ok + net.stats(net.b).upgrades_ok; };
  ASSERT_TRUE(net.send(net.a, net.b));
  ASSERT_TRUE(net.sim.run_until([&] { return !net.relayed(net.a, net.b) && !net.relayed(net.b, net.a); },
                                std::chrono::seconds(30)));
  uint64_t upgraded = upgrades();
  ASSERT_GE(upgraded, 1u);  // the upgrade made it direct (not a relayed path idling out)
  Streams& sa = net.sim.node(net.a).streams();
  Streams& sb = net.sim.node(net.b).streams();
  auto stream = net.open_stream(net.a, net.b);
  ASSERT_TRUE(stream);
  auto [out, in] = *stream;
  uint64_t relayed_before = net.engine(net.a).stats().relayed_out + net.engine(net.b).stats().relayed_out;
  net.sim.run_for(std::chrono::minutes(5));
  EXPECT_FALSE(net.relayed(net.a, net.b));
  EXPECT_FALSE(net.relayed(net.b, net.a));
  Bytes data(1024, 0x5a), got;
  sa.write(out, data, [](std::optional<size_t>) {});
  net.sim.run_until([&] {
    if (auto r = sb.read(in, std::nullopt)) got.insert(got.end(), r->begin(), r->end());
    return got.size() >= data.size();
  }, std::chrono::seconds(10));
  EXPECT_EQ(got, data);
  EXPECT_EQ(net.engine(net.a).stats().relayed_out + net.engine(net.b).stats().relayed_out, relayed_before);
  // Closed, then idle past every mapping and the fresh port's idle time: the next message still arrives.
  std::optional<bool> closed;
  sa.close(out, [&](bool ok) { closed = ok; });
  ASSERT_TRUE(net.sim.run_until([&] { return closed.has_value(); }, std::chrono::seconds(10)));
  EXPECT_TRUE(*closed);
  net.sim.run_for(std::chrono::minutes(5));
  EXPECT_TRUE(net.send(net.a, net.b));
  EXPECT_TRUE(net.relayed(net.a, net.b));  // the path had lapsed: through a relay first, then upgraded again
  EXPECT_TRUE(net.sim.run_until([&] { return !net.relayed(net.a, net.b) && !net.relayed(net.b, net.a); },
                                std::chrono::seconds(30)));
  EXPECT_GT(upgrades(), upgraded);
  relayed_before = net.engine(net.a).stats().relayed_out + net.engine(net.b).stats().relayed_out;
  EXPECT_TRUE(net.send(net.b, net.a));
  EXPECT_EQ(net.engine(net.a).stats().relayed_out + net.engine(net.b).stats().relayed_out, relayed_before);
}

// Two symmetric NATs: no upgrade can work, and none is tried beyond one SYNC (the path stays relayed): its
// answer shows both mappings dependent, so it is futile on both sides, neither retried nor counted as failed.
// A new relayed path within Birthday::kQuiet gets no SYNC; one after it does (a verdict may have changed).
TEST(UpgradeSim, BothSymmetricStayRelayedWithoutBirthday) {
  Net net(Type::kSymmetric, Type::kSymmetric, 7);
  ASSERT_TRUE(net.send(net.a, net.b));
  net.sim.run_for(std::chrono::seconds(60));  // past the retries (Birthday::kRetryAfter, kMaxTries)
  EXPECT_TRUE(net.relayed(net.a, net.b));
  EXPECT_EQ(net.stats(net.a).birthdays + net.stats(net.b).birthdays, 0u);
  EXPECT_EQ(net.sim.stats().ttl_expired, 0u);
  EXPECT_EQ(net.stats(net.a).upgrade_syncs_sent, 1u);
  EXPECT_EQ(net.stats(net.b).upgrade_syncs_sent, 0u);
  EXPECT_EQ(net.stats(net.b).upgrade_syncs_served, 1u);
  EXPECT_EQ(net.stats(net.a).upgrades_futile, 1u);
  EXPECT_EQ(net.stats(net.b).upgrades_futile, 1u);
  EXPECT_EQ(net.stats(net.a).upgrades_failed + net.stats(net.b).upgrades_failed, 0u);
  EXPECT_TRUE(net.send(net.a, net.b));
  // The relayed path idles out (Engine::kViaIdle; the next send ends it) and the next message sets a new one
  // through the relay fallback: quiet, no SYNC.
  auto new_path = [&] {
    net.sim.run_for(Engine::kViaIdle + std::chrono::seconds(10));
    EXPECT_TRUE(net.send(net.a, net.b));
    EXPECT_TRUE(net.relayed(net.a, net.b));
    net.sim.run_for(std::chrono::seconds(30));
  };
  uint64_t fallbacks = net.stats(net.a).relay_fallbacks_found;
  new_path();
  EXPECT_GT(net.stats(net.a).relay_fallbacks_found, fallbacks);  // a new relayed path
  EXPECT_EQ(net.stats(net.a).upgrade_syncs_sent, 1u);
  // After the quiet time, a new relayed path gets its SYNC.
  net.sim.run_for(dht::Birthday::kQuiet);
  fallbacks = net.stats(net.a).relay_fallbacks_found;
  new_path();
  EXPECT_GT(net.stats(net.a).relay_fallbacks_found, fallbacks);
  EXPECT_EQ(net.stats(net.a).upgrade_syncs_sent, 2u);
  EXPECT_EQ(net.stats(net.a).upgrades_futile, 2u);
}

// Port-restricted on both sides, and no rendezvous introduces anyone (punch_live: targets are never heard
// lately enough): the punch fails and a relay carries the pair. The upgrade's SYNC tells each side the other's
// public endpoint and both send HOLEs at once: direct.
TEST(UpgradeSim, PairAFailedPunchLeftRelayedGoesDirect) {
  Net net(Type::kPortRestricted, Type::kPortRestricted, 3,
          [](NodeConfig& c) { c.dht.punch_live = std::chrono::milliseconds(1); });
  ASSERT_TRUE(net.send(net.a, net.b));
  EXPECT_TRUE(net.relayed(net.a, net.b));
  ASSERT_TRUE(net.sim.run_until([&] { return !net.relayed(net.a, net.b) && !net.relayed(net.b, net.a); },
                                std::chrono::seconds(30)));
  EXPECT_EQ(net.stats(net.a).upgrades_ok, 1u);
  EXPECT_EQ(net.stats(net.a).birthdays + net.stats(net.b).birthdays, 0u);  // no birthday needed
  EXPECT_TRUE(net.send(net.b, net.a));
  EXPECT_FALSE(net.relayed(net.b, net.a));
}

// Without the upgrade, that pair stays relayed (the test above tests the upgrade, not a punch).
TEST(UpgradeSim, WithoutUpgradeThatPairStaysRelayed) {
  Net net(Type::kPortRestricted, Type::kPortRestricted, 3, [](NodeConfig& c) {
    c.dht.punch_live = std::chrono::milliseconds(1);
    c.dht.upgrade = false;
  });
  ASSERT_TRUE(net.send(net.a, net.b));
  net.sim.run_for(std::chrono::seconds(30));
  EXPECT_TRUE(net.relayed(net.a, net.b));
}

// An attacker a holding a relayed path to b (a starts no upgrade itself) sends b twenty SYNCs at once, each
// claiming a dependent mapping at a victim's address: b answers one (one attempt per peer at a time) and runs
// one birthday, whose probes all die past b's router (TTL). A SYNC from a peer b hears directly is refused.
TEST(UpgradeSim, SyncFloodIsBoundedAndProbesDiePastTheRouter) {
  Net net(Type::kSymmetric, Type::kPortRestricted, 7, {}, [](NodeConfig& c) { c.dht.upgrade = false; });
  ASSERT_TRUE(net.send(net.a, net.b));
  auto relay = net.engine(net.a).via(net.engine(net.b).identity().public_key());
  ASSERT_TRUE(relay);
  size_t victim = 3;
  dht::PunchMessage sync;
  sync.kind = dht::PunchKind::kSync;
  sync.mapping = 2;
  sync.endpoint = net.sim.endpoint(victim);
  sync.endpoint.port = 0;
  int answered = 0, refused = 0;
  uint64_t expired = net.sim.stats().ttl_expired;
  Contact b_via{net.sim.node(net.b).id(), net.engine(net.b).identity().public_key(), relay->endpoint};
  for (int i = 0; i < 20; ++i)
    net.engine(net.a).request(b_via, Method::kPunch, dht::encode_punch(sync), [&](RpcResult&& r) {
      (r.ok() ? answered : refused) += 1;
    }, RpcOptions{std::chrono::seconds(2), 1});
  net.sim.run_for(std::chrono::seconds(10));
  EXPECT_EQ(answered, 1);
  EXPECT_EQ(refused, 19);
  EXPECT_EQ(net.stats(net.b).upgrade_syncs_served, 1u);
  EXPECT_EQ(net.stats(net.b).birthdays, 1u);
  EXPECT_EQ(net.stats(net.b).birthday_probes, DhtConfig{}.birthday_probes);
  EXPECT_EQ(net.sim.stats().ttl_expired - expired, DhtConfig{}.birthday_probes);  // every probe died past b's router
  EXPECT_GE(net.stats(net.b).upgrade_refused, 19u);
  // A public node b talks to directly: its SYNC is refused (no relayed path to upgrade).
  size_t p = 1;
  ASSERT_TRUE(net.send(net.b, p));
  ASSERT_FALSE(net.relayed(net.b, p));
  std::optional<bool> ok;
  Contact b_direct{net.sim.node(net.b).id(), net.engine(net.b).identity().public_key(), {}};
  for (const Contact& c : net.sim.node(p).dht().peers())
    if (c.id == b_direct.id) b_direct.endpoint = c.endpoint;
  net.engine(p).request(b_direct, Method::kPunch, dht::encode_punch(sync), [&](RpcResult&& r) { ok = r.ok(); });
  net.sim.run_until([&] { return ok.has_value(); }, std::chrono::seconds(10));
  EXPECT_EQ(ok, std::optional<bool>(false));
  EXPECT_EQ(net.stats(net.b).birthdays, 1u);
}
