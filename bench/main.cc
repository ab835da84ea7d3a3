// storjnet-bench WORKLOAD [options]: see bench/README.md.
#include <CLI/CLI.hpp>

#include "workloads.h"

int main(int argc, char** argv) {
  CLI::App app{"storjnet benchmarks; each workload ends with one RESULT_JSON line"};
  app.require_subcommand(1);
  for (auto add : storjnet::bench::workload_registry()) add(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
