// The DHT at scale in the simulator: 2,000 nodes, churn, partitions, hostile peers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <unordered_set>

#include "common/msgpack_util.h"
#include "node/node_internals.h"
#include "dht/codec.h"
#include "dht/signed_value.h"
#include "engine/engine.h"
#include "sim/network_builder.h"
#include "sim/rng.h"
#include "storjnet/simulator.h"

using namespace storjnet;

namespace {

NodeConfig test_config() {
  NodeConfig c;
  c.dht.republish_interval = 60s;
  c.dht.bucket_refresh = 10min;
  c.dht.expire_after = 1h;
  c.dht.original_republish = 30min;
  return c;
}

struct Workload {
  std::vector<std::string> keys;
  std::vector<Bytes> values;
};

Workload make_workload(size_t n, uint64_t seed, const std::string& prefix) {
  sim::Rng rng(seed);
  Workload w;
  for (size_t j = 0; j < n; ++j) {
    w.keys.push_back(prefix + std::to_string(j));
    Bytes v(32 + rng.below(200));
    for (auto& b : v) b = static_cast<uint8_t>(rng.next());
    w.values.push_back(v);
  }
  return w;
}

// Puts every key from a random node among `from` (sequentially); returns how many succeeded.
size_t put_all(Simulator& sim, const Workload& w, const std::vector<size_t>& from, sim::Rng& rng) {
  size_t ok = 0;
  for (size_t j = 0; j < w.keys.size(); ++j) {
    bool done = false;
    sim.node(from[rng.below(from.size())]).dht().put(w.keys[j], w.values[j], [&](const PutResult& r) {
      done = true;
      ok += r.ok;
    });
    sim.run_until([&] { return done; }, 60s);
  }
  return ok;
}

// Gets every key from a random live node among `from`; returns how many returned exactly the value.
size_t get_all(Simulator& sim, const Workload& w, const std::vector<size_t>& from, sim::Rng& rng) {
  size_t ok = 0;
  for (size_t j = 0; j < w.keys.size(); ++j) {
    size_t g;
    do g = from[rng.below(from.size())];
    while (!sim.alive(g));
    bool done = false;
    sim.node(g).dht().get(w.keys[j], [&](GetResult r) {
      done = true;
      ok += r.value && *r.value == w.values[j];
    });
    sim.run_until([&] { return done; }, 60s);
  }
  return ok;
}

std::vector<size_t> range(size_t a, size_t b) {
  std::vector<size_t> v;
  for (size_t i = a; i < b; ++i) v.push_back(i);
  return v;
}

SimConfig sim_config(uint64_t seed) {
  SimConfig c;
  c.seed = seed;
  c.node = test_config();
  return c;
}

// n nodes join in waves (sim::join_network) and settle for 5 s; whether every join succeeded.
bool start_network(Simulator& sim, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; ++i) sim.add_node();
  const size_t joined = sim::join_network(sim, seed);
  sim.run_for(5s);
  return joined == n;
}

// Nodes 1 to n-1 bootstrap through node 0 at the same moment, as the dht bench starts them; `joined` (node 0
// counted) grows as their joins end, so it must outlive the simulation's run.
void join_at_once(Simulator& sim, size_t n, size_t& joined) {
  joined = 1;
  for (size_t i = 1; i < n; ++i) sim.node(i).dht().bootstrap({sim.endpoint(0)}, [&joined](bool ok) { joined += ok; });
}

// The joins' second looks of nodes 1 to n-1 but `skip`: asks of the closest, and own-id lookups.
struct SecondLooks {
  uint64_t checks = 0, lookups = 0;
};
SecondLooks second_looks(Simulator& sim, size_t n, size_t skip = SIZE_MAX) {
  SecondLooks r;
  for (size_t i = 1; i < n; ++i) {
    if (i == skip) continue;
    r.checks += sim.node(i).dht().stats().rejoin_checks;
    r.lookups += sim.node(i).dht().stats().rejoin_lookups;
  }
  return r;
}

}  // namespace

// One 2,000-node network for both phases (ctest runs every test in its own process, so the phases that
// depend on each other live in one test).
TEST(Dht2000, PutsAndGetsThenAQuarterKilledAndGetsStillSucceed) {
  SimConfig cfg;
  cfg.seed = 2000;
  cfg.node = test_config();
  // Dial-back's signed testimonies made this test 60% slower under ASan (1,013 s on a loaded machine, near
  // the suite's 1,200 s per test); its subject is puts and gets under churn. Dial-back is exercised by
  // DhtDialBack.*, SimNatDht.* and every other simulation, where it is on by default.
  cfg.node.dht.dial_back = false;
  Simulator sim(cfg);
  for (int i = 0; i < 2000; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 2000), 2000u);
  sim.run_for(5s);
  Workload work = make_workload(500, 11, "key-");
  sim::Rng rng(5);
  auto all = range(0, 2000);
  // 500 puts, then 500 gets from random nodes.
  EXPECT_EQ(put_all(sim, work, all, rng), 500u);
  EXPECT_EQ(get_all(sim, work, all, rng), 500u);
  EXPECT_GT(sim.node(17).dht().stats().routing_contacts, 40u);
  // 25% of the nodes (holders included) die; after one republish interval every get still succeeds.
  std::vector<size_t> alive;
  for (size_t i = 0; i < 2000; ++i) {
    if (rng.uniform() < 0.25) sim.kill(i);
    else alive.push_back(i);
  }
  ASSERT_GT(alive.size(), 1400u);
  sim.run_for(66s);  // one republish interval (60 s, jittered +-10%)
  EXPECT_EQ(get_all(sim, work, alive, rng), 500u);
}

// A full bucket pings its oldest entry for a newcomer only once that entry went quiet (quiet_after): a join,
// where every entry was just heard from, sends no liveness pings; with quiet_after 0 the same join does.
TEST(DhtSim, AJoinPingsNoRecentlyHeardContact) {
  auto pings_during_join = [](Duration quiet_after) {
    SimConfig cfg;
    cfg.seed = 9;
    cfg.node = test_config();
    cfg.node.dht.quiet_after = quiet_after;
    Simulator sim(cfg);
    for (int i = 0; i < 100; ++i) sim.add_node();
    EXPECT_EQ(sim::join_network(sim, 9), 100u);
    uint64_t pings = 0;
    for (size_t i = 0; i < sim.size(); ++i) {
      for (auto& m : sim.node(i).stats().requests)
        if (m.method == "kademlia_ping") pings += m.out;
      pings -= sim.node(i).dht().stats().verify_pings;  // newcomers asked before they enter the table
    }
    return pings;
  };
  EXPECT_EQ(pings_during_join(15min), 0u);
  // 10 (14 before find_node answers carried dial-back verdicts): the join fills far buckets to half of k, so
  // few are full.
  EXPECT_GT(pings_during_join(0s), 5u);
}

// DhtConfig::newcomer_wait: a request sender is pinged only if, after the wait, neither the table nor another
// exchange has proven it. In a join many are proven by our own lookups' answers meanwhile (spared), and no
// node is left out of every table.
TEST(DhtSim, AWaitBeforeCheckingNewcomersSparesPingsAndLeavesNoNodeOut) {
  struct Run {
    uint64_t pings = 0, spared = 0;
    size_t unheld = 0;
  };
  auto run = [](Duration wait) {
    SimConfig cfg;
    cfg.seed = 9;
    cfg.node = test_config();
    cfg.node.dht.newcomer_wait = wait;
    Simulator sim(cfg);
    for (int i = 0; i < 100; ++i) sim.add_node();
    EXPECT_EQ(sim::join_network(sim, 9), 100u);
    sim.run_for(wait + 5s);
    Run r;
    std::unordered_set<NodeId> held;
    for (size_t i = 0; i < sim.size(); ++i) {
      r.pings += sim.node(i).dht().stats().verify_pings;
      r.spared += sim.node(i).dht().stats().verify_spared;
      for (const Contact& c : sim.node(i).dht().peers()) held.insert(c.id);
    }
    for (size_t i = 0; i < sim.size(); ++i) r.unheld += !held.count(sim.node(i).id());
    return r;
  };
  Run now = run(0s), later = run(2s);
  EXPECT_EQ(now.spared, 0u);
  EXPECT_GT(later.spared, 0u);
  EXPECT_LT(later.pings, now.pings);
  EXPECT_EQ(now.unheld, 0u);
  EXPECT_EQ(later.unheld, 0u);
}

// A network started at once (every node bootstraps through node 0 at the same moment, as the dht bench does):
// a join refreshes only the far buckets holding fewer than join_bucket_fill (3) contacts, each until it holds 3,
// and the second look 5 s later asks the 3 closest (the table then holds k or more). Every node's own k closest
// are held, and the far buckets hold what lookups need (49 contacts a node) for 45.4 find_node per node (with a
// fill of 5: 60 contacts for 52.8, and 69.4 when the second look was a lookup of the own id; 10: 80 for 87.1; 20:
// 96 for 126.4; no refreshes at the join: 34 for 47.7).
TEST(DhtSim, ANetworkStartedAtOnceFillsItsTablesWithoutRefreshingFullBuckets) {
  SimConfig cfg = sim_config(11);
  Simulator sim(cfg);
  const size_t n = 300;
  for (size_t i = 0; i < n; ++i) sim.add_node();
  size_t joined = 0;
  join_at_once(sim, n, joined);
  sim.run_for(30s);
  ASSERT_EQ(joined, n);
  uint64_t find_nodes = 0;
  size_t table = 0, own_closest_held = 0;
  const size_t k = cfg.node.dht.k;
  for (size_t i = 0; i < n; ++i) {
    for (auto& m : sim.node(i).stats().requests)
      if (m.method == "kademlia_find_node") find_nodes += m.out;
    auto peers = sim.node(i).dht().peers();
    table += peers.size();
    std::unordered_set<NodeId> held;
    for (auto& c : peers) held.insert(c.id);
    std::vector<NodeId> others;
    for (size_t j = 0; j < n; ++j)
      if (j != i) others.push_back(sim.node(j).id());
    NodeId self = sim.node(i).id();
    std::sort(others.begin(), others.end(), [&](auto& a, auto& b) { return closer(self, a, b); });
    for (size_t q = 0; q < k; ++q) own_closest_held += held.count(others[q]);
  }
  double per_node = static_cast<double>(find_nodes) / n;
  SecondLooks looks = second_looks(sim, n);
  EXPECT_EQ(looks.checks, n - 1);    // every node but node 0 (which joined no one) looked again, by asking
  EXPECT_LE(looks.lookups, n / 20);  // and few had news (5 here): a node that joined after their own lookup
  EXPECT_LT(per_node, 50.0);
  EXPECT_GE(static_cast<double>(table) / n, 45.0);
  EXPECT_GE(own_closest_held, n * k * 97 / 100);
}

// A join looks its own id up, then refreshes its thin far buckets one after another, each only if it still
// needs it (docs/protocol.md 5, "Join"): a node never runs two of its join's lookups at once, so it holds one
// shortlist and one lookup's requests at a time. Run at once, the refreshes of each of 1,000 nodes (about four
// then, with a join_bucket_fill of 5) held ~8 KiB per node of resident memory after the settle (bench/README.md).
TEST(DhtSim, AJoinsRefreshesRunOneAfterAnother) {
  Simulator sim(sim_config(13));
  const size_t n = 200;
  for (size_t i = 0; i < n; ++i) sim.add_node();
  size_t joined = 0;
  join_at_once(sim, n, joined);
  std::vector<uint64_t> most_at_once(n, 0);
  for (auto t = 0ms; t < 4s; t += 2ms) {  // before the second looks (5 s)
    sim.run_for(2ms);
    for (size_t i = 1; i < n; ++i) {
      auto st = sim.node(i).dht().stats();
      most_at_once[i] = std::max(most_at_once[i], st.lookups - st.lookups_completed);
    }
  }
  ASSERT_EQ(joined, n);
  uint64_t lookups = 0;
  for (size_t i = 1; i < n; ++i) {
    EXPECT_EQ(most_at_once[i], 1u) << "node " << i;
    auto st = sim.node(i).dht().stats();
    lookups += st.lookups;
    EXPECT_EQ(st.join_refresh_runs, 1u) << "node " << i;  // one run a join, told ended once its last refresh did
    EXPECT_EQ(st.join_refresh_runs_done, 1u) << "node " << i;
  }
  EXPECT_GE(lookups, 2 * (n - 1));  // the own id's and at least one refresh a node, on average (2.8 here)
}

// 5 s after its join a node with k contacts or more asks its 3 closest where its id belongs and looks itself up
// only when one names a node nearer than its k-th closest that it does not hold (docs/protocol.md 5, "Join").
// Every node checks, and few look up (those that had not heard of the newcomer either); a node that could not
// hear a newcomer near it (cut off while the newcomer joined) finds it through the check's answers.
TEST(DhtSim, AJoinsSecondLookIsAnAskOfTheClosestAndALookupOnlyForNews) {
  Simulator sim(sim_config(5));
  const size_t n = 60;
  for (size_t i = 0; i <= n; ++i) sim.add_node();
  const size_t late = n;  // joins while the node nearest to it is cut off
  size_t near_late = 1;
  for (size_t i = 1; i < n; ++i)
    if (closer(sim.node(late).id(), sim.node(i).id(), sim.node(near_late).id())) near_late = i;
  size_t joined = 0;
  join_at_once(sim, n, joined);
  sim.run_for(2s);
  ASSERT_EQ(joined, n);
  std::vector<uint8_t> side(n + 1, 0);
  side[near_late] = 1;
  sim.partition(side);
  bool late_joined = false;
  sim.node(late).dht().bootstrap({sim.endpoint(0)}, [&](bool ok) { late_joined = ok; });
  sim.run_for(2s);
  ASSERT_TRUE(late_joined);
  sim.heal();
  auto holds = [&](size_t i, const NodeId& id) {
    for (auto& c : sim.node(i).dht().peers())
      if (c.id == id) return true;
    return false;
  };
  ASSERT_FALSE(holds(near_late, sim.node(late).id())) << "the scenario needs the cut-off node not to know it";
  sim.run_for(30s);
  SecondLooks looks = second_looks(sim, n, near_late);
  EXPECT_EQ(looks.checks, n - 2);    // every node but the cut-off one and node 0 (which joined no one)
  EXPECT_LE(looks.lookups, n / 10);  // the few that had not heard of the newcomer either
  DhtStats cut = sim.node(near_late).dht().stats();
  EXPECT_EQ(cut.rejoin_checks, 1u);
  EXPECT_EQ(cut.rejoin_lookups, 1u);  // an answer named the newcomer
  EXPECT_TRUE(holds(near_late, sim.node(late).id()));
}

// The newcomer wait (1 s by default) in a network started at once through one node: the tables come out as
// complete as pinging every newcomer at once, for fewer pings. (The simulator does not reproduce what the rule
// "at once while the bucket holds fewer than k/2" is for: on loopback, with `storjnet-bench dht --nodes 1000`,
// a plain wait left the tables at 38 contacts per node; DhtNewcomers tests the rule itself.)
TEST(DhtSim, ANetworkStartedAtOnceFillsItsTablesDespiteTheNewcomerWait) {
  struct Run {
    double table = 0;
    size_t smallest = SIZE_MAX;
    uint64_t pings = 0;
  };
  auto run = [](Duration wait) {
    SimConfig cfg = sim_config(12);
    cfg.node.dht.newcomer_wait = wait;
    Simulator sim(cfg);
    const size_t n = 200;
    for (size_t i = 0; i < n; ++i) sim.add_node();
    size_t joined = 0;
    join_at_once(sim, n, joined);
    sim.run_for(30s);
    EXPECT_EQ(joined, n);
    Run r;
    for (size_t i = 0; i < n; ++i) {
      size_t held = sim.node(i).dht().peers().size();
      r.table += static_cast<double>(held) / n;
      r.smallest = std::min(r.smallest, held);
      r.pings += sim.node(i).dht().stats().verify_pings;
    }
    return r;
  };
  Run now = run(0s), later = run(1s);
  EXPECT_GE(later.table, now.table * 0.97);
  EXPECT_GE(later.smallest, now.smallest * 9 / 10);
  EXPECT_LT(later.pings, now.pings * 9 / 10);
}

TEST(DhtSim, PartitionedHalvesConvergeAfterHealing) {
  SimConfig cfg;
  cfg.seed = 77;
  cfg.node = test_config();
  Simulator sim(cfg);
  const size_t n = 400;
  for (size_t i = 0; i < n; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 77), n);
  sim.run_for(5s);
  std::vector<uint8_t> side(n);
  for (size_t i = 0; i < n; ++i) side[i] = i < n / 2 ? 0 : 1;
  sim.partition(side);
  auto left = range(0, n / 2), right = range(n / 2, n);
  auto wl = make_workload(40, 1, "left-"), wr = make_workload(40, 2, "right-");
  sim::Rng rng(3);
  EXPECT_EQ(put_all(sim, wl, left, rng), 40u);
  EXPECT_EQ(put_all(sim, wr, right, rng), 40u);
  sim.heal();
  sim.run_for(66s);  // one republish interval
  EXPECT_EQ(get_all(sim, wl, right, rng), 40u);
  EXPECT_EQ(get_all(sim, wr, left, rng), 40u);
  EXPECT_EQ(get_all(sim, wl, left, rng), 40u);
  EXPECT_EQ(get_all(sim, wr, right, rng), 40u);
}

// Some of the key's closest nodes died without anyone noticing, so answers still name them: the put still
// acknowledges at the first attempt, and the value lands on the k closest live nodes, every one of them, and
// on no other. (A cheaper put lookup that stored on the k closest its first answers named placed 15 of 20
// here: bench/README.md, "dht puts".)
TEST(DhtSim, APutStoresOnTheKClosestLiveNodesThoughTheClosestNamedAreDead) {
  const SimConfig cfg = sim_config(21);
  Simulator sim(cfg);
  const size_t n = 300, k = cfg.node.dht.k;
  ASSERT_TRUE(start_network(sim, n, 21));
  NodeId key = dht_key("dead-neighbours");
  std::vector<size_t> by_distance = range(0, n);
  std::sort(by_distance.begin(), by_distance.end(), [&](size_t a, size_t b) {
    return (sim.contact(a).id ^ key) < (sim.contact(b).id ^ key);
  });
  for (size_t i = 0; i < 10; i += 2) sim.kill(by_distance[i]);  // 5 of the 10 closest
  size_t putter = by_distance[n - 1];
  std::optional<PutResult> put;
  sim.node(putter).dht().put("dead-neighbours", as_bytes("v"), [&](const PutResult& r) { put = r; });
  sim.run_until([&] { return put.has_value(); }, 30s);
  ASSERT_TRUE(put);
  EXPECT_TRUE(put->ok) << put->error;
  EXPECT_EQ(put->attempts, 1);
  sim.run_for(5s);
  size_t live_closest_holding = 0, live_seen = 0, holders = 0;
  for (size_t i : by_distance) {
    if (!sim.alive(i)) continue;
    bool holds = sim.node(i).dht().stats().stored_values > 0;
    holders += holds;
    if (live_seen++ < k) live_closest_holding += holds;
  }
  EXPECT_EQ(holders, k);  // the putter keeps none: it is the farthest node
  EXPECT_EQ(live_closest_holding, k);
}

TEST(DhtSim, APutAmongDeadContactsEndsWithoutWaitingOutTheirTimeouts) {
  // A fifth of the network dies unnoticed: every putter's table still holds dead contacts, some among the seeds
  // and the closest of its lookup's paths. They go slow (unanswered past a retransmission timeout) and the put's
  // lookup goes on without them instead of waiting out each one's whole timeout (1 s), one after another. Here
  // the median was 1,115 ms and the slowest 4,337 ms when it waited.
  const SimConfig cfg = sim_config(23);
  Simulator sim(cfg);
  const size_t n = 300;
  ASSERT_TRUE(start_network(sim, n, 23));
  sim::Rng rng(23);
  std::vector<size_t> alive;
  for (size_t i = 0; i < n; ++i) {
    if (rng.uniform() < 0.2) sim.kill(i);
    else alive.push_back(i);
  }
  std::vector<double> ms;
  for (int j = 0; j < 30; ++j) {
    std::optional<PutResult> put;
    TimePoint start = sim.now();
    sim.node(alive[rng.below(alive.size())]).dht().put("among-the-dead-" + std::to_string(j), as_bytes("v"),
                                                       [&](const PutResult& r) { put = r; });
    sim.run_until([&] { return put.has_value(); }, 30s);
    ASSERT_TRUE(put);
    EXPECT_TRUE(put->ok) << put->error;
    EXPECT_EQ(put->attempts, 1);
    ms.push_back(std::chrono::duration<double, std::milli>(sim.now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("MEASURED put among dead contacts: median %.0f ms, max %.0f ms\n", ms[ms.size() / 2], ms.back());
  EXPECT_LT(ms[ms.size() / 2], 500.0);  // half a request's timeout
  EXPECT_LT(ms.back(), 1500.0);
}

TEST(DhtSim, ARestartFromASavedTableOfWhichAThirdDiedJoinsWithoutWaitingOutTheDead) {
  // A third of the network dies unnoticed; ten of the dead restart, one after another, from the routing tables they
  // held and with no seed. A join probes every saved contact and goes on once each answered or went slow (overdue,
  // 250 ms for a peer never timed), and its look at its own id takes the probes' answers as its own (it asks those
  // contacts nothing again) and lets the slow ones go as a put's does. Waiting out each dead contact cost every
  // join the whole timeout (2 s) at least; asking the answered probes again, a median of 609 ms here.
  const SimConfig cfg = sim_config(31);
  Simulator sim(cfg);
  const size_t n = 300, k = cfg.node.dht.k;
  ASSERT_TRUE(start_network(sim, n, 31));
  sim::Rng rng(31);
  std::vector<size_t> dead;
  for (size_t i = 0; i < n; ++i)
    if (rng.uniform() < 0.33) {
      sim.kill(i);
      dead.push_back(i);
    }
  // Restarts dead[r] from the table it held, through `seeds`; the join's time in ms.
  auto rejoin = [&](size_t r, std::vector<Endpoint> seeds) {
    const size_t i = dead[r];
    auto disk = make_memory_storage();
    disk->save_contacts(sim.node(i).dht().peers());
    sim.restart(i, cfg.node, std::move(disk));
    auto joined = std::make_shared<std::optional<bool>>();
    TimePoint start = sim.now();
    sim.node(i).dht().bootstrap(seeds, [joined](bool ok) { *joined = ok; });
    sim.run_until([&] { return joined->has_value(); }, 30s);
    EXPECT_TRUE(joined->has_value() && **joined);
    // Its probes' answers named its neighbourhood: the lookups it finished by then (its own id's, and any refresh)
    // asked few (10-13 here; 25-33 when it asked its answered probes again).
    const DhtStats st = sim.node(i).dht().stats();
    EXPECT_LT(st.lookup_rpcs, k) << "node " << i;
    // The probes asked for the saved contacts' dial-back verdicts too, as the lookup's find_node would have: their
    // answers confirmed the reachable ones (53-70 here; none when a probe asks without the verdict bit).
    EXPECT_GE(st.dial_back_verdicts_heard, k) << "node " << i;
    return std::chrono::duration<double, std::milli>(sim.now() - start).count();
  };
  std::vector<double> ms;
  for (size_t r = 0; r < 10; ++r) {
    const size_t i = dead[r];
    ms.push_back(rejoin(r, {}));
    // Its table holds its k closest live nodes.
    const NodeId self = sim.contact(i).id;
    std::vector<NodeId> live;
    for (size_t j = 0; j < n; ++j)
      if (j != i && sim.alive(j)) live.push_back(sim.contact(j).id);
    std::sort(live.begin(), live.end(), [&](const NodeId& a, const NodeId& b) { return closer(self, a, b); });
    size_t held = 0;
    for (size_t j = 0; j < k; ++j) held += sim.node(i).dht().closest_known(live[j], 1).front().id == live[j];
    EXPECT_GE(held, k - 1) << "node " << i;
  }
  std::sort(ms.begin(), ms.end());
  std::printf("MEASURED rejoin from a saved table a third dead: median %.0f ms, max %.0f ms\n", ms[ms.size() / 2],
              ms.back());
  EXPECT_LT(ms[ms.size() / 2], 450.0);
  EXPECT_LT(ms.back(), 1000.0);  // half the timeout of one dead contact
  // A dead seed, known by its address alone, holds the join until its hello is overdue as a request to a peer
  // never timed is (250 ms on a restart), not until its first retransmission (667 ms: 1,034 ms here when it
  // did) nor for its whole timeout (2 s).
  double through_dead_seed = rejoin(10, {sim.endpoint(dead[11])});
  std::printf("MEASURED rejoin through a dead seed: %.0f ms\n", through_dead_seed);
  EXPECT_LT(through_dead_seed, 500.0);
}

TEST(DhtSim, PutAgainGivesTheNewerValueEverywhere) {
  SimConfig cfg;
  cfg.seed = 8;
  cfg.node = test_config();
  Simulator sim(cfg);
  for (int i = 0; i < 200; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 8), 200u);
  bool done = false;
  sim.node(3).dht().put("k", as_bytes("first"), [&](const PutResult& r) { done = r.ok; });
  sim.run_until([&] { return done; }, 30s);
  sim.run_for(1s);
  // Another node's put under the same key is refused: the first owner keeps it while it lives.
  std::optional<PutResult> rival;
  sim.node(150).dht().put("k", as_bytes("rival"), [&](const PutResult& r) { rival = r; });
  sim.run_until([&] { return rival.has_value(); }, 30s);
  ASSERT_TRUE(rival);
  EXPECT_FALSE(rival->ok);
  EXPECT_NE(rival->error.find("another owner"), std::string::npos) << rival->error;
  done = false;
  sim.node(3).dht().put("k", as_bytes("second"), [&](const PutResult& r) { done = r.ok; });
  sim.run_until([&] { return done; }, 30s);
  sim.run_for(2s);
  size_t holders = 0, stale = 0;
  for (int i = 0; i < 200; ++i) {
    std::optional<Bytes> got;
    bool fin = false;
    sim.node(i).dht().get("k", [&](GetResult r) {
      fin = true;
      got = r.value;
      holders += r.local;
      EXPECT_EQ(r.owner, sim.node(3).id());
    });
    sim.run_until([&] { return fin; }, 30s);
    ASSERT_TRUE(got) << "node " << i;
    stale += *got != Bytes({'s', 'e', 'c', 'o', 'n', 'd'});
  }
  EXPECT_EQ(stale, 0u);
  EXPECT_GE(holders, 10u);
}

TEST(DhtSim, FindOnlineSelfAndOfflineAndStunAndValueTooLarge) {
  SimConfig cfg;
  cfg.seed = 9;
  cfg.node = test_config();
  Simulator sim(cfg);
  for (int i = 0; i < 100; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 9), 100u);
  std::optional<Endpoint> online, self, offline = Endpoint();
  bool a = false, b = false, c = false;
  sim.node(5).dht().find(sim.contact(77).id, [&](auto e) { online = e, a = true; });
  sim.node(5).dht().find(sim.contact(5).id, [&](auto e) { self = e, b = true; });
  sim.kill(42);
  TimePoint start = sim.now();
  sim.node(5).dht().find(sim.contact(42).id, [&](auto e) { offline = e, c = true; });
  sim.run_until([&] { return a && b && c; }, 30s);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(online, sim.endpoint(77));
  EXPECT_EQ(self, sim.endpoint(5));
  EXPECT_FALSE(offline);
  EXPECT_LE(sim.now() - start, sim.node(5).dht().config().find_timeout + 1s);
  PutResult big;
  sim.node(5).dht().put("big", Bytes(kMaxValueSize + 1), [&](const PutResult& r) { big = r; });
  EXPECT_FALSE(big.ok);
  EXPECT_NE(big.error.find("too large"), std::string::npos);
  auto peers = sim.node(5).dht().peers();
  EXPECT_GT(peers.size(), 20u);
  for (auto& p : peers) EXPECT_EQ(p.id, sim.contact(static_cast<size_t>(sim.index_of(p.endpoint))).id);
}

TEST(DhtSim, HostilePeerFloodsAreBoundedAndOthersStillServed) {
  SimConfig cfg;
  cfg.seed = 10;
  cfg.node = test_config();
  cfg.node.dht.max_bytes_per_publisher = 64 * 1024;
  Simulator sim(cfg);
  for (int i = 0; i < 30; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 10), 30u);
  Engine& attacker = NodeInternals::engine(sim.node(1));
  Contact victim = sim.contact(0);
  size_t stored = 0, refused = 0;
  uint64_t version = NodeInternals::engine(sim.node(1)).env().unix_us();
  // 100,000 stores of 1 KiB from one peer, in bursts.
  for (int burst = 0; burst < 100; ++burst) {
    for (int i = 0; i < 1000; ++i) {
      StoredValue v;
      v.key = dht_key("flood-" + std::to_string(burst * 1000 + i));
      v.value = Bytes(1024, 7);
      v.version = version;
      dht::sign_value(v, attacker.identity(), attacker.config().network_id);
      attacker.request(victim, Method::kStore, dht::encode_store(v), [&](RpcResult&& r) {
        if (r.ok()) ++stored;
        else ++refused;
      }, RpcOptions{2s, 1});
    }
    sim.run_for(200ms);
  }
  // find_node flood with garbage targets and a malformed body.
  for (int i = 0; i < 20000; ++i) attacker.request(victim, Method::kFindNode, dht::encode_id_request(dht_key(std::to_string(i))), [](RpcResult&&) {}, RpcOptions{2s, 1});
  attacker.request(victim, Method::kFindNode, as_bytes("\x93garbage"), [](RpcResult&&) {});
  sim.run_for(5s);
  auto st = sim.node(0).dht().stats();
  EXPECT_LE(st.stored_bytes, 64u * 1024 + 1024);
  EXPECT_GT(refused, 90000u);
  EXPECT_GT(NodeInternals::engine(sim.node(0)).drops().get(DropReason::kRateLimited), 0u);
  // Another peer is still served: a put from node 2 lands and a get from node 3 sees it.
  bool put_ok = false, got = false;
  sim.node(2).dht().put("honest", as_bytes("value"), [&](const PutResult& r) { put_ok = r.ok; });
  sim.run_for(3s);
  sim.node(3).dht().get("honest", [&](GetResult r) { got = r.value && *r.value == Bytes({'v', 'a', 'l', 'u', 'e'}); });
  sim.run_for(3s);
  EXPECT_TRUE(put_ok);
  EXPECT_TRUE(got);
}

// A put stores nothing before its lookup ends: a node told the value during the lookup (the early stores this
// replaced) could be a colluder that squats the key's honest neighbourhood with its own value before the
// owner's stores reach it (docs/protocol.md 10.8). Every store is sent at the lookup's end, so the first
// acknowledgement comes at least one round trip (here >= 10 ms: links are 5-45 ms one way) after it.
TEST(DhtSim, APutStoresNothingBeforeItsLookupEnds) {
  SimConfig cfg;
  cfg.seed = 21;
  cfg.node = test_config();
  Simulator sim(cfg);
  for (int i = 0; i < 300; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 21), 300u);
  sim.run_for(5s);
  size_t puts = 0, ok = 0, with_the_lookup = 0;
  for (int j = 0; j < 30; ++j) {
    bool done = false;
    TimePoint start = sim.now();
    sim.node(static_cast<size_t>(j * 7) % sim.size()).dht().put("early-" + std::to_string(j), Bytes{1, 2, 3},
                                                                 [&, start](const PutResult& r) {
      done = true;
      ++puts;
      ok += r.ok;
      with_the_lookup += r.ok && (sim.now() - start) - r.lookup.elapsed < 10ms;
    });
    sim.run_until([&] { return done; }, 30s);
  }
  EXPECT_EQ(puts, 30u);
  EXPECT_EQ(ok, 30u);
  EXPECT_EQ(with_the_lookup, 0u) << with_the_lookup << " of 30 answered within a round trip of the lookup's end";
}
