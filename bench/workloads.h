// Workloads of storjnet-bench; each registers a CLI11 subcommand and prints one RESULT_JSON line.
#pragma once
#include <CLI/CLI.hpp>

namespace storjnet::bench {

void add_sim_ping(CLI::App& app);
void add_ping(CLI::App& app);

}  // namespace storjnet::bench
