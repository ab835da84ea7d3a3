// Prometheus text exposition (format 0.0.4) of one node: network RPCs by method, API calls by method,
// lookup latency and rounds as histograms, drops by reason, store size, queue depths, open streams, the
// streams fast path's closes by reason, API requests refused before dispatch.
#pragma once
#include <string>

#include "api/http_server.h"
#include "api/json_rpc.h"
#include "storjnet/node.h"
#include "storjnet/udp_stats.h"

namespace storjnet::api {

// Call on the node's thread. `udp`: the node's UDP socket (storjnet_udp_*), when its driver tells.
std::string render_metrics(Node& node, const ApiCounters& api, const ApiRefusals* refusals = nullptr,
                           const UdpStats* udp = nullptr);

}  // namespace storjnet::api
