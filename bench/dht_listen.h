// The listen phase of `storjnet-bench dht` (section 2.6 of ../shared/bench/opendht/README.md), mapped onto
// pubsub: listen(key) = subscribe(topic), put on the topic key = publish(topic, event).
#pragma once
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

namespace storjnet {
class RealDriver;
class Node;
}  // namespace storjnet

namespace storjnet::bench {

struct ListenPhaseArgs {
  RealDriver* driver = nullptr;
  std::vector<Node*> nodes;  // node i of the harness
  std::mt19937_64* rng = nullptr;  // the harness's single RNG, drawn in the documented order
  uint64_t seed = 1;
  int ops = 200;     // measured events
  int topics = 10;
  double sub_settle_s = 2;
  double event_timeout_s = 10;
  bool cdf = false;  // add latency_cdf_ms (bench_util.h cdf_points)
};

// Runs the phase and returns the `listen` object of the RESULT_JSON schema (null when not implemented).
nlohmann::json run_listen_phase(const ListenPhaseArgs& args);

}  // namespace storjnet::bench
