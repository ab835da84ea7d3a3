// sim-adversary: a simulated network with a fraction of attacker nodes that share what they learn, under one
// attack (eclipse, overwrite, drop, forge-subscribe, all; none = attackers placed but behaving), while honest
// nodes put, get, subscribe and publish (src/sim/adversary.h). One RESULT_JSON line.
#include "bench_util.h"
#include "sim/adversary.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {
struct SimAdversaryOpts {
  size_t nodes = 1000;
  double malicious = 0.2;
  std::string attack = "all";
  uint64_t seed = 1;
  int puzzle_bits = 0;
  int placement_bits = 16;
  size_t puts = 200;
  size_t putters = 0;
  bool neighbourhood_reuse = true;
  size_t topics = 10;
  size_t subscribers = 20;
  size_t events = 5;
  double attack_seconds = 20;
  size_t pubsub_holders = PubsubConfig{}.holders;
  size_t pubsub_serving = PubsubConfig{}.serving;
};

nlohmann::json to_json(const sim::AdversaryResult& r, const std::string& attack, double malicious, int puzzle_bits,
                       double wall_s) {
  return {{"workload", "sim-adversary"},
          {"attack", attack},
          {"nodes", r.nodes},
          {"malicious", malicious},
          {"attackers", r.attackers},
          {"seed", r.seed},
          {"joined", r.joined},
          {"puzzle_bits", puzzle_bits},
          {"ids_per_target", r.ids_per_target},
          {"placed_prefix_bits", r.placed_prefix_bits},
          {"honest_prefix_bits", r.honest_prefix_bits},
          {"puts", r.puts},
          {"puts_ok", r.puts_ok},
          {"puts_reused", r.puts_reused},
          {"put_ok_ratio", r.put_ok_ratio},
          {"gets", r.owned_gets.gets},
          {"gets_ok", r.owned_gets.ok},
          {"gets_forged", r.owned_gets.forged},
          {"gets_missing", r.owned_gets.missing},
          {"get_ok_ratio", r.owned_gets.ok_ratio},
          {"ownerless_gets_ok", r.gets.ok},
          {"ownerless_gets_forged", r.gets.forged},
          {"ownerless_gets_missing", r.gets.missing},
          {"ownerless_get_ok_ratio", r.gets.ok_ratio},
          {"events_expected", r.events_expected},
          {"events_delivered", r.events_delivered},
          {"pubsub_delivery", r.pubsub_delivery},
          {"victim_contacts", r.victim_contacts},
          {"victim_honest_contacts", r.victim_honest_contacts},
          {"honest_contacts_ratio", r.honest_contacts_ratio},
          {"rounds_p50", r.rounds_p50},
          {"rounds_p99", r.rounds_p99},
          {"attacker_stores", r.attacker_stores},
          {"forged_registrations_sent", r.forged_registrations_sent},
          {"filters_sent", r.filters_sent},
          {"lies_told", r.lies_told},
          {"honest_bad_signatures", r.honest_bad_signatures},
          {"honest_registrations_forged", r.honest_registrations_forged},
          {"honest_registrations_unverified", r.honest_registrations_unverified},
          {"honest_held_rejected", r.honest_held_rejected},
          {"honest_crowded_registrations", r.honest_crowded_registrations},
          {"honest_crowded_events", r.honest_crowded_events},
          {"holder_lookup_attacker_ratio", r.holder_lookup_attacker_ratio},
          {"true_closest_attacker_ratio", r.true_closest_attacker_ratio},
          {"holder_lookup_recall", r.holder_lookup_recall},
          {"honest_saturated_levels", r.honest_saturated_levels},
          {"trace_hash", std::to_string(r.trace_hash)},
          {"wall_s", wall_s},
          {"peak_rss_mb", peak_rss_mb()}};
}
}  // namespace

static void add_sim_adversary(CLI::App& app) {
  auto o = std::make_shared<SimAdversaryOpts>();
  auto* cmd = app.add_subcommand("sim-adversary", "simulated network with a fraction of colluding attackers");
  cmd->add_option("--nodes", o->nodes)->check(CLI::Range(10, 1 << 20));
  cmd->add_option("--malicious", o->malicious, "fraction of the nodes that attack")->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--attack", o->attack, "eclipse | overwrite | drop | forge-subscribe | all | none")
      ->check(CLI::IsMember({"none", "eclipse", "overwrite", "drop", "forge-subscribe", "all"}));
  cmd->add_option("--seed", o->seed);
  cmd->add_option("--puzzle-bits", o->puzzle_bits, "the network's id puzzle c")->check(CLI::Range(0, 16));
  cmd->add_option("--placement-bits", o->placement_bits, "attacker's id search: 2^(c + this) key generations")
      ->check(CLI::Range(0, 20));
  cmd->add_option("--puts", o->puts)->check(CLI::Range(1, 100000));
  cmd->add_option("--putters", o->putters, "honest nodes the puts come from, round robin (0: a random one per put)");
  cmd->add_option("--neighbourhood-reuse", o->neighbourhood_reuse,
                  "puts store on the neighbourhoods recent puts found whole (DhtConfig::neighbourhood_reuse)")
      ->capture_default_str();
  cmd->add_option("--topics", o->topics)->check(CLI::Range(0, 10000));
  cmd->add_option("--subscribers", o->subscribers, "honest subscribers per topic")->check(CLI::Range(1, 100000));
  cmd->add_option("--events", o->events, "events per topic")->check(CLI::Range(0, 100000));
  cmd->add_option("--attack-seconds", o->attack_seconds, "virtual seconds of attack rounds between puts and gets")
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--pubsub-holders", o->pubsub_holders, "holders of a topic's subscribers (PubsubConfig::holders)")
      ->check(CLI::Range(1, 32));
  cmd->add_option("--pubsub-serving", o->pubsub_serving, "holders serving each subscriber per event (PubsubConfig::serving)")
      ->check(CLI::Range(1, 32));
  cmd->callback([o] {
    sim::AdversaryConfig c;
    c.seed = o->seed;
    c.nodes = o->nodes;
    c.malicious = o->malicious;
    c.attack = *sim::parse_attack(o->attack);
    c.puzzle_bits = o->puzzle_bits;
    c.placement_bits = o->placement_bits;
    c.puts = o->puts;
    c.putters = o->putters;
    c.node.dht.neighbourhood_reuse = o->neighbourhood_reuse;
    c.topics = o->topics;
    c.subscribers_per_topic = o->subscribers;
    c.events_per_topic = o->events;
    c.node.pubsub.holders = o->pubsub_holders;
    c.node.pubsub.serving = o->pubsub_serving;
    c.attack_time = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o->attack_seconds));
    auto t0 = std::chrono::steady_clock::now();
    sim::AdversaryResult r = sim::run_adversary(c);
    print_result(to_json(r, o->attack, o->malicious, o->puzzle_bits, seconds_since(t0)));
  });
}

STORJNET_WORKLOAD(add_sim_adversary);

}  // namespace storjnet::bench
