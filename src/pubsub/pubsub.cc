// Pubsub: user API, local delivery, RPC handlers and housekeeping. See pubsub_impl.h for the file split.
#include "storjnet/pubsub.h"

#include <nlohmann/json.hpp>

#include "pubsub/pubsub_impl.h"
#include "pubsub/serving.h"

namespace storjnet {

using namespace pubsub;

namespace {
bool valid_topic(const std::string& t) { return !t.empty() && t.size() <= kMaxTopic; }
}  // namespace

Pubsub::Impl::Impl(Engine& e, Dht& d, PubsubConfig c)
    : engine(e), dht(d), cfg(c), seen(c.dedupe_window, c.dedupe_max), scope(e.scope()) {
  cfg.filter_bits = BloomFilter::round_bits(cfg.filter_bits);
  cfg.filter_hashes = std::clamp<size_t>(cfg.filter_hashes, 1, 32);
  cfg.depth = std::clamp<size_t>(cfg.depth, 1, 8);
  cfg.ttl = std::clamp(cfg.ttl, 0, 1024);
  cfg.max_publishers = std::clamp<size_t>(cfg.max_publishers, 1, 1024);
  cfg.holders = std::clamp<size_t>(cfg.holders, 1, kMaxRegisterHolders);
  cfg.serving = std::max<size_t>(cfg.serving, 1);
  limits = {cfg.filter_bits, cfg.filter_hashes, cfg.depth, static_cast<uint32_t>(cfg.ttl), cfg.max_publishers};
  mine.assign(cfg.depth, BloomFilter(cfg.filter_bits, cfg.filter_hashes));
  pushed = mine;
  engine.set_handler(Method::kQuasarUpdate, [this](const IncomingRequest& r, const Reply& rep) { on_update(r, rep); });
  engine.set_handler(Method::kQuasarNotify, [this](const IncomingRequest& r, const Reply& rep) { on_notify(r, rep); });
  engine.set_rate_limited(Method::kQuasarUpdate);
  engine.set_rate_limited(Method::kQuasarNotify);
  last_full_push = last_renew = engine.now();
  arm_maintenance(cfg.maintenance);
}

Pubsub::Impl::~Impl() {
  scope.end();
  engine.set_handler(Method::kQuasarUpdate, {});
  engine.set_handler(Method::kQuasarNotify, {});
}

std::vector<Contact> Pubsub::Impl::peers() { return topology.peers ? topology.peers() : dht.peers(); }

std::vector<Contact> Pubsub::Impl::closest_known(const NodeId& target, size_t n) {
  return topology.closest_known ? topology.closest_known(target, n) : dht.closest_known(target, n);
}

EventId Pubsub::Impl::new_event_id() {
  EventId id;
  engine.env().random(id);
  return id;
}

void Pubsub::Impl::on_update(const IncomingRequest& req, const Reply& reply) {
  ++st.updates_in;
  arm_maintenance(cfg.maintenance);
  auto kind = peek_update_kind(req.payload);
  if (!kind) {
    ++st.malformed;
    return reply.error("malformed");
  }
  if (*kind == UpdateKind::kFilter) {
    FilterBody f;
    auto s = decode_filter(req.payload, limits, f);
    if (s == DecodeStatus::kWrongSize) {
      ++st.wrong_size_filters;
      return reply.error("wrong filter size");
    }
    if (s != DecodeStatus::kOk) {
      ++st.malformed;
      return reply.error("malformed");
    }
    reply.ok({});
    return on_filter(req.from, std::move(f));
  }
  RegisterBody r;
  if (decode_register(req.payload, r) != DecodeStatus::kOk) {
    ++st.malformed;
    return reply.error("malformed");
  }
  reply.ok({});
  if (cfg.rendezvous) on_register(std::move(r), req.from);
}

void Pubsub::Impl::on_notify(const IncomingRequest& req, const Reply& reply) {
  ++st.notifies_in;
  arm_maintenance(cfg.maintenance);
  NotifyBody ev;
  DecodeNotes notes;
  auto s = decode_notify(req.payload, limits, ev, &notes);
  if (notes.ttl_clamped) ++st.ttl_clamped;
  if (notes.publishers_truncated) ++st.publishers_truncated;
  if (s != DecodeStatus::kOk) {
    if (s == DecodeStatus::kTooLarge)
      ++st.too_large;
    else if (s == DecodeStatus::kBadEvent)
      ++st.bad_event_json;
    else
      ++st.malformed;
    return reply.error("malformed");
  }
  const TimePoint now = engine.now();
  // The hop is acknowledged after it is handled, so what it forwards (the next hop, the deliveries) leaves
  // before the acknowledgement.
  handle_notify(std::move(ev), req.from.id, now);
  reply.ok({});
}

void Pubsub::Impl::handle_notify(NotifyBody&& ev, const NodeId& from, TimePoint now) {
  switch (ev.kind) {
    case NotifyKind::kQuasar:
    case NotifyKind::kWalk:
      if (!cfg.quasar) return;
      deliver_local(ev);
      if (seen.test_and_set(ev.id, kQuasarSeen, now)) {
        bool directed = ev.kind == NotifyKind::kQuasar;
        quasar_forward(std::move(ev), &from, directed);
      }
      return;
    case NotifyKind::kRoute:
      if (!cfg.rendezvous) return;
      deliver_local(ev);
      if (seen.test_and_set(ev.id, kRouted, now)) route_event(std::move(ev));
      return;
    case NotifyKind::kHolder:
      if (!cfg.rendezvous) return;
      // Direct: holders are sent the event by its publisher, never told by another node whom to skip (a
      // forged "already served" list would otherwise silence an honest holder).
      if (seen.test_and_set(ev.id, kHeld, now)) holder_deliver(ev, cfg.direct ? std::vector<NodeId>{} : ev.publishers);
      return;
    case NotifyKind::kServe:
      if (!cfg.rendezvous) return;
      // Deduplicated per sender: a copy of the id sent first by another node (with another holder list)
      // does not stop the publisher's own.
      if (seen.test_and_set(per_sender(ev.id, from), kHeld, now)) holder_serve(ev);
      return;
    case NotifyKind::kDeliver:
      deliver_local(ev);
      return;
  }
}

void Pubsub::Impl::deliver_local(const NotifyBody& ev) {
  auto it = subs.find(ev.topic);
  if (it == subs.end()) {
    if (ev.kind == NotifyKind::kDeliver) ++st.not_subscribed;
    return;
  }
  if (!seen.test_and_set(content_key(ev), kDelivered, engine.now())) {
    ++st.duplicates;
    return;
  }
  ++st.delivered;
  auto& q = it->second.queue;
  if (q.size() >= cfg.max_events_per_topic) {
    q.pop_front();
    ++st.queue_overflow;
  }
  q.push_back(ev.event);
  if (on_event) on_event(ev.topic, ev.event);
}

void Pubsub::Impl::maintain() {
  maintain_timer = {};
  ++st.maintenance_runs;
  const TimePoint now = engine.now();
  seen.expire(now);
  if (cfg.quasar) {
    expire_filters();
    bool refresh = now - last_full_push >= cfg.refresh;
    if (!nothing_to_push() && (refresh || out.size() < cfg.neighbours)) choose_neighbours(refresh);
    if (refresh) push_filters(true);  // an empty filter is not refreshed (push_filters)
  }
  if (cfg.rendezvous) {
    expire_held();
    bool alone = false;
    for (auto& [t, s] : subs) alone |= s.registered_alone;
    if (now - last_renew >= cfg.refresh || (alone && !peers().empty())) renew_registrations();
  }
  arm_maintenance(maintenance_delay());
}

void Pubsub::Impl::arm_maintenance(Duration d) {
  const TimePoint at = engine.now() + d;
  if (maintain_timer && maintain_at <= at) return;
  engine.cancel(maintain_timer);
  maintain_at = at;
  maintain_timer = engine.schedule(scope, d, [this] { maintain(); });
}

Duration Pubsub::Impl::maintenance_delay() {
  // Work that needs the short tick: expiring what was seen, received or held; neighbours still to find for a
  // filter that has something to push; registrations made alone, to redo once peers appear.
  bool busy = !seen.empty() || !in.empty() || !held.empty() || !verifying.empty() ||
              (cfg.quasar && !nothing_to_push() && out.size() < cfg.neighbours);
  for (const auto& [t, s] : subs) busy |= s.registered_alone;
  if (busy) return cfg.maintenance;
  // Otherwise only the refreshes are due: filters (Quasar) and registrations (rendezvous).
  const TimePoint now = engine.now();
  TimePoint due = now + cfg.refresh;
  if (cfg.quasar) due = std::min(due, last_full_push + cfg.refresh);
  if (cfg.rendezvous) due = std::min(due, last_renew + cfg.refresh);
  return std::max(cfg.maintenance, due - now);
}

bool Pubsub::Impl::nothing_to_push() const {
  return cfg.rendezvous && std::all_of(mine.begin(), mine.end(), [](const BloomFilter& f) { return f.empty(); });
}

// ---------------------------------------------------------------------------------------------------------

Pubsub::Pubsub(Engine& engine, Dht& dht, PubsubConfig config) : impl_(std::make_unique<Impl>(engine, dht, config)) {}
Pubsub::~Pubsub() = default;

bool Pubsub::subscribe(const std::string& topic) {
  if (!valid_topic(topic)) return false;
  auto& I = *impl_;
  auto [it, fresh] = I.subs.try_emplace(topic);
  if (!fresh) return true;
  I.arm_maintenance(I.cfg.maintenance);
  it->second.hash = TopicHash::of(topic);
  it->second.key = dht_key(topic);
  if (I.cfg.quasar) I.rebuild_filters();
  if (I.cfg.rendezvous) I.register_topic(it->second.key, true);
  return true;
}

bool Pubsub::unsubscribe(const std::string& topic) {
  if (!valid_topic(topic)) return false;
  auto& I = *impl_;
  auto it = I.subs.find(topic);
  if (it == I.subs.end()) return true;
  I.arm_maintenance(I.cfg.maintenance);
  NodeId key = it->second.key;
  I.subs.erase(it);
  if (I.cfg.quasar) I.rebuild_filters();
  if (I.cfg.rendezvous) I.register_topic(key, false);
  return true;
}

std::vector<std::string> Pubsub::subscriptions() const {
  std::vector<std::string> out;
  for (const auto& [t, s] : impl_->subs) out.push_back(t);
  return out;
}

bool Pubsub::publish(const std::string& topic, std::string event_json) {
  if (!valid_topic(topic) || event_json.size() > kMaxEventJson || !nlohmann::json::accept(event_json)) return false;
  auto& I = *impl_;
  NotifyBody ev;
  ev.kind = NotifyKind::kQuasar;
  ev.id = I.new_event_id();
  ev.topic = topic;
  ev.event = std::move(event_json);
  ev.ttl = static_cast<uint32_t>(I.cfg.ttl);
  ev.publishers = {I.engine.id()};
  ++I.st.published;
  I.arm_maintenance(I.cfg.maintenance);
  I.seen.test_and_set(ev.id, Impl::kQuasarSeen | Impl::kRouted | Impl::kHeld, I.engine.now());
  I.deliver_local(ev);
  // The rendezvous first: on a shared event loop its datagrams are then handled before the Quasar fan-out,
  // so the holders' deliveries are not queued behind it.
  if (I.cfg.rendezvous) {
    if (I.cfg.direct)
      I.send_event(ev);
    else
      I.route_event(ev);
  }
  if (I.cfg.quasar) I.quasar_forward(std::move(ev), nullptr, false);
  return true;
}

std::vector<std::string> Pubsub::take_events(const std::string& topic) {
  auto it = impl_->subs.find(topic);
  if (it == impl_->subs.end()) return {};
  std::vector<std::string> out(std::make_move_iterator(it->second.queue.begin()),
                               std::make_move_iterator(it->second.queue.end()));
  it->second.queue.clear();
  return out;
}

void Pubsub::set_on_event(std::function<void(const std::string&, const std::string&)> f) {
  impl_->on_event = std::move(f);
}

void Pubsub::set_topology(PubsubTopology topology) {
  impl_->topology = std::move(topology);
  if (impl_->cfg.quasar) impl_->choose_neighbours(true);
}

PubsubStats Pubsub::stats() const {
  auto& I = *impl_;
  PubsubStats s = I.st;
  s.out_neighbours = I.out.size();
  s.in_filters = I.in.size();
  s.held_topics = I.held.size();
  s.seen_ids = I.seen.size();
  s.dedupe_evicted = I.seen.evicted();
  return s;
}

const PubsubConfig& Pubsub::config() const { return impl_->cfg; }

int Pubsub::filter_level(const std::string& topic) const {
  return impl_->match_level(impl_->mine, TopicHash::of(topic));
}

size_t Pubsub::held_subscribers(const std::string& topic) const {
  auto it = impl_->held.find(dht_key(topic));
  return it == impl_->held.end() ? 0 : it->second.active();
}

}  // namespace storjnet
