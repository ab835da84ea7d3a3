// storjnet-bench WORKLOAD [options]: see bench/README.md.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <string>
#include <string_view>

#include "workloads.h"

namespace {

// The simulator's workloads (sim-*) hold gigabytes of small objects touched at random, so TLB misses cost
// them a sixth of their time. With transparent huge pages in `madvise` mode (Debian's default) glibc's malloc
// asks for huge pages only when its tunable says so: the bench re-executes itself once with
// glibc.malloc.hugetlb=1 added, unless GLIBC_TUNABLES already names that tunable (=0 turns it off).
void prefer_huge_pages(char** argv) {
  if (!argv[0] || !argv[1] || std::string_view(argv[1]).substr(0, 4) != "sim-") return;
  const char* set = std::getenv("GLIBC_TUNABLES");
  std::string tunables = set ? set : "";
  if (tunables.find("glibc.malloc.hugetlb") != std::string::npos) return;
  tunables += tunables.empty() ? "glibc.malloc.hugetlb=1" : ":glibc.malloc.hugetlb=1";
  if (setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only when it failed: the run goes on without huge pages
}

}  // namespace

int main(int argc, char** argv) {
  prefer_huge_pages(argv);
  CLI::App app{"storjnet benchmarks; each workload ends with one RESULT_JSON line"};
  app.require_subcommand(1);
  for (auto add : storjnet::bench::workload_registry()) add(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
