// storjnet-bench WORKLOAD [options]: see bench/README.md.
#include <CLI/CLI.hpp>

#include "workloads.h"

int main(int argc, char** argv) {
  CLI::App app{"storjnet benchmarks; each workload ends with one RESULT_JSON line"};
  app.require_subcommand(1);
  storjnet::bench::add_sim_ping(app);
  storjnet::bench::add_ping(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
