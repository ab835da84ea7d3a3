// Workloads of storjnet-bench. Each workload file registers a CLI11 subcommand with STORJNET_WORKLOAD and
// prints one RESULT_JSON line; main.cc needs no edit to add one.
#pragma once
#include <CLI/CLI.hpp>
#include <vector>

namespace storjnet::bench {

using WorkloadAdder = void (*)(CLI::App&);
inline std::vector<WorkloadAdder>& workload_registry() {
  static std::vector<WorkloadAdder> r;
  return r;
}
struct RegisterWorkload {
  explicit RegisterWorkload(WorkloadAdder f) { workload_registry().push_back(f); }
};

}  // namespace storjnet::bench

#define STORJNET_WORKLOAD(fn) static ::storjnet::bench::RegisterWorkload storjnet_workload_##fn(fn)
