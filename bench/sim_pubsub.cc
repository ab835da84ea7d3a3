// sim-pubsub: pubsub delivery in the simulator. N nodes (50 ms median one-way latency), topics with 1, 10
// and 100 subscribers, E events in all (a third per subscriber count), optionally a fraction of the nodes
// killed after subscribing (not noticed by the others). One RESULT_JSON line with the totals
// and a `per_subscribers` array (one object per subscriber count).
#include <map>
#include <set>

#include "bench_util.h"
#include "testing/oracle_topology.h"
#include "sim/network_builder.h"
#include "sim/rng.h"
#include "storjnet/simulator.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {

struct Opts {
  size_t nodes = 1000;
  size_t events = 1000;
  uint64_t seed = 1;
  double kill = 0;
  std::string mode = "both";       // quasar | rendezvous | both
  std::string route = "direct";    // direct | greedy: how the rendezvous reaches the holders (PubsubConfig::direct)
  std::string topology = "dht";  // dht | oracle
  size_t topics_per_class = 10;
  double interval_ms = 10;
  bool cdf = false;
};

void run(const Opts& o) {
  auto t0 = std::chrono::steady_clock::now();
  SimConfig cfg;
  cfg.seed = o.seed;
  cfg.link.latency_min = 10ms;
  cfg.link.latency_max = 90ms;  // one-way base latency uniform in [10, 90] ms: median 50 ms
  cfg.node.pubsub.quasar = o.mode != "rendezvous";
  cfg.node.pubsub.rendezvous = o.mode != "quasar";
  cfg.node.pubsub.direct = o.route == "direct";
  Simulator sim(cfg);
  for (size_t i = 0; i < o.nodes; ++i) sim.add_node();
  std::unique_ptr<pubsub::OracleTopology> oracle;
  bool dht_ok = false;
  if (o.topology == "dht") {
    dht_ok = sim::join_network(sim, o.seed) == o.nodes;  // the same joins as sim-dht (waves of 50)
    sim.run_for(5s);
  }
  if (!dht_ok) {
    std::vector<Contact> contacts;
    for (size_t i = 0; i < o.nodes; ++i) contacts.push_back(sim.contact(i));
    oracle = std::make_unique<pubsub::OracleTopology>(std::move(contacts), 20, o.seed);
    for (size_t i = 0; i < o.nodes; ++i) sim.node(i).pubsub().set_topology(oracle->for_node(i));
  }
  sim.run_for(2s);
  double setup_s = seconds_since(t0);

  sim::Rng rng(o.seed * 7919 + 17);
  const std::vector<size_t> classes = {1, 10, 100};
  struct Topic {
    std::string name;
    size_t cls;
    std::vector<size_t> subs;
  };
  std::vector<Topic> topics;
  for (size_t c = 0; c < classes.size(); ++c)
    for (size_t r = 0; r < o.topics_per_class; ++r) {
      Topic t{"bench-topic-" + std::to_string(o.seed) + "-" + std::to_string(c * o.topics_per_class + r), c, {}};
      std::set<size_t> chosen;
      size_t want = std::min(classes[c], o.nodes);
      while (chosen.size() < want) chosen.insert(rng.below(o.nodes));
      t.subs.assign(chosen.begin(), chosen.end());
      topics.push_back(std::move(t));
    }
  struct Seen {
    int count = 0;
    TimePoint first{};
  };
  std::map<std::pair<size_t, uint64_t>, Seen> seen;
  std::vector<bool> dead(o.nodes, false);
  uint64_t first_live = 0;  // first deliveries at live nodes
  for (size_t i = 0; i < o.nodes; ++i)
    sim.node(i).pubsub().set_on_event([&, i](const std::string&, const std::string& ev) {
      auto& s = seen[{i, nlohmann::json::parse(ev).at("seq").get<uint64_t>()}];
      if (s.count++ == 0) {
        s.first = sim.now();
        first_live += !dead[i];
      }
    });
  for (const auto& t : topics)
    for (size_t s : t.subs) sim.node(s).pubsub().subscribe(t.name);
  sim.run_for(5s);

  // Kill a fraction of the nodes (subscribers included); nobody is told.
  size_t to_kill = static_cast<size_t>(o.kill * o.nodes);
  for (size_t k = 0; k < to_kill;) {
    size_t i = rng.below(o.nodes);
    if (dead[i]) continue;
    dead[i] = true;
    sim.kill(i);
    ++k;
  }

  struct Class {
    uint64_t events = 0, expected = 0, delivered = 0, duplicates = 0, datagrams = 0;
    std::vector<double> lat;
    double sim_s = 0;
  };
  std::vector<Class> res(classes.size());
  size_t per_class = o.events / classes.size();
  uint64_t seq = 0;
  for (size_t c = 0; c < classes.size(); ++c) {
    size_t count = c + 1 == classes.size() ? o.events - per_class * (classes.size() - 1) : per_class;
    std::vector<const Topic*> mine;
    for (const auto& t : topics)
      if (t.cls == c) mine.push_back(&t);
    uint64_t sent0 = sim.stats().sent, live0 = first_live;
    TimePoint c0 = sim.now();
    std::vector<std::pair<uint64_t, TimePoint>> published;
    uint64_t expected = 0;
    std::map<uint64_t, const Topic*> topic_of;
    for (size_t e = 0; e < count; ++e, ++seq) {
      const Topic* t = mine[e % mine.size()];
      size_t pub;
      do pub = rng.below(o.nodes);
      while (dead[pub]);
      sim.node(pub).pubsub().publish(t->name, nlohmann::json{{"seq", seq}, {"payload", "6f6468742d62656e"}}.dump());
      published.push_back({seq, sim.now()});
      topic_of[seq] = t;
      for (size_t s : t->subs) expected += !dead[s];
      sim.run_for(std::chrono::microseconds(static_cast<int64_t>(o.interval_ms * 1000)));
    }
    sim.run_until([&] { return first_live - live0 >= expected; }, 15s);
    sim.run_for(2s);  // late duplicates
    Class& r = res[c];
    r.events = count;
    r.expected = expected;
    for (const auto& [s, when] : published)
      for (size_t sub : topic_of[s]->subs) {
        if (dead[sub]) continue;
        auto it = seen.find({sub, s});
        if (it == seen.end()) continue;
        ++r.delivered;
        r.duplicates += it->second.count - 1;
        r.lat.push_back(std::chrono::duration<double, std::milli>(it->second.first - when).count());
      }
    r.datagrams = sim.stats().sent - sent0;
    r.sim_s = std::chrono::duration<double>(sim.now() - c0).count();
  }
  PubsubStats tot;
  for (size_t i = 0; i < o.nodes; ++i) {
    auto s = sim.node(i).pubsub().stats();
    tot.route_hop_failures += s.route_hop_failures;
    tot.quasar_forwards += s.quasar_forwards;
    tot.walk_forwards += s.walk_forwards;
    tot.holder_deliveries += s.holder_deliveries;
    tot.fanout_capped += s.fanout_capped;
    tot.duplicates += s.duplicates;
  }
  // Diagnostics: live subscribers that got none of their topic's events; routing table sizes.
  size_t starved = 0, table_sum = 0;
  for (const auto& t : topics)
    for (size_t sub : t.subs) {
      if (dead[sub]) continue;
      bool any = false;
      for (auto it = seen.lower_bound({sub, 0}); it != seen.end() && it->first.first == sub && !any; ++it) any = true;
      starved += !any;
    }
  for (size_t i = 0; i < o.nodes; ++i)
    table_sum += oracle ? oracle->table_size(i) : sim.node(i).dht().peer_count();
  Class all;
  nlohmann::json per = nlohmann::json::array();
  for (size_t c = 0; c < classes.size(); ++c) {
    const Class& r = res[c];
    nlohmann::json j = {{"subscribers", classes[c]},
                        {"topics", o.topics_per_class},
                        {"events", r.events},
                        {"expected", r.expected},
                        {"delivered", r.delivered},
                        {"delivery", r.expected ? double(r.delivered) / double(r.expected) : 1.0},
                        {"duplicates", r.duplicates},
                        {"latency_p50_ms", percentile(r.lat, 0.5)},
                        {"latency_p99_ms", percentile(r.lat, 0.99)},
                        {"msgs_per_delivery", r.delivered ? double(r.datagrams) / double(r.delivered) : 0.0},
                        {"datagrams", r.datagrams}};
    std::printf("subscribers=%zu %s\n", classes[c], j.dump().c_str());
    if (o.cdf) j["latency_cdf_ms"] = cdf_points(r.lat);
    per.push_back(j);
    all.events += r.events;
    all.expected += r.expected;
    all.delivered += r.delivered;
    all.duplicates += r.duplicates;
    all.datagrams += r.datagrams;
    all.lat.insert(all.lat.end(), r.lat.begin(), r.lat.end());
  }
  nlohmann::json j = {{"workload", "sim-pubsub"},
                      {"nodes", o.nodes},
                      {"seed", o.seed},
                      {"kill", o.kill},
                      {"mode", o.mode},
                      {"route", o.route},
                      {"topology", dht_ok ? "dht" : "oracle"},
                      {"events", all.events},
                      {"expected", all.expected},
                      {"delivered", all.delivered},
                      {"delivery", all.expected ? double(all.delivered) / double(all.expected) : 1.0},
                      {"duplicates", all.duplicates},
                      {"latency_p50_ms", percentile(all.lat, 0.5)},
                      {"latency_p99_ms", percentile(all.lat, 0.99)},
                      {"msgs_per_delivery", all.delivered ? double(all.datagrams) / double(all.delivered) : 0.0},
                      {"per_subscribers", per},
                      {"route_hop_failures", tot.route_hop_failures},
                      {"starved_subscribers", starved},
                      {"routing_table_mean", double(table_sum) / double(o.nodes)},
                      {"quasar_forwards", tot.quasar_forwards},
                      {"walk_forwards", tot.walk_forwards},
                      {"holder_deliveries", tot.holder_deliveries},
                      {"suppressed_duplicates", tot.duplicates},
                      {"setup_wall_s", setup_s},
                      {"wall_s", seconds_since(t0)},
                      {"peak_rss_mb", peak_rss_mb()},
                      {"trace_hash", std::to_string(sim.trace_hash())}};
  if (o.cdf) j["latency_cdf_ms"] = cdf_points(all.lat);
  print_result(j);
}

}  // namespace

static void add_sim_pubsub(CLI::App& app) {
  auto opts = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("sim-pubsub", "pubsub delivery, latency and cost in the simulator");
  cmd->add_option("--nodes", opts->nodes, "simulated nodes")->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--events", opts->events, "events in all (a third per subscriber count)")->check(CLI::Range(3, 1 << 24));
  cmd->add_option("--seed", opts->seed, "simulation seed");
  cmd->add_option("--kill", opts->kill, "fraction of nodes killed after subscribing")->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--route", opts->route, "direct (the topic's holders found by a lookup) | greedy (hop by hop)")
      ->check(CLI::IsMember({"direct", "greedy"}));
  cmd->add_option("--mode", opts->mode, "quasar | rendezvous | both")
      ->check(CLI::IsMember({"quasar", "rendezvous", "both"}));
  cmd->add_option("--topology", opts->topology, "dht (every node bootstraps; default) | oracle (converged Kademlia tables from a global view, quicker)")
      ->check(CLI::IsMember({"oracle", "dht"}));
  cmd->add_option("--topics", opts->topics_per_class, "topics per subscriber count")->check(CLI::Range(1, 1000));
  cmd->add_option("--interval-ms", opts->interval_ms, "virtual time between publishes");
  cmd->add_flag("--cdf", opts->cdf, "add latency distributions (for scripts/plot)");
  cmd->callback([opts] { run(*opts); });
}

STORJNET_WORKLOAD(add_sim_pubsub);

}  // namespace storjnet::bench
