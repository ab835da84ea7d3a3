// The rendezvous improvement over Quasar: subscriptions and events both travel to the node closest to the
// topic key K = BLAKE2b-160(topic) by greedy routing over routing tables (each hop strictly closer to K, so
// no loops; each hop acknowledged, the next-closest candidate tried when one does not answer). The node
// where routing ends (the terminal) holds the topic's subscribers and copies every registration to its
// replicas-1 closest contacts; for an event it delivers to the subscribers it holds (acknowledged), then sends
// the event with the list of subscribers served to its replicas-1 closest contacts, which deliver to the
// subscribers they hold that are not on the list (the true holder may be dead, or tables not converged).
#include <algorithm>
#include <unordered_set>

#include "pubsub/pubsub_impl.h"

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
  std::weak_ptr<bool> w = alive;
  RpcOptions opts{cfg.route_timeout, cfg.route_attempts};
  engine.request(
      (*cands)[i], m, *body,
      [this, w, m, body, cands, i, on_terminal = std::move(on_terminal)](RpcResult&& r) mutable {
        if (w.expired()) return;
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
  route_register(std::move(b));
}

void Pubsub::Impl::route_register(RegisterBody body) {
  auto cands = std::make_shared<std::vector<Contact>>();
  if (body.hops < static_cast<uint32_t>(cfg.ttl)) *cands = next_hops(body.topic_key);
  auto bytes = std::make_shared<Bytes>(encode_register(body));
  route_step(Method::kQuasarUpdate, bytes, cands, 0, [this, body] { hold_register(body, true); });
}

void Pubsub::Impl::hold_register(const RegisterBody& body, bool replicate) {
  const bool self = !body.subscriber || body.subscriber->id == engine.id();
  const NodeId sub_id = self ? engine.id() : body.subscriber->id;
  if (body.subscribe) {
    auto it = held.find(body.topic_key);
    if (it == held.end()) {
      if (held.size() >= cfg.max_held_topics) {
        ++st.held_rejected;
        return;
      }
      it = held.emplace(body.topic_key, std::unordered_map<NodeId, Held>{}).first;
    }
    auto& m = it->second;
    if (!m.count(sub_id) && m.size() >= cfg.max_subscribers_per_topic) {
      ++st.held_rejected;
      return;
    }
    Held h;
    if (!self) h.contact = *body.subscriber;
    h.self = self;
    h.expires = engine.now() + 3 * cfg.refresh;
    m[sub_id] = h;
    ++st.registrations_held;
  } else if (auto it = held.find(body.topic_key); it != held.end()) {
    it->second.erase(sub_id);
    if (it->second.empty()) held.erase(it);
  }
  if (!replicate || cfg.replicas <= 1) return;
  RegisterBody copy = body;
  copy.kind = UpdateKind::kReplica;
  if (self) copy.subscriber.reset();  // "the sender": the replica learns our address as it sees it
  Bytes bytes = encode_register(copy);
  RpcOptions opts{cfg.route_timeout, cfg.route_attempts};
  size_t sent = 0;
  for (const auto& c : closest_known(body.topic_key, cfg.replicas)) {
    if (sent + 1 >= cfg.replicas) break;
    if (c.id == engine.id()) continue;
    ++sent;
    ++st.updates_sent;
    engine.request(c, Method::kQuasarUpdate, bytes, [](RpcResult&&) {}, opts);
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
    engine.request(c, Method::kQuasarNotify, bytes, [](RpcResult&&) {}, opts);
  }
}

std::vector<NodeId> Pubsub::Impl::holder_deliver(const NotifyBody& ev, const std::vector<NodeId>& skip) {
  std::vector<NodeId> served;
  auto it = held.find(dht_key(ev.topic));
  if (it == held.end() || it->second.empty()) return served;
  NotifyBody d = ev;
  d.kind = NotifyKind::kDeliver;
  d.ttl = 0;
  d.publishers.clear();
  Bytes bytes = encode_notify(d);
  RpcOptions opts{cfg.route_timeout, cfg.route_attempts};
  const TimePoint now = engine.now();
  std::unordered_set<NodeId> skipped(skip.begin(), skip.end());
  // Deterministic order (by subscriber id).
  std::vector<std::pair<NodeId, const Held*>> list;
  for (const auto& [id, h] : it->second)
    if (h.expires > now) list.push_back({id, &h});
  std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [id, h] : list) {
    served.push_back(id);
    if (skipped.count(id)) continue;
    ++st.holder_deliveries;
    if (h->self) {
      deliver_local(d);
      continue;
    }
    ++st.notifies_sent;
    engine.request(h->contact, Method::kQuasarNotify, bytes, [](RpcResult&&) {}, opts);
  }
  return served;
}

void Pubsub::Impl::expire_held() {
  const TimePoint now = engine.now();
  for (auto it = held.begin(); it != held.end();) {
    for (auto s = it->second.begin(); s != it->second.end();)
      s = s->second.expires <= now ? it->second.erase(s) : std::next(s);
    it = it->second.empty() ? held.erase(it) : std::next(it);
  }
}

void Pubsub::Impl::renew_registrations() {
  last_renew = engine.now();
  std::vector<NodeId> keys;
  for (const auto& [t, s] : subs) keys.push_back(s.key);
  for (const auto& k : keys) register_topic(k, true);
}

}  // namespace storjnet
