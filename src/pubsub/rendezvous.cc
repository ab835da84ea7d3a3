// The rendezvous improvement over Quasar: subscriptions and events both go to the nodes closest to the topic
// key K = BLAKE2b-160(topic), which hold the topic's subscribers and deliver its events to them.
//
// Direct (cfg.direct, the default): the subscriber and the publisher each find K's `holders` closest nodes
// with a disjoint-path DHT lookup (cached per key for `refresh`) and send the signed registration (naming
// those holders), or the event (naming its own), to every one of them. Each holder delivers to the subscribers
// it serves for that event: the first `serving` of the holders both named, ranked by a hash keyed by the event
// id (pubsub/serving.h). A node that drops what it is sent (or lies in lookups) loses an event for a
// subscriber only when every holder chosen for it is such a node; each event costs at most `serving`
// deliveries per subscriber, deduplicated at the subscriber.
//
// Greedy (cfg.direct = false): both travel to the node closest to K by greedy routing over routing tables
// (each hop strictly closer to K, so no loops; each hop acknowledged, the next-closest candidate tried when one
// does not answer). The node where routing ends (the terminal) holds the topic's subscribers and copies every
// registration to its replicas-1 closest contacts; for an event it delivers to the subscribers it holds, then
// sends the event with the list of subscribers served to its replicas-1 closest contacts, which deliver to the
// subscribers they hold that are not on the list (the true holder may be dead, or tables not converged).
#include <algorithm>
#include <unordered_set>

#include "pubsub/pubsub_impl.h"
#include "pubsub/serving.h"

namespace storjnet {

using namespace pubsub;

std::vector<Contact> Pubsub::Impl::next_hops(const NodeId& key) {
  auto known = closest_known(key, cfg.route_candidates + 1);
  std::vector<Contact> out;
  for (auto& c : known) {
    if (out.size() >= cfg.route_candidates) break;
    if (closer(key, c.id, engine.id())) out.push_back(std::move(c));
  }
  return out;
}

void Pubsub::Impl::route_step(Method m, std::shared_ptr<Bytes> body, std::shared_ptr<std::vector<Contact>> cands,
                              size_t i, std::function<void()> on_terminal) {
  if (i >= cands->size()) {
    ++st.route_terminal;
    return on_terminal();
  }
  RpcOptions opts{cfg.route_timeout, cfg.route_attempts};
  engine.request(
      scope, (*cands)[i], m, *body,
      [this, m, body, cands, i, on_terminal = std::move(on_terminal)](RpcResult&& r) mutable {
        if (r.ok()) {
          ++st.route_forwards;
          return;
        }
        ++st.route_hop_failures;
        route_step(m, std::move(body), std::move(cands), i + 1, std::move(on_terminal));
      },
      opts);
}

void Pubsub::Impl::register_topic(const NodeId& key, bool subscribe) {
  for (auto& [t, s] : subs)
    if (s.key == key) s.registered_alone = peers().empty();
  RegisterBody b;
  b.kind = UpdateKind::kRegister;
  b.topic_key = key;
  b.subscribe = subscribe;
  b.subscriber = engine.identity().public_key();
  const auto sign = [this](RegisterBody& r) {
    r.issued_us = last_issued = std::max(engine.env().unix_us(), last_issued + 1);
    r.signature = engine.identity().sign(register_statement(engine.config().network_id, r));
  };
  if (!cfg.direct) {
    sign(b);
    return route_register(std::move(b));
  }
  with_holders(key, [this, b, sign](const std::vector<Contact>& hs) mutable {
    // A lookup that found nobody else (a node still joining): register again as soon as peers are known.
    if (hs.size() <= 1 && b.subscribe)
      for (auto& [t, s] : subs)
        if (s.key == b.topic_key) s.registered_alone = true;
    // The statement names the holders it is sent to: they serve us by rank among them (pubsub/serving.h).
    // Unless they look packed near the key (ids placed there, most of them likely one attacker's): then it
    // names none, and every holder it registers at serves it.
    for (const auto& h : hs) b.holders.push_back(h.id);
    if (crowded_holders(b.topic_key, b.holders)) {
      ++st.crowded_registrations;
      b.holders.clear();
    }
    sign(b);
    send_register(b, hs);
  });
}

bool Pubsub::Impl::crowded_holders(const NodeId& key, const std::vector<NodeId>& found) const {
  if (cfg.crowded <= 0) return false;
  const size_t k = dht.config().k;
  const auto near = dht.closest_known(engine.id(), k);
  if (near.size() < k) return false;  // too few contacts to know the network's density
  return crowding(key, found, near.back().id ^ engine.id(), k) >= cfg.crowded;
}

std::vector<Contact> Pubsub::Impl::pick_holders(const NodeId& key, std::vector<Contact> found) {
  found.erase(std::remove_if(found.begin(), found.end(), [&](const Contact& c) { return c.id == engine.id(); }),
              found.end());
  found.push_back(Contact{engine.id(), engine.identity().public_key(), {}});
  std::sort(found.begin(), found.end(), [&](const Contact& a, const Contact& b) { return (a.id ^ key) < (b.id ^ key); });
  if (found.size() > cfg.holders) found.resize(std::max<size_t>(cfg.holders, 1));
  return found;
}

void Pubsub::Impl::with_holders(const NodeId& key, std::function<void(const std::vector<Contact>&)> then) {
  if (topology.closest_in_network) return then(pick_holders(key, topology.closest_in_network(key, cfg.holders + 1)));
  if (const auto* cached = cached_holders(key)) return then(*cached);
  auto [wait, first] = finding.try_emplace(key);
  size_t waiting = 0;
  for (const auto& [k, w] : finding) waiting += w.size();
  if (waiting >= kMaxWaiting) {
    ++st.holder_waits_refused;
    if (first) finding.erase(wait);
    return;
  }
  wait->second.push_back(std::move(then));
  if (!first) return;
  ++st.holder_lookups;
  dht.closest(key, scope.bind<std::vector<Contact>>([this, key](std::vector<Contact> found) {
    auto picked = pick_holders(key, std::move(found));
    if (holders.size() >= kMaxHolderCache) {
      // Drop the older half: a publisher of more topics than the cache holds looks them up again.
      std::vector<TimePoint> ages;
      for (const auto& [k, h] : holders) ages.push_back(h.found);
      std::nth_element(ages.begin(), ages.begin() + ages.size() / 2, ages.end());
      const TimePoint cut = ages[ages.size() / 2];
      std::erase_if(holders, [&](const auto& kv) { return kv.second.found <= cut; });
    }
    // Only a set with another node in it is kept: alone, the next call looks again.
    if (picked.size() > 1) holders[key] = Holders{picked, engine.now()};
    auto waiters = std::move(finding[key]);
    finding.erase(key);
    for (auto& then : waiters) then(picked);
  }));
}

void Pubsub::Impl::send_register(const RegisterBody& body, const std::vector<Contact>& hs) {
  RegisterBody copy = body;
  copy.kind = UpdateKind::kReplica;
  copy.endpoint.reset();  // from the subscriber itself: each holder sees our address
  const Bytes bytes = encode_register(copy);
  const RpcOptions opts{cfg.route_timeout, cfg.route_attempts};
  for (const auto& h : hs) {
    if (h.id == engine.id()) {
      apply_held(body, h, true);
      continue;
    }
    ++st.updates_sent;
    engine.request(scope, h, Method::kQuasarUpdate, bytes, [](RpcResult&&) {}, opts);
  }
}

const std::vector<Contact>* Pubsub::Impl::cached_holders(const NodeId& key) const {
  auto it = holders.find(key);
  return it != holders.end() && engine.now() - it->second.found < cfg.refresh ? &it->second.contacts : nullptr;
}

bool Pubsub::Impl::holders_known(const NodeId& key) const {
  return topology.closest_in_network || cached_holders(key);
}

void Pubsub::Impl::send_event(const NotifyBody& event) {
  const NodeId key = dht_key(event.topic);
  // Holders not known yet: the event also takes the greedy route at once, so the lookup's round trips are
  // not added to its latency. The route's terminal is usually the closest holder and delivers what it holds;
  // the holders reached directly afterwards deliver too (subscribers keep the first copy).
  if (!holders_known(key)) {
    ++st.events_routed_ahead;
    route_event(event);
  }
  NotifyBody ev = event;
  ev.kind = NotifyKind::kServe;  // "deliver to the subscribers you serve among these holders"
  ev.ttl = 0;
  with_holders(key, [this, key, ev](const std::vector<Contact>& hs) mutable {
    ev.publishers.clear();
    for (const auto& h : hs) ev.publishers.push_back(h.id);
    // Holders packed near the key: name none, so every holder serves every subscriber it holds.
    if (crowded_holders(key, ev.publishers)) {
      ++st.crowded_events;
      ev.publishers.clear();
    }
    const Bytes bytes = encode_notify(ev);
    const RpcOptions opts{cfg.route_timeout, cfg.route_attempts};
    for (const auto& h : hs) {
      if (h.id == engine.id()) {
        holder_serve(ev);
        continue;
      }
      ++st.notifies_sent;
      engine.request(scope, h, Method::kQuasarNotify, bytes, [](RpcResult&&) {}, opts);
    }
  });
}

bool Pubsub::Impl::admissible(const NodeId& id) {
  if (id_puzzle_ok(id, engine.config().network_id, dht.config().id_puzzle_bits)) return true;
  engine.drops().add(DropReason::kIdPuzzle);
  return false;
}

bool Pubsub::Impl::signed_and_fresh(const RegisterBody& b) {
  const uint64_t now_us = engine.env().unix_us();
  const auto us = [](Duration d) { return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()); };
  if (b.issued_us > now_us + us(kRegistrationSkew) || b.issued_us + us(lease()) < now_us) return false;
  return Identity::verify(b.subscriber, register_statement(engine.config().network_id, b), b.signature);
}

void Pubsub::Impl::on_register(RegisterBody&& r, const Contact& from) {
  // The hop from the subscriber itself gives its endpoint (as we see it); later hops carry it.
  if (r.subscriber == from.key) r.endpoint = from.endpoint;
  if (!r.endpoint) {
    ++st.malformed;
    return;
  }
  if (!admissible(r.subscriber_id())) {
    ++st.registrations_puzzle;
    return;
  }
  if (!signed_and_fresh(r)) {
    ++st.registrations_forged;
    engine.drops().add(DropReason::kForgedRegistration);
    return;
  }
  if (r.kind == UpdateKind::kReplica) return hold_register(r, false);
  ++r.hops;
  route_register(std::move(r));
}

void Pubsub::Impl::route_register(RegisterBody body) {
  auto cands = std::make_shared<std::vector<Contact>>();
  if (body.hops < static_cast<uint32_t>(cfg.ttl)) *cands = next_hops(body.topic_key);
  auto bytes = std::make_shared<Bytes>(encode_register(body));
  route_step(Method::kQuasarUpdate, bytes, cands, 0, [this, body] { hold_register(body, true); });
}

void Pubsub::Impl::apply_held(const RegisterBody& body, const Contact& subscriber, bool self) {
  auto it = held.find(body.topic_key);
  if (it == held.end()) {
    if (!body.subscribe) return;  // nothing held to undo
    if (held.size() >= cfg.max_held_topics) {
      ++st.held_rejected;
      return;
    }
    it = held.emplace(body.topic_key, SubscriberList{}).first;
  }
  if (!body.subscribe && !it->second.find(subscriber.id)) return;  // nothing held to undo
  // The lease runs from when the statement was issued (a replay cannot extend it).
  const uint64_t now_us = engine.env().unix_us();
  const auto age = std::chrono::microseconds(body.issued_us < now_us ? now_us - body.issued_us : 0);
  SubscriberList::Entry e{subscriber, body.issued_us, engine.now() + lease() - age, body.subscribe, self, body.holders};
  switch (it->second.apply(e, cfg.max_subscribers_per_topic)) {
    case SubscriberList::Result::kDisplaced:
      ++st.subscribers_displaced;
      [[fallthrough]];
    case SubscriberList::Result::kApplied:
      if (body.subscribe) ++st.registrations_held;
      break;
    case SubscriberList::Result::kStale: ++st.registrations_stale; break;
    case SubscriberList::Result::kFull:
      ++st.held_rejected;
      engine.drops().add(DropReason::kPrefixLimit);
      break;
  }
  if (it->second.size() == 0) held.erase(it);
}

void Pubsub::Impl::verify_then_hold(const RegisterBody& body) {
  const Contact claimed{body.subscriber_id(), body.subscriber, *body.endpoint};
  auto it = held.find(body.topic_key);
  const SubscriberList::Entry* known = it == held.end() ? nullptr : it->second.find(claimed.id);
  const auto slot = std::make_pair(body.topic_key, claimed.id);
  // One ping at a time per (topic, subscriber); the newest statement received meanwhile is the one applied.
  const auto newer = [&](std::map<std::pair<NodeId, NodeId>, RegisterBody>::iterator v) {
    if (body.issued_us > v->second.issued_us) v->second = body;
  };
  if (!body.subscribe) {
    // Undoes a held subscription, or one being verified; nothing is kept for a subscriber never held here.
    if (auto v = verifying.find(slot); v != verifying.end()) newer(v);
    if (known) apply_held(body, known->contact, false);
    return;
  }
  // Renewals from the endpoint already proven need no new proof.
  if (known && known->contact.endpoint == claimed.endpoint) return apply_held(body, known->contact, false);
  if (auto v = verifying.find(slot); v != verifying.end()) return newer(v);
  if (verifying.size() >= kMaxVerifying) {
    ++st.registrations_unverified;
    return;
  }
  verifying.emplace(slot, body);
  engine.request(scope, claimed, Method::kPing, {}, [this, endpoint = claimed.endpoint, slot](RpcResult&& r) {
    auto v = verifying.find(slot);
    if (v == verifying.end()) return;
    const RegisterBody newest = std::move(v->second);
    verifying.erase(v);
    if (!r.ok() || r.from.key != newest.subscriber) {
      ++st.registrations_unverified;
      return;
    }
    // The newest statement, when it came with the endpoint just proven (another is proven on its renewal).
    if (newest.subscribe && newest.endpoint == endpoint) apply_held(newest, r.from, false);
  }, RpcOptions{cfg.route_timeout, cfg.route_attempts});
}

void Pubsub::Impl::hold_register(const RegisterBody& body, bool replicate) {
  const bool self = body.subscriber == engine.identity().public_key();
  if (self) {
    apply_held(body, Contact{engine.id(), body.subscriber, {}}, true);
  } else {
    verify_then_hold(body);
  }
  if (!replicate || cfg.replicas <= 1) return;
  RegisterBody copy = body;
  copy.kind = UpdateKind::kReplica;
  if (self) copy.endpoint.reset();  // from the subscriber itself: the replica sees our address
  Bytes bytes = encode_register(copy);
  RpcOptions opts{cfg.route_timeout, cfg.route_attempts};
  size_t sent = 0;
  for (const auto& c : closest_known(body.topic_key, cfg.replicas)) {
    if (sent + 1 >= cfg.replicas) break;
    if (c.id == engine.id()) continue;
    ++sent;
    ++st.updates_sent;
    engine.request(scope, c, Method::kQuasarUpdate, bytes, [](RpcResult&&) {}, opts);
  }
}

void Pubsub::Impl::route_event(NotifyBody ev) {
  const NodeId key = dht_key(ev.topic);
  ev.kind = NotifyKind::kRoute;
  ev.publishers.clear();
  auto cands = std::make_shared<std::vector<Contact>>();
  if (ev.ttl > 0) {
    *cands = next_hops(key);
    ev.ttl -= 1;
  }
  auto bytes = std::make_shared<Bytes>(encode_notify(ev));
  st.notifies_sent += cands->empty() ? 0 : 1;
  route_step(Method::kQuasarNotify, bytes, cands, 0, [this, ev = std::move(ev)] { event_terminal(ev); });
}

void Pubsub::Impl::event_terminal(const NotifyBody& ev) {
  if (cfg.direct) {
    // The route ran ahead of the publisher's holder lookup: deliver what we hold, once; the publisher itself
    // reaches the other holders. Its own copy is still served here (kHeld stays clear): a subscriber whose
    // registration was still being verified when the route arrived is held by then.
    if (seen.test_and_set(ev.id, kRouteEnd, engine.now())) holder_deliver(ev, {});
    return;
  }
  // Deliver what we hold, then let the other holders we know serve the subscribers we do not hold (routing
  // tables that have not converged can end registrations and events at different nodes near the key).
  NotifyBody h = ev;
  h.kind = NotifyKind::kHolder;
  h.ttl = 0;
  h.publishers = holder_deliver(ev, {});
  if (h.publishers.size() > limits.max_holder_list) h.publishers.resize(limits.max_holder_list);
  Bytes bytes = encode_notify(h);
  RpcOptions opts{cfg.route_timeout, cfg.route_attempts};
  size_t sent = 0;
  for (const auto& c : closest_known(dht_key(ev.topic), cfg.replicas)) {
    if (sent + 1 >= cfg.replicas) break;
    if (c.id == engine.id()) continue;
    ++sent;
    ++st.notifies_sent;
    engine.request(scope, c, Method::kQuasarNotify, bytes, [](RpcResult&&) {}, opts);
  }
}

namespace {
// The active, unexpired subscribers of a held list, in a deterministic order (by subscriber id).
std::vector<std::pair<NodeId, const SubscriberList::Entry*>> active_by_id(const SubscriberList& held, TimePoint now) {
  std::vector<std::pair<NodeId, const SubscriberList::Entry*>> list;
  for (const auto& [id, h] : held.entries())
    if (h.active && h.expires > now) list.push_back({id, &h});
  std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return list;
}
}  // namespace

std::vector<NodeId> Pubsub::Impl::holder_deliver(const NotifyBody& ev, const std::vector<NodeId>& skip) {
  std::vector<NodeId> served;
  auto it = held.find(dht_key(ev.topic));
  if (it == held.end() || it->second.size() == 0) return served;
  NotifyBody d = ev;
  d.kind = NotifyKind::kDeliver;
  d.ttl = 0;
  d.publishers.clear();
  Bytes bytes = encode_notify(d);
  const TimePoint now = engine.now();
  std::unordered_set<NodeId> skipped(skip.begin(), skip.end());
  const auto list = active_by_id(it->second, now);
  for (const auto& [id, h] : list) {
    served.push_back(id);
    if (!skipped.count(id)) send_delivery(bytes, d, *h);
  }
  return served;
}

void Pubsub::Impl::holder_serve(const NotifyBody& ev) {
  auto it = held.find(dht_key(ev.topic));
  if (it == held.end() || it->second.size() == 0) return;
  NotifyBody d = ev;
  d.kind = NotifyKind::kDeliver;
  d.ttl = 0;
  d.publishers.clear();
  const Bytes bytes = encode_notify(d);
  const HolderSet named(ev.publishers.begin(), ev.publishers.end());
  const TimePoint now = engine.now();
  const auto list = active_by_id(it->second, now);
  for (const auto& [id, h] : list) {
    if (h->self || serves(ev.id, engine.id(), id, h->holders, named, cfg.serving))
      send_delivery(bytes, d, *h);
    else
      ++st.serve_skipped;
  }
}

void Pubsub::Impl::send_delivery(const Bytes& bytes, const NotifyBody& d, const SubscriberList::Entry& h) {
  ++st.holder_deliveries;
  if (h.self) return deliver_local(d);
  ++st.notifies_sent;
  engine.request(scope, h.contact, Method::kQuasarNotify, bytes, [](RpcResult&&) {}, RpcOptions{cfg.route_timeout, cfg.route_attempts});
}

void Pubsub::Impl::expire_held() {
  const TimePoint now = engine.now();
  for (auto it = held.begin(); it != held.end();) {
    it->second.expire(now);
    it = it->second.size() == 0 ? held.erase(it) : std::next(it);
  }
}

void Pubsub::Impl::renew_registrations() {
  last_renew = engine.now();
  std::vector<NodeId> keys;
  for (const auto& [t, s] : subs) keys.push_back(s.key);
  for (const auto& k : keys) register_topic(k, true);
}

}  // namespace storjnet
