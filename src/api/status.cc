#include "api/status.h"

#include <algorithm>
#include <map>

#include "storjnet/bytes.h"

namespace storjnet::api {

using json = nlohmann::json;

namespace {

std::string stream_hex(const StreamId& s) { return to_hex({s.data(), s.size()}); }

// How our address looks from outside: "direct" when a peer sees the address we are bound to (or the same
// port on another address when we bound to all of them), "translated" when it sees another one (a NAT),
// "unknown" before any peer answered.
std::string reachability(const NodeWatch& w) {
  if (!w.observed) return "unknown";
  if (*w.observed == w.udp) return "direct";
  if (w.udp.is_unspecified() && w.observed->port == w.udp.port) return "direct";
  return "translated";
}

// NatView's verdicts per family (docs/protocol.md 5.1, "Mapping").
json nat_json(const DhtStats& ds) {
  auto one = [](NatMapping m, const std::optional<Endpoint>& a) {
    json addr = nullptr;
    if (a) addr = m == NatMapping::kDependent ? json(a->ip_string()) : json(a->to_string());
    return json{{"mapping", nat_mapping_name(m)}, {"address", addr}};
  };
  return {{"v4", one(ds.nat_mapping_v4, ds.nat_address_v4)}, {"v6", one(ds.nat_mapping_v6, ds.nat_address_v6)},
          {"stun_asks", ds.nat_stun_asks}};
}

json routing_json(Node& node, const std::vector<Contact>& peers, size_t confirmed) {
  // Buckets by distance: contacts grouped by how many leading bits their id shares with ours (bucket i holds
  // ids at XOR distance [2^(159-i), 2^(160-i))), each of capacity k. Shown up to one past the deepest.
  int deepest = -1;
  std::vector<size_t> counts(NodeId::kSize * 8, 0);
  for (const auto& c : peers) {
    int b = std::min<int>(node.id().common_prefix_bits(c.id), static_cast<int>(counts.size()) - 1);
    ++counts[static_cast<size_t>(b)];
    deepest = std::max(deepest, b);
  }
  json buckets = json::array();
  int shown = std::min<int>(deepest + 2, static_cast<int>(counts.size()));
  for (int i = 0; i < std::max(shown, 1); ++i) buckets.push_back(counts[static_cast<size_t>(i)]);
  return {{"k", node.dht().config().k}, {"contacts", peers.size()}, {"confirmed", confirmed},
          {"buckets", std::move(buckets)}};
}

}  // namespace

json node_status(Node& node, const NodeWatch& w, const StatusContext& ctx) {
  const NodeStats ns = node.stats();
  const DhtStats ds = node.dht().stats();
  const auto peers = node.dht().peers();

  // How this node reaches each peer now: through a relay (a relayed path is set), over the LAN (a punch
  // reached it at its LAN address: the same router), through a hole it punched, or directly. A relayed peer need not be in the routing table (relay.paths lists every one).
  std::map<NodeId, Contact> relayed;
  json relay_paths = json::array();
  for (const auto& p : node.relayed_paths()) {
    relayed.emplace(p.peer, p.relay);
    relay_paths.push_back({{"peer", p.peer.hex()}, {"relay", p.relay.id.hex()},
                           {"relay_address", p.relay.endpoint.to_string()}});
  }
  // Peers reached through a hole, in the routing table or not (the table need not hold every peer we talk to).
  json punched_paths = json::array();
  for (const auto& id : node.dht().punched_ids())
    if (!relayed.count(id))
      punched_paths.push_back({{"peer", id.hex()}, {"path", node.dht().lan_path(id) ? "lan" : "punched"}});
  json peer_list = json::array();
  for (const auto& c : peers) {
    const char* path = relayed.count(c.id)             ? "relayed"
                       : node.dht().lan_path(c.id) ? "lan"
                       : node.dht().punched(c.id)  ? "punched"
                                                   : "direct";
    peer_list.push_back({{"id", c.id.hex()}, {"address", c.endpoint.to_string()},
                         {"bucket", node.id().common_prefix_bits(c.id)}, {"path", path}});
  }

  json subs = json::array();
  for (const auto& topic : node.pubsub().subscriptions()) {
    json recent = json::array();
    uint64_t events = 0;
    if (auto it = w.topics.find(topic); it != w.topics.end()) {
      events = it->second.events;
      for (auto r = it->second.recent.rbegin(); r != it->second.recent.rend(); ++r)
        recent.push_back({{"t", r->first}, {"event", r->second}});
    }
    subs.push_back({{"topic", topic}, {"events", events}, {"recent", std::move(recent)}});
  }

  json streams = json::array();
  for (const auto& [sid, info] : node.streams().list()) {
    json s = {{"id", stream_hex(sid)}, {"peer", info.peer.hex()}, {"inbound", info.inbound},
              {"unread", info.unread},  {"received", info.received}, {"sent", info.sent},
              {"in_per_s", 0.0},        {"out_per_s", 0.0},    {"acked", info.acked},
              {"in_flight", info.in_flight}, {"losses", info.losses}, {"rate", info.rate},
              {"heard_ms_ago", info.heard_ms_ago}, {"fast_path", info.fast_path}, {"route", info.route}};
    if (auto it = w.streams.find(sid); it != w.streams.end()) {
      s["in_per_s"] = it->second.in_per_s;
      s["out_per_s"] = it->second.out_per_s;
    }
    streams.push_back(std::move(s));
  }

  json drops = json::object();
  for (const auto& [reason, n] : ns.drops)
    if (n) drops[std::string(reason)] = n;

  const DhtConfig& dc = node.dht().config();
  return {
      {"id", node.id().hex()},
      {"version", ctx.version},
      {"protocol", ctx.protocol},
      {"node", {{"index", w.index}, {"of", ctx.nodes}}},
      {"now", ctx.now_unix_ms},
      {"uptime_s", std::max<int64_t>(ctx.now_unix_ms - w.started_unix_ms, 0) / 1000},
      {"addresses",
       {{"udp", w.udp.to_string()},
        {"api", w.api_url},
        {"observed", w.observed ? json(w.observed->to_string()) : json(nullptr)},
        {"observed_at", w.observed ? json(w.observed_unix_ms) : json(nullptr)},
        {"reachability", reachability(w)},
        {"reachable", ds.reachable},
        {"reachable_v4", ds.reachable_v4},
        {"reachable_v6", ds.reachable_v6},
        {"nat", nat_json(ds)}}},
      {"peers", std::move(peer_list)},
      {"punched_paths", std::move(punched_paths)},
      {"nat_traversal",
       {{"keepalives_sent", ds.keepalives_sent}, {"keepalives_received", ds.keepalives_received},
        {"punch_attempts", ds.punch_attempts}, {"punch_ok", ds.punch_ok}, {"punch_failed", ds.punch_failed},
        {"punch_no_rendezvous", ds.punch_no_rendezvous}, {"punch_asks_sent", ds.punch_asks_sent},
        {"punch_lookups", ds.punch_lookups},
        {"punch_asks_served", ds.punch_asks_served}, {"punch_intros_served", ds.punch_intros_served},
        {"punch_holes_sent", ds.punch_holes_sent}, {"punch_refused", ds.punch_refused},
        {"punched_peers", ds.punched_peers}, {"punch_lan_asks_sent", ds.punch_lan_asks_sent},
        {"punch_lan_intros_sent", ds.punch_lan_intros_sent}, {"punch_lan_holes_sent", ds.punch_lan_holes_sent},
        {"punch_lan_refused", ds.punch_lan_refused}, {"upgrade_syncs_sent", ds.upgrade_syncs_sent},
        {"upgrade_syncs_served", ds.upgrade_syncs_served}, {"upgrades_ok", ds.upgrades_ok},
        {"upgrades_failed", ds.upgrades_failed}, {"upgrades_futile", ds.upgrades_futile}, {"birthdays", ds.birthdays}, {"birthday_ports", ds.birthday_ports},
        {"birthday_probes", ds.birthday_probes}, {"upgrade_refused", ds.upgrade_refused}}},
      {"relay",
       {{"reservations_held", ds.relay_reservations_held}, {"reservations_made", ds.relay_reservations_made},
        {"reservations_renewed", ds.relay_reservations_renewed},
        {"renewals_unanswered", ds.relay_renewals_unanswered}, {"paths_switched", ds.relay_paths_switched},
        {"lists_published", ds.relay_lists_published}, {"fallbacks", ds.relay_fallbacks},
        {"fallbacks_found", ds.relay_fallbacks_found}, {"relayed_out", ds.relayed_out}, {"relayed_in", ds.relayed_in},
        {"reservations_served", ds.relay_reservations_served}, {"reservations_granted", ds.relay_reservations_granted},
        {"circuits", ds.relay_circuits}, {"forwarded", ds.relay_forwarded}, {"forwarded_bytes", ds.relay_forwarded_bytes},
        {"refused", ds.relay_refused}, {"paths", std::move(relay_paths)}}},
      {"routing", routing_json(node, peers, ds.routing_confirmed)},
      {"store",
       {{"values", ds.stored_values}, {"bytes", ds.stored_bytes}, {"max_values", dc.max_values},
        {"max_bytes", dc.max_bytes}}},
      {"subscriptions", std::move(subs)},
      {"streams", std::move(streams)},
      {"queues",
       {{"messages", node.messages().queued()}, {"pending_rpcs", ns.pending_rpcs},
        {"reassembly_bytes", ns.reassembly_bytes}, {"sessions", ns.sessions}}},
      {"totals",
       {{"datagrams_in", ns.datagrams_in}, {"datagrams_out", ns.datagrams_out}, {"bytes_in", ns.bytes_in},
        {"bytes_out", ns.bytes_out}, {"lookups", ds.lookups}, {"retransmits", ns.retransmits},
        {"timeouts", ns.timeouts}, {"drops", ns.drops_total()}}},
      {"drops", std::move(drops)},
      {"history", w.history.to_json()},
  };
}

json network_entry(Node& node, const NodeWatch& w, const std::map<NodeId, size_t>& local_ids) {
  json links = json::array();
  size_t others = 0;
  for (const auto& c : node.dht().peers()) {
    auto it = local_ids.find(c.id);
    if (it == local_ids.end()) {
      ++others;
      continue;
    }
    links.push_back(it->second);
  }
  return {{"index", w.index},   {"id", node.id().hex()},  {"api", w.api_url}, {"udp", w.udp.to_string()},
          {"links", std::move(links)}, {"other_contacts", others}};
}

}  // namespace storjnet::api
