// pubsub-listen: the listen phase of the OpenDHT comparison (README of ../shared/bench/opendht, section 2.6)
// on its own: N real nodes on 127.0.0.1 join through node 0's DHT (or, when the DHT gives no routing table,
// an oracle table), then run_listen_phase (bench/dht_listen.cc). `storjnet-bench dht` runs the same phase
// after its put/get phases; this workload isolates it.
#include <thread>

#include "bench_util.h"
#include "dht_listen.h"
#include "testing/oracle_topology.h"
#include "storjnet/real_driver.h"
#include "workloads.h"

namespace storjnet::bench {

static void add_pubsub_listen(CLI::App& app) {
  struct Opts {
    size_t nodes = 50;
    int ops = 200;
    int topics = 10;
    uint64_t seed = 1;
    double settle_s = 3;
  };
  auto opts = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("pubsub-listen", "the dht bench's listen phase alone (real nodes, loopback)");
  cmd->add_option("--nodes", opts->nodes, "real nodes on 127.0.0.1")->check(CLI::Range(2, 5000));
  cmd->add_option("--ops", opts->ops, "measured events")->check(CLI::Range(1, 100000));
  cmd->add_option("--topics", opts->topics, "topics")->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", opts->seed, "seed of the harness RNG");
  cmd->add_option("--settle", opts->settle_s, "seconds after bootstrap before the phase");
  cmd->callback([opts] {
    auto t0 = std::chrono::steady_clock::now();
    RealDriver driver;
    std::vector<Node*> nodes;
    auto lo = *Endpoint::from_ip("127.0.0.1", 0);
    for (size_t i = 0; i < opts->nodes; ++i) nodes.push_back(&driver.add_node(lo, Identity::generate()));
    std::promise<size_t> joined;
    driver.post([&] {
      auto left = std::make_shared<size_t>(nodes.size() - 1);
      auto ok = std::make_shared<size_t>(0);
      for (size_t i = 1; i < nodes.size(); ++i)
        nodes[i]->dht().bootstrap({driver.local_endpoint(*nodes[0])}, [&, left, ok](bool r) {
          *ok += r;
          if (--*left == 0) joined.set_value(*ok);
        });
    });
    bool dht = joined.get_future().get() == nodes.size() - 1;
    std::unique_ptr<pubsub::OracleTopology> oracle;
    if (!dht) {
      std::vector<Contact> contacts;
      for (auto* n : nodes) contacts.push_back(Contact::from_key(n->public_key(), driver.local_endpoint(*n)));
      oracle = std::make_unique<pubsub::OracleTopology>(contacts, 20, opts->seed);
      driver.call([&] {
        for (size_t i = 0; i < nodes.size(); ++i) nodes[i]->pubsub().set_topology(oracle->for_node(i));
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(opts->settle_s));
    std::mt19937_64 rng(opts->seed);
    ListenPhaseArgs a;
    a.driver = &driver;
    a.nodes = nodes;
    a.rng = &rng;
    a.seed = opts->seed;
    a.ops = opts->ops;
    a.topics = opts->topics;
    auto listen = run_listen_phase(a);
    print_result({{"workload", "pubsub-listen"},
                  {"impl", "storjnet"},
                  {"nodes", opts->nodes},
                  {"ops", opts->ops},
                  {"topics", opts->topics},
                  {"seed", opts->seed},
                  {"topology", dht ? "dht" : "oracle"},
                  {"listen", listen},
                  {"wall_s", seconds_since(t0)},
                  {"peak_rss_mb", peak_rss_mb()}});
  });
}

STORJNET_WORKLOAD(add_pubsub_listen);

}  // namespace storjnet::bench
