// The status page's JSON (GET /api/status, GET /api/network; docs/api.md, "Status page"): a node at a
// glance, built on the node's thread from the node itself plus what the daemon watched over time (NodeWatch,
// kept up to date by StatusBoard).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/status_history.h"
#include "storjnet/node.h"

namespace storjnet::api {

// What the daemon knows of one of its nodes beyond the node's own state.
struct NodeWatch {
  size_t index = 0;          // in its process (storjnetd --nodes N)
  std::string api_url;       // "http://127.0.0.1:5000"
  Endpoint udp;              // the bound UDP address
  int64_t started_unix_ms = 0;
  StatusHistory history;

  // Our address as a peer saw it (kademlia_stun), asked now and then.
  std::optional<Endpoint> observed;
  int64_t observed_unix_ms = 0;   // when it was seen
  int64_t stun_asked_unix_ms = 0;  // when we last asked
  bool stun_in_flight = false;

  // Pubsub events delivered here, per subscribed topic: a count and the newest few (text cut to kEventText).
  static constexpr size_t kRecentEvents = 8, kEventText = 512, kTopics = 256;
  struct TopicLog {
    uint64_t events = 0;
    std::deque<std::pair<int64_t, std::string>> recent;  // (unix ms, event JSON), newest last
  };
  std::map<std::string, TopicLog> topics;

  // Per open stream: the byte counters at the last sample and the rates over that second.
  struct StreamRate {
    uint64_t received = 0, sent = 0;
    double in_per_s = 0, out_per_s = 0;
  };
  std::map<StreamId, StreamRate> streams;
};

struct StatusContext {
  std::string version;   // storjnetd's release version
  int protocol = 0;      // the wire protocol's version
  size_t nodes = 1;      // nodes in this process
  int64_t now_unix_ms = 0;
};

// GET /api/status of one node. Call on the node's thread.
nlohmann::json node_status(Node& node, const NodeWatch& watch, const StatusContext& ctx);

// One entry of GET /api/network: the node's id, addresses, and its routing-table contacts that are nodes of
// this process (by index in `local_ids`) plus how many others it holds.
nlohmann::json network_entry(Node& node, const NodeWatch& watch, const std::map<NodeId, size_t>& local_ids);

}  // namespace storjnet::api
