// FUZZ_CHECK: an invariant a fuzz target asserts; on failure prints it and aborts, which libFuzzer reports
// as a finding (scripts/run-fuzzers greps for "invariant failed").
#pragma once
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                                      \
    }                                                                               \
  } while (0)
