#include "api/metrics.h"

#include <algorithm>
#include <chrono>
#include <sstream>
#include <utility>


namespace storjnet::api {

namespace {

class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <class V>
  void sample(std::string_view name, std::string_view labels, V value) {
    out_ << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << value << '\n';
  }
  template <class V>
  void single(std::string_view name, std::string_view type, std::string_view help, V value) {
    family(name, type, help);
    sample(name, "", value);
  }
  // A histogram over `values` with the given upper bounds.
  void histogram(std::string_view name, std::string_view help, const std::vector<double>& bounds,
                 const std::vector<double>& values) {
    family(name, "histogram", help);
    double sum = 0;
    for (double v : values) sum += v;
    for (double b : bounds) {
      size_t n = 0;
      for (double v : values) n += v <= b;
      std::ostringstream le;
      le << b;
      sample(std::string(name) + "_bucket", "le=\"" + le.str() + "\"", n);
    }
    sample(std::string(name) + "_bucket", "le=\"+Inf\"", values.size());
    sample(std::string(name) + "_sum", "", sum);
    sample(std::string(name) + "_count", "", values.size());
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

std::string render_metrics(Node& node, const ApiCounters& api, const ApiRefusals* refusals, const UdpStats* udp) {
  Writer w;
  const NodeStats es = node.stats();

  w.family("storjnet_rpc_requests_total", "counter", "Network RPC requests by method and direction.");
  for (const auto& m : es.requests) {
    std::string label = "method=\"" + std::string(m.method) + "\"";
    w.sample("storjnet_rpc_requests_total", label + ",direction=\"out\"", m.out);
    w.sample("storjnet_rpc_requests_total", label + ",direction=\"in\"", m.in);
  }
  w.single("storjnet_rpc_retransmits_total", "counter", "Request retransmissions.", es.retransmits);
  w.single("storjnet_rpc_timeouts_total", "counter", "Requests that timed out after all attempts.", es.timeouts);
  w.family("storjnet_datagrams_total", "counter", "UDP datagrams by direction.");
  w.sample("storjnet_datagrams_total", "direction=\"in\"", es.datagrams_in);
  w.sample("storjnet_datagrams_total", "direction=\"out\"", es.datagrams_out);
  w.family("storjnet_bytes_total", "counter", "UDP bytes by direction.");
  w.sample("storjnet_bytes_total", "direction=\"in\"", es.bytes_in);
  w.sample("storjnet_bytes_total", "direction=\"out\"", es.bytes_out);
  w.single("storjnet_sessions_created_total", "counter", "Peer sessions created.", es.sessions_created);
  w.single("storjnet_sessions_evicted_total", "counter", "Peer sessions evicted.", es.sessions_evicted);
  w.single("storjnet_sessions", "gauge", "Peer sessions held.", es.sessions);

  w.family("storjnet_drops_total", "counter", "Incoming datagrams and messages dropped, by reason.");
  for (const auto& [reason, n] : es.drops)
    w.sample("storjnet_drops_total", "reason=\"" + std::string(reason) + "\"", n);

  DhtStats ds = node.dht().stats();
  std::vector<double> secs, rounds;
  for (const auto& l : ds.recent) {
    secs.push_back(std::chrono::duration<double>(l.elapsed).count());
    rounds.push_back(l.rounds);
  }
  w.histogram("storjnet_dht_lookup_duration_seconds", "Latency of the node's recent DHT lookups (bounded window).",
              {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}, secs);
  w.histogram("storjnet_dht_lookup_rounds", "Rounds of the node's recent DHT lookups (bounded window).",
              {1, 2, 3, 4, 5, 6, 8, 10, 15, 20}, rounds);
  w.single("storjnet_dht_lookups_total", "counter", "DHT lookups.", ds.lookups);
  w.single("storjnet_dht_lookup_rpcs_total", "counter", "RPCs sent by DHT lookups.", ds.lookup_rpcs);
  w.single("storjnet_dht_puts_total", "counter", "DHT puts.", ds.puts);
  w.single("storjnet_dht_gets_total", "counter", "DHT gets.", ds.gets);
  w.single("storjnet_dht_gets_found_total", "counter", "DHT gets that found a value.", ds.gets_found);
  w.family("storjnet_dht_stores_total", "counter", "kademlia_store requests by outcome.");
  w.sample("storjnet_dht_stores_total", "outcome=\"accepted\"", ds.stores_accepted);
  w.sample("storjnet_dht_stores_total", "outcome=\"rejected\"", ds.stores_rejected);
  w.sample("storjnet_dht_stores_total", "outcome=\"rate_limited\"", ds.stores_rate_limited);
  w.sample("storjnet_dht_stores_total", "outcome=\"write_failed\"", ds.storage_write_failures);
  w.single("storjnet_dht_bad_values_total", "counter",
           "DHT values (stores and find_value answers) refused: bad signature or version too far ahead.", ds.bad_signatures);
  w.single("storjnet_dht_put_retries_total", "counter", "DHT put attempts repeated: no replica acknowledged.", ds.put_retries);
  w.single("storjnet_dht_placements_reused_total", "counter",
           "DHT puts stored on a recent put's placement of their key, without a lookup.", ds.placements_reused);
  w.single("storjnet_dht_neighbourhoods_reused_total", "counter",
           "DHT puts of other keys stored on the neighbourhood recent puts' lookups found whole, without a lookup.",
           ds.neighbourhoods_reused);
  w.family("storjnet_dht_squats_total", "counter", "Another owner's values under a node's self-named key, by outcome.");
  w.sample("storjnet_dht_squats_total", "outcome=\"displaced\"", ds.squats_displaced);
  w.sample("storjnet_dht_squats_total", "outcome=\"refused\"", ds.squats_refused);
  w.family("storjnet_dht_contacts_refused_total", "counter", "Contacts refused by routing-table admission, by reason.");
  w.sample("storjnet_dht_contacts_refused_total", "reason=\"id_puzzle\"", ds.contacts_refused_puzzle);
  w.sample("storjnet_dht_contacts_refused_total", "reason=\"prefix_limit\"", ds.contacts_refused_prefix);
  w.single("storjnet_dht_contacts_evicted_total", "counter", "Routing table contacts evicted.", ds.contacts_evicted);
  w.single("storjnet_dht_verify_pings_total", "counter", "Request senders pinged before entering the routing table.",
           ds.verify_pings);
  w.single("storjnet_dht_verify_spared_total", "counter",
           "Request senders not pinged: by the end of the wait another exchange had proven them.", ds.verify_spared);
  w.single("storjnet_dht_verify_asked_total", "counter",
           "Request senders whose answer carried an address challenge (their echo proves them).", ds.verify_asked);
  w.family("storjnet_dht_rejoins_total", "counter",
           "Looks at the own neighbourhood after a join: asks of the closest (check), own-id lookups (lookup).");
  w.sample("storjnet_dht_rejoins_total", "kind=\"check\"", ds.rejoin_checks);
  w.sample("storjnet_dht_rejoins_total", "kind=\"lookup\"", ds.rejoin_lookups);
  w.family("storjnet_dht_join_refresh_runs_total", "counter",
           "A join's refreshes of its thin far buckets, run one after another: runs started, runs ended.");
  w.sample("storjnet_dht_join_refresh_runs_total", "state=\"started\"", ds.join_refresh_runs);
  w.sample("storjnet_dht_join_refresh_runs_total", "state=\"ended\"", ds.join_refresh_runs_done);
  w.single("storjnet_dht_routing_contacts", "gauge", "Contacts in the routing table.", ds.routing_contacts);
  w.single("storjnet_dht_routing_confirmed", "gauge", "Routing-table contacts a dial-back confirmed reachable.",
           ds.routing_confirmed);
  w.single("storjnet_dht_reachable", "gauge", "1 when a stranger's probe (dial-back self-check) reached this node in the last hour.",
           ds.reachable ? 1 : 0);
  w.family("storjnet_dht_dial_back_total", "counter", "Dial-back checks (docs/protocol.md 5.1), by event.");
  w.sample("storjnet_dht_dial_back_total", "event=\"asked\"", ds.dial_back_asks_sent);
  w.sample("storjnet_dht_dial_back_total", "event=\"served\"", ds.dial_back_asks_served);
  w.sample("storjnet_dht_dial_back_total", "event=\"refused\"", ds.dial_back_asks_refused);
  w.sample("storjnet_dht_dial_back_total", "event=\"declined\"", ds.dial_back_asks_declined);
  w.sample("storjnet_dht_dial_back_total", "event=\"probed\"", ds.dial_back_probes_answered);
  w.sample("storjnet_dht_dial_back_total", "event=\"confirmed\"", ds.dial_back_confirmed);
  w.sample("storjnet_dht_dial_back_total", "event=\"self_check\"", ds.dial_back_self_checks);
  w.sample("storjnet_dht_dial_back_total", "event=\"self_check_ok\"", ds.dial_back_self_checks_ok);
  w.sample("storjnet_dht_dial_back_total", "event=\"verdict_asked\"", ds.dial_back_verdicts_asked);
  w.sample("storjnet_dht_dial_back_total", "event=\"verdict_answered\"", ds.dial_back_verdicts_answered);
  w.sample("storjnet_dht_dial_back_total", "event=\"verdict_heard\"", ds.dial_back_verdicts_heard);
  w.family("storjnet_dht_punch_total", "counter", "Hole punching (docs/protocol.md 5.2), by event.");
  w.sample("storjnet_dht_punch_total", "event=\"attempt\"", ds.punch_attempts);
  w.sample("storjnet_dht_punch_total", "event=\"ok\"", ds.punch_ok);
  w.sample("storjnet_dht_punch_total", "event=\"failed\"", ds.punch_failed);
  w.sample("storjnet_dht_punch_total", "event=\"served\"", ds.punch_asks_served);
  w.sample("storjnet_dht_punch_total", "event=\"introduced\"", ds.punch_intros_served);
  w.sample("storjnet_dht_punch_total", "event=\"refused\"", ds.punch_refused);
  w.family("storjnet_dht_relay_total", "counter", "Relays (docs/protocol.md 5.3), by event.");
  w.sample("storjnet_dht_relay_total", "event=\"forwarded\"", ds.relay_forwarded);
  w.sample("storjnet_dht_relay_total", "event=\"refused\"", ds.relay_refused);
  w.sample("storjnet_dht_relay_total", "event=\"fallback\"", ds.relay_fallbacks);
  w.sample("storjnet_dht_relay_total", "event=\"relayed_out\"", ds.relayed_out);
  w.sample("storjnet_dht_relay_total", "event=\"relayed_in\"", ds.relayed_in);
  w.single("storjnet_dht_keepalives_sent_total", "counter", "NAT keepalives sent (docs/protocol.md 5.2).",
           ds.keepalives_sent);
  w.single("storjnet_dht_stored_values", "gauge", "Values in the local store.", ds.stored_values);
  w.single("storjnet_dht_stored_bytes", "gauge", "Bytes of values in the local store.", ds.stored_bytes);

  MessagesStats ms = node.messages().stats();
  w.family("storjnet_messages_refused_total", "counter", "Incoming direct messages refused, by reason.");
  w.sample("storjnet_messages_refused_total", "reason=\"queue_full\"", ms.refused_queue_full);
  w.sample("storjnet_messages_refused_total", "reason=\"sender_quota\"", ms.refused_sender_quota);
  w.sample("storjnet_messages_refused_total", "reason=\"prefix_quota\"", ms.refused_prefix_quota);
  w.sample("storjnet_messages_refused_total", "reason=\"invalid_json\"", ms.invalid_json);
  w.single("storjnet_messages_notify_rate_limited_total", "counter", "message_notify batches refused: sender over its rate.",
           ms.rate_limited);

  w.family("storjnet_queue_depth", "gauge", "Queue depths.");
  w.sample("storjnet_queue_depth", "queue=\"messages\"", node.messages().queued());
  w.sample("storjnet_queue_depth", "queue=\"pending_rpcs\"", es.pending_rpcs);
  w.sample("storjnet_queue_depth", "queue=\"reassembly_bytes\"", es.reassembly_bytes);
  w.single("storjnet_streams_open", "gauge", "Open streams.", node.streams().list().size());
  StreamsBudgetStats sb = node.streams().budget_stats();
  w.family("storjnet_streams_refused_total", "counter", "Incoming stream data and opens refused by a budget, by reason.");
  w.sample("storjnet_streams_refused_total", "reason=\"node_budget\"", sb.refused_node_budget);
  w.sample("storjnet_streams_refused_total", "reason=\"prefix_budget\"", sb.refused_prefix_budget);
  w.sample("storjnet_streams_refused_total", "reason=\"chunks_ahead\"", sb.refused_chunks_ahead);
  w.sample("storjnet_streams_refused_total", "reason=\"prefix_streams\"", sb.refused_prefix_streams);
  w.single("storjnet_streams_buffered_bytes", "gauge", "Received stream data held, as charged against max_buffered.",
           sb.buffered);
  StreamsFastPathStats fp = node.streams().fast_path_stats();
  w.single("storjnet_fast_path_links_up_total", "counter", "Streams fast-path connections authenticated.", fp.links_up);
  w.single("storjnet_fast_path_links_aes256_total", "counter",
           "Of those, connections sealed with AES-256-OCB (either end asked for it); the others use AES-128-OCB.",
           fp.links_aes256);
  w.family("storjnet_fast_path_closes_total", "counter",
           "Streams fast-path connections closed or refused, by reason (peer: closed by the peer or the network).");
  uint64_t bounded = fp.bad_records + fp.handshake_timeouts + fp.idle_closed + fp.ack_timeouts + fp.send_overflows +
                     fp.handshakes_limited;
  for (auto [reason, n] : {std::pair<std::string_view, uint64_t>{"bad_record", fp.bad_records},
                           {"handshake_timeout", fp.handshake_timeouts}, {"idle", fp.idle_closed},
                           {"ack_timeout", fp.ack_timeouts}, {"send_overflow", fp.send_overflows},
                           {"handshake_limited", fp.handshakes_limited}, {"refused", fp.links_refused},
                           {"peer", fp.links_failed - std::min(fp.links_failed, bounded)}})
    w.sample("storjnet_fast_path_closes_total", "reason=\"" + std::string(reason) + "\"", n);
  w.family("storjnet_fast_path_bytes_total", "counter", "Stream data bytes over fast-path connections.");
  w.sample("storjnet_fast_path_bytes_total", "direction=\"in\"", fp.bytes_received);
  w.sample("storjnet_fast_path_bytes_total", "direction=\"out\"", fp.bytes_sent);

  PubsubStats ps = node.pubsub().stats();
  w.family("storjnet_pubsub_events_total", "counter", "Pubsub events by outcome.");
  w.sample("storjnet_pubsub_events_total", "outcome=\"published\"", ps.published);
  w.sample("storjnet_pubsub_events_total", "outcome=\"delivered\"", ps.delivered);
  w.sample("storjnet_pubsub_events_total", "outcome=\"duplicate\"", ps.duplicates);
  w.single("storjnet_pubsub_subscriptions", "gauge", "Topics subscribed to.", node.pubsub().subscriptions().size());

  w.family("storjnet_api_calls_total", "counter", "JSON-RPC API calls dispatched, by method.");
  for (size_t i = 0; i < kMethodCount; ++i)
    w.sample("storjnet_api_calls_total", "method=\"" + std::string(method_name(i)) + "\"", api.calls[i].load());
  w.family("storjnet_api_errors_total", "counter", "JSON-RPC API error responses, by code.");
  static constexpr std::array<std::string_view, 6> kErr = {"-32700", "-32600", "-32601", "-32602", "-32603", "-32002"};
  for (size_t i = 0; i < kErr.size(); ++i)
    w.sample("storjnet_api_errors_total", "code=\"" + std::string(kErr[i]) + "\"", api.errors[i].load());
  w.single("storjnet_api_requests_total", "counter", "JSON-RPC requests received (batch entries counted).",
           api.requests.load());
  if (refusals) {
    w.family("storjnet_api_refused_total", "counter", "API requests and connections refused before dispatch, by reason.");
    for (size_t i = 0; i < kRefusalNames.size(); ++i)
      w.sample("storjnet_api_refused_total", "reason=\"" + std::string(kRefusalNames[i]) + "\"",
               refusals->by_reason[i].load());
  }
  if (udp) {
    w.single("storjnet_udp_kernel_drops_total", "counter", "Datagrams the kernel dropped on the UDP socket (receive buffer full).",
             udp->kernel_drops);
    w.single("storjnet_udp_send_deferred_total", "counter", "Datagrams that waited for a full UDP socket in the send queue.",
             udp->send_deferred);
    w.single("storjnet_udp_send_queue_drops_total", "counter", "Datagrams dropped because the UDP send queue was full.",
             udp->send_queue_drops);
    w.single("storjnet_udp_send_queued", "gauge", "Datagrams waiting in the UDP send queue.", udp->send_queued);
    w.family("storjnet_udp_buffer_bytes", "gauge", "Effective UDP socket buffer sizes, as the kernel reports them.");
    w.sample("storjnet_udp_buffer_bytes", "direction=\"receive\"", udp->rcvbuf);
    w.sample("storjnet_udp_buffer_bytes", "direction=\"send\"", udp->sndbuf);
  }
  return w.str();
}

}  // namespace storjnet::api
