// Pubsub::Impl: the state of one node's pubsub. Split by idea:
//   pubsub.cc     user API, local delivery, handlers, housekeeping
//   quasar.cc     attenuated filters (build, push, receive) and Quasar event forwarding (Algorithm 2)
//   rendezvous.cc the improvement: registrations and events routed to the topic key's closest nodes
#pragma once
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "pubsub/bloom.h"
#include "pubsub/seen_set.h"
#include "pubsub/subscriber_list.h"
#include "pubsub/wire.h"
#include "storjnet/dht.h"
#include "storjnet/pubsub.h"

namespace storjnet {

struct Pubsub::Impl {
  // Flags in the SeenSet.
  // kHeld: served as a holder (the publisher's copy; direct mode keys it by event and sender,
  // pubsub::per_sender); kRouteEnd: served as the end of the route an event takes while its publisher looks
  // for the holders (direct mode). kDelivered is keyed by pubsub::content_key, the others by event id.
  static constexpr uint8_t kDelivered = 1, kQuasarSeen = 2, kRouted = 4, kHeld = 8, kRouteEnd = 16;

  Impl(Engine& e, Dht& d, PubsubConfig c);
  ~Impl();

  // --- pubsub.cc ---
  void on_update(const IncomingRequest& req, const Reply& reply);
  void on_notify(const IncomingRequest& req, const Reply& reply);
  void handle_notify(pubsub::NotifyBody&& ev, const NodeId& from, TimePoint now);
  void deliver_local(const pubsub::NotifyBody& ev);
  void maintain();
  // Housekeeping runs within `d` (sooner when already due sooner). Every input (API call, datagram) asks for
  // the short tick; an idle node with nothing to expire, push or renew sleeps until the next refresh.
  void arm_maintenance(Duration d);
  Duration maintenance_delay();
  // Rendezvous on and our filter has no bit set: Quasar has nothing to push (docs/protocol.md 8.3).
  bool nothing_to_push() const;
  std::vector<Contact> peers();
  std::vector<Contact> closest_known(const NodeId& target, size_t n);
  pubsub::EventId new_event_id();

  // --- quasar.cc ---
  void choose_neighbours(bool force);
  void rebuild_filters();  // recomputes `mine` from subscriptions and in-filters; schedules a push on change
  void schedule_push();
  void push_filters(bool refresh_all);
  void on_filter(const Contact& from, pubsub::FilterBody&& f);
  void quasar_forward(pubsub::NotifyBody ev, const NodeId* from, bool directed);
  void expire_filters();
  // Lowest level of `levels` that matches, or -1 (saturated levels never match).
  int match_level(const std::vector<pubsub::BloomFilter>& levels, const pubsub::TopicHash& h) const;

  // --- rendezvous.cc ---
  void register_topic(const NodeId& key, bool subscribe);
  // A quasar_update register/replica from `from`: checked (puzzle, signature, freshness), then routed or held.
  void on_register(pubsub::RegisterBody&& body, const Contact& from);
  // Whether `id` solves the network's id puzzle (counted as id_puzzle when not).
  bool admissible(const NodeId& id);
  // Signed by the subscriber it names and issued within [now - lease, now + kRegistrationSkew].
  bool signed_and_fresh(const pubsub::RegisterBody& body);
  void route_register(pubsub::RegisterBody body);
  void hold_register(const pubsub::RegisterBody& body, bool replicate);
  // A subscriber not yet held at this endpoint is pinged first: only the endpoint its authenticated answer
  // comes from is kept, so deliveries and the per-block fairness use addresses nobody could invent.
  void verify_then_hold(const pubsub::RegisterBody& body);
  void apply_held(const pubsub::RegisterBody& body, const Contact& subscriber, bool self);
  Duration lease() const { return 3 * cfg.refresh; }
  void route_event(pubsub::NotifyBody ev);
  // Sends `body` to cands[i], then the next candidate while hops fail; on_terminal() when none is left.
  void route_step(Method m, std::shared_ptr<Bytes> body, std::shared_ptr<std::vector<Contact>> cands, size_t i,
                  std::function<void()> on_terminal);
  // Up to route_candidates contacts strictly closer to `key` than we are, closest first.
  std::vector<Contact> next_hops(const NodeId& key);
  void event_terminal(const pubsub::NotifyBody& ev);
  // Delivers to the subscribers held for the topic, except `skip`; returns those served.
  std::vector<NodeId> holder_deliver(const pubsub::NotifyBody& ev, const std::vector<NodeId>& skip);
  // Direct: a publisher's event naming its holders (kind 5): delivers to the held subscribers this node
  // serves for it (pubsub/serving.h).
  void holder_serve(const pubsub::NotifyBody& ev);
  // Sends (or, for ourselves, hands to deliver_local) a deliver request for `d` to the held entry.
  void send_delivery(const Bytes& bytes, const pubsub::NotifyBody& d, const pubsub::SubscriberList::Entry& h);
  void expire_held();
  void renew_registrations();
  // --- direct rendezvous (cfg.direct) ---
  // then(holders): the topic key's `holders` closest nodes (ourselves included, as a contact with our id,
  // when we are among them), from the holder cache or one disjoint-path lookup shared by concurrent callers.
  void with_holders(const NodeId& key, std::function<void(const std::vector<Contact>&)> then);
  std::vector<Contact> pick_holders(const NodeId& key, std::vector<Contact> found);
  // Whether the holders found for `key` sit packed near it (pubsub/serving.h crowding() >= cfg.crowded).
  bool crowded_holders(const NodeId& key, const std::vector<NodeId>& found) const;
  void send_register(const pubsub::RegisterBody& body, const std::vector<Contact>& holders);
  // To the holders; while they are not known yet, also along the greedy route (ahead of the lookup).
  void send_event(const pubsub::NotifyBody& ev);
  // The holders found for `key` less than `refresh` ago, or nullptr.
  const std::vector<Contact>* cached_holders(const NodeId& key) const;
  // Whether with_holders(key) would answer at once (cache or topology).
  bool holders_known(const NodeId& key) const;

  Engine& engine;
  Dht& dht;
  PubsubConfig cfg;
  pubsub::WireLimits limits;
  PubsubTopology topology;
  mutable PubsubStats st;
  std::function<void(const std::string&, const std::string&)> on_event;

  struct Subscription {
    pubsub::TopicHash hash;
    NodeId key;
    std::deque<std::string> queue;
    bool registered_alone = false;  // registered while no peer was known: redo when peers appear
  };
  std::map<std::string, Subscription> subs;

  // Quasar state.
  std::vector<Contact> out;  // we push our filter to these
  struct InFilter {
    Contact from;
    std::vector<pubsub::BloomFilter> levels;
    uint32_t saturated = 0;  // bit i: level i has more than max_fill of its bits set
    TimePoint received{};
  };
  std::unordered_map<NodeId, InFilter> in;  // neighbours' filters: we forward events to them
  std::vector<pubsub::BloomFilter> mine;    // our attenuated filter
  std::vector<pubsub::BloomFilter> pushed;  // what `out` last received
  TimerId push_timer, maintain_timer;
  TimePoint maintain_at{};  // when maintain_timer fires
  TimePoint last_push{}, last_full_push{}, last_renew{};

  // Rendezvous state: topic key -> its subscribers.
  std::unordered_map<NodeId, pubsub::SubscriberList> held;
  // Subscribers being pinged before they are held: (topic key, subscriber) -> the newest statement received
  // meanwhile (applied when the ping proves the endpoint it came with).
  std::map<std::pair<NodeId, NodeId>, pubsub::RegisterBody> verifying;
  static constexpr size_t kMaxVerifying = 1024;
  static constexpr Duration kRegistrationSkew = 60s;  // statements issued this far in our future are accepted
  uint64_t last_issued = 0;                           // our own statements: strictly increasing

  pubsub::SeenSet seen;

  // Direct rendezvous: the holders found per topic key (kept for `refresh`), and callers waiting on a lookup.
  struct Holders {
    std::vector<Contact> contacts;
    TimePoint found{};
  };
  std::unordered_map<NodeId, Holders> holders;
  std::unordered_map<NodeId, std::vector<std::function<void(const std::vector<Contact>&)>>> finding;
  static constexpr size_t kMaxHolderCache = 4096;  // topic keys; beyond it the oldest half is dropped
  static constexpr size_t kMaxWaiting = 4096;      // registrations and events waiting on holder lookups

  // Every RPC, timer and DHT lookup continuation of pubsub (Engine::Scope): ended first when it is destroyed.
  Engine::Scope scope;
};

}  // namespace storjnet
