// NatPair: the relay and upgrade tests' network (tests/sim_relay_test.cc, tests/sim_upgrade_test.cc) on the
// simulator: kPublic open nodes, then a and b behind routers of kinds ka and kb (30 s mappings). Everyone joins
// through node 0; then 150 s pass (NatView's verdicts, relay reservations and published lists).
#pragma once
#include <functional>
#include <optional>

#include "node/node_internals.h"
#include "storjnet/messages.h"
#include "storjnet/node.h"
#include "storjnet/simulator.h"
#include "storjnet/streams.h"

namespace storjnet {

struct NatPair {
  static constexpr size_t kPublic = 12;
  Simulator sim;
  size_t a = 0, b = 0;

  // `config` for every node; `a_config`, when given, for a instead.
  NatPair(NatModel::Type ka, NatModel::Type kb, const SimConfig& config,
          const std::optional<NodeConfig>& a_config = std::nullopt)
      : sim(config) {
    for (size_t i = 0; i < kPublic; ++i) sim.add_node();
    a = a_config ? sim.add_node(*a_config) : sim.add_node();
    b = sim.add_node();
    sim.put_behind(a, sim.add_router({ka, std::chrono::seconds(30), false}));
    sim.put_behind(b, sim.add_router({kb, std::chrono::seconds(30), false}));
    for (size_t i = 1; i < sim.size(); ++i) {
      size_t waiting = 1;
      sim.node(i).dht().bootstrap({sim.endpoint(0)}, [&](bool) { --waiting; });
      sim.run_until([&] { return waiting == 0; }, std::chrono::seconds(30));
    }
    sim.run_for(std::chrono::seconds(150));
  }
  // message_send from -> to; whether it was delivered within 60 s.
  bool send(size_t from, size_t to) {
    std::optional<bool> ok;
    sim.node(from).messages().send(sim.node(to).id(), "{\"hi\":1}", [&](bool r) { ok = r; });
    sim.run_until([&] { return ok.has_value(); }, std::chrono::seconds(60));
    return ok.value_or(false);
  }
  // A stream from -> to, opened within 10 s: (its id at `from`, its id at `to`), or nullopt.
  std::optional<std::pair<StreamId, StreamId>> open_stream(size_t from, size_t to) {
    std::optional<StreamId> in;
    sim.node(to).streams().on_inbound([&](const StreamId& id, const NodeId&) { in = id; });
    std::optional<std::optional<StreamId>> opened;
    sim.node(from).streams().open(sim.node(to).id(), [&](std::optional<StreamId> id) { opened = id; });
    sim.run_until([&] { return opened.has_value() && in.has_value(); }, std::chrono::seconds(10));
    sim.node(to).streams().on_inbound(nullptr);
    if (!opened || !*opened || !in) return std::nullopt;
    return std::make_pair(**opened, *in);
  }
  Engine& engine(size_t i) { return NodeInternals::engine(sim.node(i)); }
  // Whether `from` reaches `to` through a relay (a relayed path set in from's engine).
  bool relayed(size_t from, size_t to) { return engine(from).via(engine(to).identity().public_key()).has_value(); }
  DhtStats stats(size_t i) { return sim.node(i).dht().stats(); }
};

}  // namespace storjnet
