#include "sim/nat_scenario.h"

#include <array>
#include <map>
#include <memory>
#include <set>

#include "node/node_internals.h"
#include "sim/rng.h"

namespace storjnet::sim {

namespace {
// How long the scenario waits for a put's or a get's answer, one at a time; a put answers within its put_timeout.
constexpr Duration kOpWait = std::chrono::seconds(60);

NatModel::Type pick_kind(const NatScenarioConfig& c, Rng& rng) {
  double shares[4] = {c.full_cone, c.restricted_cone, c.port_restricted, c.symmetric};
  double total = shares[0] + shares[1] + shares[2] + shares[3];
  double x = rng.uniform() * total;
  for (int k = 0; k < 3; ++k) {
    if (x < shares[k]) return static_cast<NatModel::Type>(k);
    x -= shares[k];
  }
  return NatModel::Type::kSymmetric;
}

// Nodes 1..n-1 join in waves of 50, each through a random open node that joined before it.
size_t join_through_open_nodes(Simulator& sim, Rng& rng, const std::vector<size_t>& open_order) {
  size_t n = sim.size(), joined = 1;
  std::vector<size_t> open_joined = {0};
  const size_t wave = 50;
  for (size_t start = 1; start < n; start += wave) {
    size_t end = std::min(n, start + wave);
    size_t waiting = end - start;
    for (size_t i = start; i < end; ++i) {
      size_t via = open_joined[rng.below(open_joined.size())];
      sim.node(i).dht().bootstrap({sim.endpoint(via)}, [&waiting, &joined](bool ok) {
        --waiting;
        joined += ok;
      });
    }
    sim.run_until([&] { return waiting == 0; }, std::chrono::seconds(60));
    for (size_t i : open_order)
      if (i >= start && i < end) open_joined.push_back(i);
  }
  return joined;
}

}  // namespace

NatScenarioReport::PairClass NatScenarioReport::pair_class(NatModel::Type a, NatModel::Type b) {
  using T = NatModel::Type;
  bool sa = a == T::kSymmetric, sb = b == T::kSymmetric;
  if (sa && sb) return kBothSymmetric;
  if (!sa && !sb) return kNeitherSymmetric;
  // RFC 4787 / RFC 5128: the cone side lets the symmetric side's new port in once it has sent to that address
  // (restricted cone) or at all (full cone); a port-restricted cone only lets in the port it sent to.
  return (sa ? b : a) == T::kPortRestricted ? kOneSymmetricPortRestricted : kOneSymmetricPunchable;
}

NatScenarioReport run_nat_scenario(const NatScenarioConfig& cfg) {
  SimConfig sc;
  sc.seed = cfg.seed;
  sc.node = cfg.node;
  Simulator sim(sc);
  Rng rng(cfg.seed * 6364136223846793005ull + 11);
  NatScenarioReport rep;
  std::vector<size_t> open;
  std::vector<NatModel::Type> kinds(cfg.nodes, NatModel::Type::kFullCone);
  for (size_t i = 0; i < cfg.nodes; ++i) {
    sim.add_node();
    if (i > 0 && rng.uniform() < cfg.natted) {
      NatModel m;
      m.type = kinds[i] = pick_kind(cfg, rng);
      m.mapping_timeout = cfg.mapping_timeout;
      sim.put_behind(i, sim.add_router(m));
      ++rep.natted;
      ++rep.by_kind[static_cast<size_t>(m.type)];
    } else {
      open.push_back(i);
    }
  }
  rep.joined = join_through_open_nodes(sim, rng, open);
  sim.run_for(cfg.settle);

  // Who in the routing tables could a stranger reach now?
  const Endpoint stranger = Endpoint::v4(0x0afffffe, 1);
  std::map<Endpoint, size_t> kind_at;  // router address (port 0) -> its kind
  for (size_t i = 0; i < cfg.nodes; ++i)
    if (auto r = sim.router_of(i)) kind_at[sim.router_address(*r)] = static_cast<size_t>(kinds[i]);
  for (size_t i = 0; i < cfg.nodes; ++i)
    for (const auto& c : sim.node(i).dht().peers()) {
      ++rep.contacts;
      if (sim.reachable(stranger, c.endpoint)) continue;
      ++rep.contacts_unreachable;
      Endpoint a = c.endpoint;
      a.port = 0;
      auto k = kind_at.find(a);
      ++rep.unreachable_by_kind[k == kind_at.end() ? 4 : k->second];
    }

  // What nodes hand out to others (4 random targets each; a separate random stream, so the run is unchanged).
  Rng targets(cfg.seed * 0x9e3779b97f4a7c15ull + 5);
  for (size_t i = 0; i < cfg.nodes; ++i) {
    for (const auto& c : sim.node(i).dht().peers()) rep.confirmed += sim.node(i).dht().confirmed(c.id);
    for (int t = 0; t < 4; ++t) {
      std::array<uint8_t, NodeId::kSize> b;
      for (auto& x : b) x = static_cast<uint8_t>(targets.next());
      for (const auto& c : sim.node(i).dht().handed_out(NodeId(b))) {
        ++rep.handed_out;
        rep.handed_out_unreachable += !sim.reachable(stranger, c.endpoint);
      }
    }
  }

  // DHT: puts one at a time, then a get of each from another random node.
  std::vector<std::string> keys;
  std::vector<Bytes> values;
  std::vector<size_t> putters;
  for (size_t j = 0; j < cfg.puts; ++j) {
    keys.push_back("nat-" + std::to_string(cfg.seed) + "-" + std::to_string(j));
    std::string v = "\"" + std::to_string(rng.next()) + "\"";
    values.emplace_back(v.begin(), v.end());
    putters.push_back(rng.below(cfg.nodes));
    // An answer after the 60 s wait is ignored (and the wait counts as the put's time): `done` outlives the loop.
    auto done = std::make_shared<bool>(false);
    ++rep.puts;
    TimePoint start = sim.now();
    sim.node(putters[j]).dht().put(keys[j], values[j], [&rep, &sim, done, start](const PutResult& r) {
      if (*done) return;
      *done = true;
      rep.puts_ok += r.ok;
      rep.put_ms.push_back(std::chrono::duration<double, std::milli>(sim.now() - start).count());
    });
    sim.run_until([&] { return *done; }, kOpWait);
    if (!*done) {
      *done = true;
      rep.put_ms.push_back(std::chrono::duration<double, std::milli>(kOpWait).count());
    }
  }
  for (size_t j = 0; j < cfg.puts; ++j) {
    size_t g = rng.below(cfg.nodes - 1);
    if (g >= putters[j]) ++g;
    auto done = std::make_shared<bool>(false);
    TimePoint start = sim.now();
    ++rep.gets;
    sim.node(g).dht().get(keys[j], [&rep, &sim, &values, done, j, start](GetResult r) {
      if (*done) return;
      *done = true;
      rep.gets_ok += r.value && *r.value == values[j];
      if (r.local) return;
      rep.lookup_rounds.push_back(r.lookup.rounds);
      rep.get_ms.push_back(std::chrono::duration<double, std::milli>(sim.now() - start).count());
    });
    sim.run_until([&] { return *done; }, kOpWait);
    if (!*done) {
      *done = true;
      rep.get_ms.push_back(std::chrono::duration<double, std::milli>(kOpWait).count());
    }
  }

  // Pubsub: one topic, random subscribers, events from random nodes.
  const std::string topic = "nat-topic-" + std::to_string(cfg.seed);
  std::set<size_t> subs;
  while (subs.size() < std::min(cfg.subscribers, cfg.nodes)) subs.insert(rng.below(cfg.nodes));
  std::set<std::pair<size_t, std::string>> seen;
  for (size_t s : subs) {
    sim.node(s).pubsub().set_on_event([&seen, s](const std::string&, const std::string& ev) { seen.insert({s, ev}); });
    sim.node(s).pubsub().subscribe(topic);
  }
  sim.run_for(std::chrono::seconds(10));
  for (size_t e = 0; e < cfg.events; ++e) {
    sim.node(rng.below(cfg.nodes)).pubsub().publish(topic, "{\"seq\":" + std::to_string(e) + "}");
    sim.run_for(std::chrono::milliseconds(50));
  }
  sim.run_for(std::chrono::seconds(10));
  rep.events_expected = cfg.events * subs.size();
  rep.events_delivered = seen.size();

  // Direct messages between NATed nodes, all sent at once.
  std::vector<size_t> natted;
  for (size_t i = 0; i < cfg.nodes; ++i)
    if (sim.router_of(i)) natted.push_back(i);
  std::vector<std::array<size_t, 3>> relayed_pairs;  // (a, b, class) relayed when delivered
  if (natted.size() >= 2) {
    size_t waiting = cfg.nat_pairs;
    for (size_t j = 0; j < cfg.nat_pairs; ++j) {
      size_t a = natted[rng.below(natted.size())], b = natted[rng.below(natted.size() - 1)];
      if (b == a) b = natted.back();
      size_t cls = NatScenarioReport::pair_class(kinds[a], kinds[b]);
      ++rep.pairs[cls];
      NodeId to = sim.node(b).id();
      sim.node(a).messages().send(to, "{\"pair\":" + std::to_string(j) + "}", [&, a, b, cls, to](bool ok) {
        --waiting;
        if (!ok) return;
        ++rep.pairs_ok[cls];
        bool punched = sim.node(a).dht().punched(to);
        bool relayed = NodeInternals::engine(sim.node(a)).via(NodeInternals::engine(sim.node(b)).identity().public_key()).has_value();
        rep.pairs_punched[cls] += punched;
        rep.pairs_relayed[cls] += relayed;
        rep.pairs_direct[cls] += !punched && !relayed;
        if (relayed) relayed_pairs.push_back({a, b, cls});
      });
    }
    sim.run_until([&] { return waiting == 0; }, std::chrono::seconds(60));
    sim.run_for(std::chrono::seconds(5));  // punches still in their window (Punch::kWindow, 4 s) conclude
    if (!relayed_pairs.empty()) sim.run_for(NatScenarioReport::kUpgradeWait);
    for (auto [a, b, cls] : relayed_pairs) {
      bool relayed = NodeInternals::engine(sim.node(a)).via(NodeInternals::engine(sim.node(b)).identity().public_key()).has_value();
      rep.pairs_still_relayed[cls] += relayed;
      rep.pairs_upgraded[cls] += !relayed && sim.node(a).dht().punched(sim.node(b).id());
    }
  }
  for (size_t i = 0; i < cfg.nodes; ++i) {
    DhtStats d = sim.node(i).dht().stats();
    rep.punch_attempts += d.punch_attempts;
    rep.punch_ok += d.punch_ok;
    rep.punch_failed += d.punch_failed;
    rep.punch_no_rendezvous += d.punch_no_rendezvous;
    rep.punch_refused += d.punch_refused;
    rep.keepalives_sent += d.keepalives_sent;
    rep.relay_fallbacks += d.relay_fallbacks;
    rep.relay_fallbacks_found += d.relay_fallbacks_found;
    rep.relay_forwarded += d.relay_forwarded;
    rep.relay_refused += d.relay_refused;
    rep.relay_reservations_held += d.relay_reservations_held;
    rep.upgrades_ok += d.upgrades_ok;
    rep.upgrades_failed += d.upgrades_failed;
    rep.upgrades_futile += d.upgrades_futile;
    rep.birthdays += d.birthdays;
  }

  rep.nat_filtered = sim.stats().nat_filtered;
  rep.datagrams = sim.stats().delivered;
  rep.trace_hash = sim.trace_hash();
  return rep;
}

}  // namespace storjnet::sim
