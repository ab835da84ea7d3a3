// Prometheus text exposition (format 0.0.4) of one node: network RPCs by method, API calls by method,
// lookup latency and rounds as histograms, drops by reason, store size, queue depths, open streams.
#pragma once
#include <string>

#include "api/json_rpc.h"
#include "storjnet/node.h"

namespace storjnet::api {

// Call on the node's thread.
std::string render_metrics(Node& node, const ApiCounters& api);

}  // namespace storjnet::api
