// sim-nat: a simulated network with a fraction of its nodes behind home routers of mixed kinds
// (src/sim/nat_scenario.h): DHT puts and gets, pubsub delivery, and how many routing-table entries a stranger
// cannot reach. One RESULT_JSON line.
#include "bench_util.h"
#include "sim/nat_scenario.h"
#include "workloads.h"

namespace storjnet::bench {

// Per pair class: pairs, ok, punched, relayed, and direct (delivered, neither punched nor relayed: a full cone
// lets anyone in through a live mapping).
static nlohmann::json nat_pairs(const sim::NatScenarioReport& r) {
  using R = sim::NatScenarioReport;
  const std::pair<R::PairClass, const char*> classes[] = {
      {R::kNeitherSymmetric, "neither_symmetric"},
      {R::kOneSymmetricPunchable, "one_symmetric_punchable"},
      {R::kOneSymmetricPortRestricted, "one_symmetric_port_restricted"},
      {R::kBothSymmetric, "both_symmetric"}};
  nlohmann::json out;
  for (auto [c, name] : classes)
    out[name] = {{"pairs", r.pairs[c]}, {"ok", r.pairs_ok[c]}, {"punched", r.pairs_punched[c]},
                 {"relayed", r.pairs_relayed[c]}, {"direct", r.pairs_direct[c]},
                 {"upgraded_later", r.pairs_upgraded[c]}, {"still_relayed_later", r.pairs_still_relayed[c]}};
  return out;
}

static void add_sim_nat(CLI::App& app) {
  auto o = std::make_shared<sim::NatScenarioConfig>();
  auto* cmd = app.add_subcommand("sim-nat", "simulated network with a fraction of nodes behind NAT routers");
  cmd->add_option("--nodes", o->nodes)->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--natted", o->natted, "fraction of nodes behind a router")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--symmetric", o->symmetric, "share of symmetric routers (others: see sim/nat_scenario.h)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--puts", o->puts)->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--events", o->events)->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--subscribers", o->subscribers)->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--seed", o->seed);
  cmd->add_option("--nat-pairs", o->nat_pairs, "messages between random pairs of NATed nodes")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--punch", o->node.dht.punch, "hole punching and keepalives (true/false; default true)");
  cmd->add_option("--dial-back", o->node.dht.dial_back, "dial-back reachability checks (true/false; default true)");
  cmd->callback([o] {
    auto t0 = std::chrono::steady_clock::now();
    sim::NatScenarioReport r = sim::run_nat_scenario(*o);
    auto ratio = [](uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
    print_result({{"workload", "sim-nat"},
                  {"nodes", o->nodes},
                  {"seed", o->seed},
                  {"natted", r.natted},
                  {"routers_full_cone", r.by_kind[0]},
                  {"routers_restricted_cone", r.by_kind[1]},
                  {"routers_port_restricted", r.by_kind[2]},
                  {"routers_symmetric", r.by_kind[3]},
                  {"joined", r.joined},
                  {"put_ok_ratio", ratio(r.puts_ok, r.puts)},
                  {"get_ok_ratio", ratio(r.gets_ok, r.gets)},
                  {"pubsub_delivery", ratio(r.events_delivered, r.events_expected)},
                  {"unreachable_contacts_ratio", ratio(r.contacts_unreachable, r.contacts)},
                  {"contacts_mean", ratio(r.contacts, o->nodes)},
                  {"confirmed_contacts_ratio", ratio(r.confirmed, r.contacts)},
                  {"unreachable_handed_out_ratio", ratio(r.handed_out_unreachable, r.handed_out)},
                  {"unreachable_by_router", {{"full_cone", r.unreachable_by_kind[0]},
                                             {"restricted_cone", r.unreachable_by_kind[1]},
                                             {"port_restricted", r.unreachable_by_kind[2]},
                                             {"symmetric", r.unreachable_by_kind[3]},
                                             {"none", r.unreachable_by_kind[4]}}},
                  {"rounds_p50", percentile(r.lookup_rounds, 0.5)},
                  {"get_sim_ms_p50", percentile(r.get_ms, 0.5)},
                  {"get_sim_ms_p99", percentile(r.get_ms, 0.99)},
                  {"put_sim_ms_p50", percentile(r.put_ms, 0.5)},
                  {"put_sim_ms_p99", percentile(r.put_ms, 0.99)},
                  {"nat_pairs", nat_pairs(r)},
                  {"punch_attempts", r.punch_attempts},
                  {"punch_ok", r.punch_ok},
                  {"punch_failed", r.punch_failed},
                  {"punch_no_rendezvous", r.punch_no_rendezvous},
                  {"punch_refused", r.punch_refused},
                  {"upgrades_ok", r.upgrades_ok},
                  {"upgrades_failed", r.upgrades_failed}, {"upgrades_futile", r.upgrades_futile},
                  {"birthdays", r.birthdays},
                  {"keepalives_sent", r.keepalives_sent},
                  {"relay_fallbacks", r.relay_fallbacks},
                  {"relay_fallbacks_found", r.relay_fallbacks_found},
                  {"relay_forwarded", r.relay_forwarded},
                  {"relay_refused", r.relay_refused},
                  {"relay_reservations_held", r.relay_reservations_held},
                  {"nat_filtered", r.nat_filtered},
                  {"datagrams", r.datagrams},
                  {"wall_s", seconds_since(t0)},
                  {"peak_rss_mb", peak_rss_mb()},
                  {"trace_hash", std::to_string(r.trace_hash)}});
  });
}
STORJNET_WORKLOAD(add_sim_nat);

}  // namespace storjnet::bench
