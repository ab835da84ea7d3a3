// Quasar (Wong & Guha, IPTPS 2008): attenuated Bloom filters exchanged with neighbours, and event
// forwarding along matching filters (Algorithm 2), else by a random walk, bounded by the TTL.
//
// Neighbours: each node picks `neighbours` random contacts of its routing table (kept while they stay in
// it) and pushes its filter to them ("out" neighbours). It keeps the filters pushed to it ("in" filters, at
// most max_in_filters). Level 0 of its filter is its own subscriptions; level i is the union of level i-1 of
// the in filters. Events go from a node to the in neighbours whose filter matches, so they flow against the
// push edges, towards subscribers. With the rendezvous on (the default), events only descend the filters and
// never walk: the rendezvous delivers what a walk or a sideways search would find (see quasar_forward).
#include <algorithm>

#include "pubsub/pubsub_impl.h"

namespace storjnet {

using namespace pubsub;

void Pubsub::Impl::choose_neighbours(bool force) {
  auto table = peers();
  std::unordered_map<NodeId, const Contact*> present;
  for (const auto& c : table)
    if (c.id != engine.id()) present.emplace(c.id, &c);
  std::vector<Contact> next;
  for (const auto& c : out) {
    if (present.count(c.id)) {
      next.push_back(c);
    } else if (in.erase(c.id)) {  // the neighbour left our routing table: drop its filter too
      ++st.stale_filters_dropped;
    }
  }
  std::vector<Contact> fresh;
  // Random picks from the table; a bounded number of draws.
  std::vector<const Contact*> pool;
  for (const auto& [id, c] : present)
    if (std::none_of(next.begin(), next.end(), [&, id = id](const Contact& o) { return o.id == id; })) pool.push_back(c);
  std::sort(pool.begin(), pool.end(), [](const Contact* a, const Contact* b) { return a->id < b->id; });
  while (next.size() < cfg.neighbours && !pool.empty()) {
    size_t i = engine.env().random_below(pool.size());
    if (admissible(pool[i]->id)) {  // a substituted topology is not filtered by the routing table
      next.push_back(*pool[i]);
      fresh.push_back(*pool[i]);
    }
    pool[i] = pool.back();
    pool.pop_back();
  }
  bool changed = next.size() != out.size() || !fresh.empty();
  out = std::move(next);
  (void)force;
  if (!changed || fresh.empty() || nothing_to_push()) return;
  if (push_timer && !(mine == pushed)) return;  // the push already scheduled reaches them
  // New neighbours get our filter now (the others have it).
  Bytes body = encode_filter({mine});
  for (const auto& c : fresh) {
    engine.notify(c, Method::kQuasarUpdate, body);
    ++st.updates_sent;
  }
}

void Pubsub::Impl::rebuild_filters() {
  std::vector<BloomFilter> next(cfg.depth, BloomFilter(cfg.filter_bits, cfg.filter_hashes));
  for (const auto& [t, s] : subs) next[0].add(s.hash);
  for (const auto& [id, f] : in)
    for (size_t l = 1; l < cfg.depth; ++l)
      if (!(f.saturated & (1u << (l - 1)))) next[l].merge(f.levels[l - 1]);
  if (next == mine) return;
  mine = std::move(next);
  schedule_push();
  // Neighbours are not kept while there is nothing to push (maintain): find them now that there is.
  if (out.size() < cfg.neighbours && !nothing_to_push()) choose_neighbours(false);
}

void Pubsub::Impl::schedule_push() {
  if (push_timer) return;
  push_timer = engine.schedule(scope, cfg.update_delay, [this] {
    push_timer = {};
    push_filters(false);
  });
}

void Pubsub::Impl::push_filters(bool refresh_all) {
  const TimePoint now = engine.now();
  if (refresh_all) last_full_push = now;
  if (!refresh_all && mine == pushed) return;
  if (refresh_all && mine == pushed && nothing_to_push()) return;  // an empty filter is not refreshed
  Bytes body = encode_filter({mine});
  for (const auto& c : out) {
    engine.notify(c, Method::kQuasarUpdate, body);
    ++st.updates_sent;
  }
  pushed = mine;
  last_push = now;
}

void Pubsub::Impl::on_filter(const Contact& from, FilterBody&& f) {
  if (!cfg.quasar || from.id == engine.id()) return;
  auto it = in.find(from.id);
  if (it == in.end()) {
    if (!admissible(from.id)) {
      ++st.filters_puzzle;
      return;
    }
    if (in.size() >= cfg.max_in_filters) {
      ++st.in_filters_rejected;
      return;
    }
    it = in.emplace(from.id, InFilter{from, {}, 0, {}}).first;
  }
  auto& slot = it->second;
  slot.from = from;
  slot.received = engine.now();
  if (slot.levels == f.levels) return;
  slot.levels = std::move(f.levels);
  slot.saturated = 0;
  for (size_t l = 0; l < slot.levels.size(); ++l)
    if (slot.levels[l].fill() > cfg.max_fill) {  // claims (nearly) every topic: matches nothing, not merged
      slot.saturated |= 1u << l;
      ++st.saturated_levels;
      engine.drops().add(DropReason::kSaturatedFilter);
    }
  rebuild_filters();
}

void Pubsub::Impl::expire_filters() {
  const TimePoint now = engine.now();
  bool removed = false;
  for (auto it = in.begin(); it != in.end();) {
    if (now - it->second.received >= cfg.filter_stale) {
      it = in.erase(it);
      ++st.stale_filters_dropped;
      removed = true;
    } else {
      ++it;
    }
  }
  if (removed) rebuild_filters();
}

int Pubsub::Impl::match_level(const std::vector<BloomFilter>& levels, const TopicHash& h) const {
  for (size_t l = 0; l < levels.size(); ++l)
    if (levels[l].contains(h)) return static_cast<int>(l);
  return -1;
}

void Pubsub::Impl::quasar_forward(NotifyBody ev, const NodeId* from, bool directed) {
  if (ev.ttl == 0 || (in.empty() && out.empty())) return;
  const TopicHash h = TopicHash::of(ev.topic);
  auto listed = [&](const NodeId& id) {
    return (from && id == *from) || id == engine.id() ||
           std::find(ev.publishers.begin(), ev.publishers.end(), id) != ev.publishers.end();
  };
  const bool subscribed = subs.count(ev.topic) > 0;
  // With the rendezvous on, Quasar is the fast path to nearby subscribers and nothing more: a directed event
  // only descends (a node that is not a subscriber forwards only to neighbours closer to a subscriber than
  // itself: their lowest matching level below its own), and nothing walks. Going sideways, back up or on a
  // random walk only re-explores the neighbourhood of subscribers already served (in small networks mostly
  // reflections of one subscriber's own filter) or searches for what the rendezvous delivers anyway, and on
  // an event loop shared by many nodes that traffic delays the rendezvous path.
  const int own = cfg.rendezvous && directed && !subscribed ? match_level(mine, h) : -1;
  std::vector<std::pair<int, const InFilter*>> matches;
  for (const auto& [id, f] : in) {
    if (listed(id)) continue;
    for (size_t l = 0; l < f.levels.size(); ++l) {
      if (f.saturated & (1u << l)) continue;  // an all-ones level attracts nothing
      if (f.levels[l].contains(h)) {
        if (own < 0 || static_cast<int>(l) < own) matches.push_back({static_cast<int>(l), &f});
        break;
      }
    }
  }
  ev.ttl -= 1;
  auto add_publisher = [&](const NodeId& id) {
    ev.publishers.push_back(id);
    if (ev.publishers.size() > cfg.max_publishers)
      ev.publishers.erase(ev.publishers.begin(), ev.publishers.end() - cfg.max_publishers);
  };
  if (!matches.empty()) {
    std::sort(matches.begin(), matches.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first < b.first : a.second->from.id < b.second->from.id;
    });
    // Gradient: only the neighbours where the topic is closest (lowest matching level).
    const int best = matches.front().first;
    matches.erase(std::find_if(matches.begin(), matches.end(), [&](const auto& m) { return m.first != best; }),
                  matches.end());
    if (matches.size() > cfg.max_fanout) {
      matches.resize(cfg.max_fanout);
      ++st.fanout_capped;
    }
    add_publisher(engine.id());
    for (const auto& [l, f] : matches) add_publisher(f->from.id);
    ev.kind = NotifyKind::kQuasar;
    Bytes body = encode_notify(ev);
    for (const auto& [l, f] : matches) {
      engine.notify(f->from, Method::kQuasarNotify, body);
      ++st.quasar_forwards;
      ++st.notifies_sent;
    }
    return;
  }
  // No filter matched. A directed event that reached a subscriber has done its job; otherwise walk on
  // (Quasar alone; with the rendezvous on, see above).
  if ((directed && subscribed) || cfg.rendezvous) return;
  std::vector<const Contact*> cands;
  for (const auto& c : out)
    if (!listed(c.id)) cands.push_back(&c);
  for (const auto& [id, f] : in)
    if (!listed(id) && std::none_of(out.begin(), out.end(), [&, id = id](const Contact& o) { return o.id == id; }))
      cands.push_back(&f.from);
  if (cands.empty()) return;
  std::sort(cands.begin(), cands.end(), [](const Contact* a, const Contact* b) { return a->id < b->id; });
  const Contact& next = *cands[engine.env().random_below(cands.size())];
  add_publisher(engine.id());
  ev.kind = NotifyKind::kWalk;
  engine.notify(next, Method::kQuasarNotify, encode_notify(ev));
  ++st.walk_forwards;
  ++st.notifies_sent;
}

}  // namespace storjnet
