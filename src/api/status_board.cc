#include "api/status_board.h"

#include <algorithm>
#include <utility>

namespace storjnet::api {

namespace {

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

StatusBoard::StatusBoard(std::string version, int protocol, size_t history_seconds, std::chrono::seconds stun_interval)
    : version_(std::move(version)), protocol_(protocol), history_seconds_(history_seconds), stun_interval_(stun_interval) {}

size_t StatusBoard::add(Node& node, std::string api_url, Endpoint udp) {
  auto w = std::make_unique<NodeWatch>();
  w->index = nodes_.size();
  w->api_url = std::move(api_url);
  w->udp = udp;
  w->started_unix_ms = unix_ms();
  w->history = StatusHistory(history_seconds_);
  w->history.record(node.stats(), node.dht().stats(), unix_ms(), mono_ms());  // the baseline: the first tick counts from here
  NodeWatch* watch = w.get();
  node.pubsub().set_on_event([watch](const std::string& topic, const std::string& event) {
    auto it = watch->topics.find(topic);
    if (it == watch->topics.end()) {
      if (watch->topics.size() >= NodeWatch::kTopics) return;
      it = watch->topics.emplace(topic, NodeWatch::TopicLog{}).first;
    }
    auto& log = it->second;
    ++log.events;
    log.recent.emplace_back(unix_ms(), event.substr(0, NodeWatch::kEventText));
    if (log.recent.size() > NodeWatch::kRecentEvents) log.recent.pop_front();
  });
  nodes_.push_back({&node, std::move(w)});
  return nodes_.size() - 1;
}

void StatusBoard::tick() {
  for (size_t i = 0; i < nodes_.size(); ++i) tick(i);
}

void StatusBoard::tick(size_t i) {
  int64_t now = unix_ms(), mono = mono_ms();
  {
    Entry& e = nodes_.at(i);
    NodeWatch& w = *e.watch;
    w.history.record(e.node->stats(), e.node->dht().stats(), now, mono);
    // Streams: rates over the last tick; closed streams forgotten.
    auto open = e.node->streams().list();
    std::map<StreamId, NodeWatch::StreamRate> rates;
    const StatusSample* last = w.history.last();
    double secs = last ? std::max(last->interval_ms, 1u) / 1000.0 : 1.0;
    for (const auto& [sid, info] : open) {
      NodeWatch::StreamRate r{info.received, info.sent, 0, 0};
      if (auto it = w.streams.find(sid); it != w.streams.end()) {
        r.in_per_s = static_cast<double>(info.received - std::min(info.received, it->second.received)) / secs;
        r.out_per_s = static_cast<double>(info.sent - std::min(info.sent, it->second.sent)) / secs;
      }
      rates.emplace(sid, r);
    }
    w.streams = std::move(rates);
    // Topics no longer subscribed to are forgotten.
    auto subs = e.node->pubsub().subscriptions();
    std::erase_if(w.topics, [&](const auto& t) { return std::find(subs.begin(), subs.end(), t.first) == subs.end(); });
    if (!w.stun_in_flight && now - w.stun_asked_unix_ms >= stun_interval_.count() * 1000 &&
        !e.node->dht().peers().empty())
      stun(e);
  }
}

void StatusBoard::stun(Entry& e) {
  NodeWatch* w = e.watch.get();
  w->stun_in_flight = true;
  w->stun_asked_unix_ms = unix_ms();
  e.node->dht().stun([w](std::optional<Endpoint> seen) {
    w->stun_in_flight = false;
    if (!seen) return;
    w->observed = seen;
    w->observed_unix_ms = unix_ms();
  });
}

StatusContext StatusBoard::context() const {
  return {.version = version_, .protocol = protocol_, .nodes = nodes_.size(), .now_unix_ms = unix_ms()};
}

nlohmann::json StatusBoard::status(size_t i) const { return node_status(*nodes_.at(i).node, *nodes_.at(i).watch, context()); }

nlohmann::json StatusBoard::network() const {
  std::map<NodeId, size_t> ids;
  for (size_t i = 0; i < nodes_.size(); ++i) ids.emplace(nodes_[i].node->id(), i);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : nodes_) out.push_back(network_entry(*e.node, *e.watch, ids));
  return {{"nodes", std::move(out)}};
}

}  // namespace storjnet::api
