#include "sim/network_builder.h"

#include "sim/rng.h"

namespace storjnet::sim {

size_t join_network(Simulator& sim, uint64_t seed, size_t wave, const std::function<void(size_t)>& after_wave) {
  Rng rng(seed * 7919 + 1);
  size_t n = sim.size(), joined = 1;
  for (size_t start = 1; start < n; start += wave) {
    size_t end = std::min(n, start + wave);
    size_t waiting = end - start;
    for (size_t i = start; i < end; ++i) {
      size_t via = rng.below(start);
      sim.node(i).dht().bootstrap({sim.endpoint(via)}, [&](bool ok) {
        --waiting;
        joined += ok;
      });
    }
    sim.run_until([&] { return waiting == 0; }, std::chrono::seconds(60));
    if (after_wave) after_wave(end);
  }
  return joined;
}

}  // namespace storjnet::sim
