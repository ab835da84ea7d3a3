// sim_send: message_send between two simulated nodes, run until it is answered (at most 30 s of virtual time);
// whether it was acknowledged. Shared by the NAT tests (sim_punch_test, sim_lan_test).
#pragma once
#include <optional>

#include "storjnet/messages.h"
#include "storjnet/simulator.h"

inline bool sim_send(storjnet::Simulator& sim, size_t from, size_t to) {
  using namespace std::chrono_literals;
  std::optional<bool> ok;
  sim.node(from).messages().send(sim.node(to).id(), "{\"hi\":1}", [&](bool r) { ok = r; });
  sim.run_until([&] { return ok.has_value(); }, 30s);
  return ok.value_or(false);
}
