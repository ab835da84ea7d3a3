// The adversary simulation (issue 11): colluding attackers (a fifth of the nodes) that placed their ids near
// the targets run the real node code with replaced behaviour while honest nodes put, get, subscribe and
// publish (src/sim/adversary.h). Each attack alone on 200 nodes, every attack at once on 1,000 (the size the
// issue asks of `make test`); the 10,000-node figures come from `storjnet-bench sim-adversary`
// (bench/README.md). Bounds are a little looser than the goals. A get that names no owner is a vote, which
// the coalition's own validly signed value can win: bounded loosely, and reported (docs/protocol.md 10.8).
#include <gtest/gtest.h>

#include "sim/adversary.h"

using namespace storjnet;
using namespace std::chrono_literals;

namespace {
sim::AdversaryConfig scenario(sim::Attack attack, size_t nodes, uint64_t seed = 1) {
  sim::AdversaryConfig c;
  c.seed = seed;
  c.nodes = nodes;
  c.malicious = 0.2;
  c.attack = attack;
  c.placement_bits = 13;
  c.puts = 30;
  c.topics = 3;
  c.subscribers_per_topic = 8;
  c.events_per_topic = 3;
  c.attack_time = 6s;
  return c;
}

// Gets that name the owner: the honest value, every time, never another (whatever the attack). With every
// attack at once on 1,000 nodes (20 puts), `storjnet-bench sim-adversary` seeds 1-20 missed 5 gets of 400 (seeds
// 1, 2, 5 and twice 10) while a put's lookup ended each path at its 2 closest seeds (all colluders: every store
// went to colluders) and stored early on colluders during its lookup (they squatted the honest replicas
// first); none since (docs/protocol.md 10.8).
void expect_owned_gets_hold(const sim::AdversaryResult& r) {
  EXPECT_EQ(r.owned_gets.gets, r.puts_ok);
  EXPECT_EQ(r.owned_gets.ok, r.owned_gets.gets);
  EXPECT_EQ(r.owned_gets.forged, 0u);
}

// Both kinds of get: against attacks that bring no validly signed value of their own, the vote holds too.
void expect_dht_holds(const sim::AdversaryResult& r) {
  expect_owned_gets_hold(r);
  EXPECT_EQ(r.gets.gets, r.puts_ok);
  EXPECT_GE(r.gets.ok_ratio, 0.97);
  EXPECT_EQ(r.gets.forged, 0u);
}

void expect_common(const sim::AdversaryResult& r) {
  EXPECT_EQ(r.joined, r.nodes);
  EXPECT_GT(r.ids_per_target, 0u);
  EXPECT_GT(r.victim_contacts, 10u);
  EXPECT_GE(r.honest_contacts_ratio, 0.5);
}
}  // namespace

TEST(SimAdversary, EclipseAndForgedSubscriptionsLeaveHonestResultsIntact) {
  for (auto a : {sim::Attack::kEclipse, sim::Attack::kForgeSubscribe}) {
    SCOPED_TRACE(sim::attack_name(a));
    auto r = sim::run_adversary(scenario(a, 200));
    expect_common(r);
    expect_dht_holds(r);
    EXPECT_GE(r.pubsub_delivery, 0.97);
    if (a == sim::Attack::kEclipse) {
      EXPECT_GT(r.lies_told, 0u);
    }
    if (a == sim::Attack::kForgeSubscribe) {
      EXPECT_GT(r.honest_registrations_forged, 0u);  // refused: signed by the wrong key
      EXPECT_GT(r.honest_saturated_levels, 0u);      // all-ones filters ignored
    }
  }
}

TEST(SimAdversary, DroppersAndOverwritersAgainstTheDht) {
  // drop: stores acknowledged and dropped, lookups answered with attackers only; the DHT holds. Registrations
  // and events go straight to the topic key's holders (the direct rendezvous), so droppers among them lose
  // nothing while one holder is honest (the greedy route lost ~0.4-0.8 of the events at 200-1,000 nodes).
  auto drop = sim::run_adversary(scenario(sim::Attack::kDrop, 200));
  expect_common(drop);
  expect_dht_holds(drop);
  EXPECT_GE(drop.pubsub_delivery, 0.97);
  // overwrite: forged and future-versioned values are refused by signature, and a get that names the owner
  // never returns the coalition's own validly signed value. A get without an owner votes, and the coalition's
  // value still wins an occasional one (a measured miss: 1 of 40 at 300 nodes), so it is bounded loosely.
  auto over = sim::run_adversary(scenario(sim::Attack::kOverwrite, 200));
  expect_common(over);
  EXPECT_GT(over.attacker_stores, 0u);
  EXPECT_GT(over.honest_bad_signatures, 0u);
  expect_owned_gets_hold(over);
  EXPECT_GE(over.gets.ok_ratio, 0.8);
  EXPECT_GE(over.pubsub_delivery, 0.97);
}

TEST(SimAdversary, ASeedReplaysBitForBit) {
  auto c = scenario(sim::Attack::kAll, 80, 7);
  c.puts = 8;
  c.attack_time = 4s;
  auto a = sim::run_adversary(c), b = sim::run_adversary(c);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.gets.ok, b.gets.ok);
  EXPECT_EQ(a.owned_gets.ok, b.owned_gets.ok);
  EXPECT_EQ(a.events_delivered, b.events_delivered);
  EXPECT_EQ(a.victim_honest_contacts, b.victim_honest_contacts);
  EXPECT_GT(a.lies_told + a.attacker_stores + a.forged_registrations_sent, 0u);
  c.seed = 8;
  EXPECT_NE(sim::run_adversary(c).trace_hash, a.trace_hash);
}

TEST(SimAdversary, AttackNamesRoundTrip) {
  for (auto a : {sim::Attack::kNone, sim::Attack::kEclipse, sim::Attack::kOverwrite, sim::Attack::kDrop,
                 sim::Attack::kForgeSubscribe, sim::Attack::kAll})
    EXPECT_EQ(sim::parse_attack(sim::attack_name(a)), a);
  EXPECT_FALSE(sim::parse_attack("sybil"));
}

TEST(SimAdversary, AThousandNodesWithAFifthAttackingEveryWay) {
  // Issue 11's proof at the size `make test` can afford: 1,000 nodes, 200 of them placed near the targets
  // and doing every attack at once (eclipse, overwrite, drop, forge-subscribe). The 10,000-node figures are
  // the bench's (bench/README.md, sim-adversary).
  auto c = scenario(sim::Attack::kAll, 1000);
  c.puts = 20;
  auto r = sim::run_adversary(c);
  expect_common(r);
  expect_owned_gets_hold(r);
  EXPECT_EQ(r.puts_ok, r.puts);
  EXPECT_GE(r.pubsub_delivery, 0.97);
  EXPECT_GT(r.lies_told, 0u);
  EXPECT_GT(r.honest_bad_signatures, 0u);
  EXPECT_GT(r.honest_registrations_forged, 0u);
}
