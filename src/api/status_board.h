// StatusBoard: the nodes of one storjnetd process as the status page sees them (docs/api.md, "Status
// page"). For each node it keeps a NodeWatch: its API address, the per-second history of its counters,
// the recent pubsub events per subscribed topic (it installs the node's Pubsub::set_on_event observer), its
// streams' throughput and the address a peer last saw it at (kademlia_stun every stun_interval).
//
// Memory is bounded per node: the history ring (StatusHistory), kRecentEvents events of at most kEventText
// bytes for at most kTopics topics, one rate per open stream.
//
// Threads (RealDriver with several io threads): add() and network() touch every node, so they run with every
// node at hand (RealDriver::call/post without a node: the driver paused); tick(i) and status(i) touch node i
// and its watch only, so they run on node i's thread. tick() is tick(i) for all (one thread, or paused). The
// set of nodes does not change after the last add(). The board must outlive the driver (its stun callbacks and
// pubsub observers point at it).
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/status.h"

namespace storjnet::api {

class StatusBoard {
 public:
  StatusBoard(std::string version, int protocol, size_t history_seconds = 300,
              std::chrono::seconds stun_interval = std::chrono::seconds(60));
  StatusBoard(const StatusBoard&) = delete;
  StatusBoard& operator=(const StatusBoard&) = delete;

  // Registers a node (index = the order of registration), takes its history's baseline and installs its pubsub
  // observer.
  size_t add(Node& node, std::string api_url, Endpoint udp);
  size_t size() const { return nodes_.size(); }

  // Samples every node's counters and streams, and asks a peer for the address of each node whose last
  // answer is older than stun_interval. Call about once a second.
  void tick();
  // The same for node i only (i < size()).
  void tick(size_t i);

  // GET /api/status of node i (i < size()).
  nlohmann::json status(size_t i) const;
  // GET /api/network: {"nodes": [network_entry...]} for every node of the process.
  nlohmann::json network() const;

 private:
  struct Entry {
    Node* node;
    std::unique_ptr<NodeWatch> watch;
  };
  StatusContext context() const;
  void stun(Entry& e);

  std::string version_;
  int protocol_;
  size_t history_seconds_;
  std::chrono::seconds stun_interval_;
  std::vector<Entry> nodes_;
};

}  // namespace storjnet::api
