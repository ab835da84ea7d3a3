// Builds a joined DHT network inside a Simulator: nodes 1..n-1 bootstrap in waves, each through a random
// node that joined before it. Used by tests and benches so they all start from the same kind of network.
#pragma once
#include <cstdint>
#include <functional>

#include "storjnet/simulator.h"

namespace storjnet::sim {

// Returns how many nodes joined (node 0 counts). Deterministic for a given simulator seed and `seed`.
// `after_wave`, when set, is called after each wave with the number of nodes started so far (for progress).
size_t join_network(Simulator& sim, uint64_t seed, size_t wave = 50,
                    const std::function<void(size_t started)>& after_wave = {});

}  // namespace storjnet::sim
