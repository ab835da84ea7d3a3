// Dht::Impl's routing-table upkeep: admitting the contacts it hears from, evicting the dead and probing them
// again later, refreshing buckets, and the periodic maintenance (holder and original republish, snapshots).
#include "dht/dht_impl.h"

namespace storjnet {

void Dht::Impl::on_contact(const Contact& c, bool answered) {
  if (punch) punch->heard(c);
  if (relay) relay->heard(c);
  if (upgrade) upgrade->heard(c);
  if (!answered && !engine.address_proven(c.endpoint, c.key))
    if (auto held = table.find(c.id); held && held->endpoint.family != c.endpoint.family && held->alt != c.endpoint) {
      if (held->key == c.key) addresses.claimed(c);  // a second address enters once the node answered there
      return;
    }
  if (!answered && !engine.address_proven(c.endpoint, c.key) && !table.find(c.id)) {
    // No verifying ping for a contact the table would refuse anyway.
    if (auto refused = table.refusal(c)) return count_refusal(*refused);
    addresses.early(c);  // a datagram from its other family may come before it enters
    return newcomers.check(c);
  }
  auto r = table.seen(c, engine.now());
  count_refusal(r);
  if (r == RoutingTable::Seen::kAdded) addresses.added(c);
  if (r == RoutingTable::Seen::kAdded && dial_back) dial_back->check(c);
  if (r != RoutingTable::Seen::kFull) return;
  int b = table.bucket_of(c.id);
  if (pinging[b]) return;
  // Every entry heard from within quiet_after is good: the newcomer waits in the replacement cache.
  auto oldest = table.oldest_in_bucket_of(c.id, engine.now() - cfg.quiet_after);
  if (!oldest) return;
  pinging[b] = true;
  engine.ping(scope, *oldest, [this, b, old = *oldest](std::optional<NodeId> id) {
    pinging[b] = false;
    if (!id) {
      table.remove(old.id);  // promotes the newest waiting contact
      evicted(old);
    }
  }, RpcOptions{cfg.rpc_timeout, cfg.rpc_attempts});
}

void Dht::Impl::count_refusal(RoutingTable::Seen r) {
  if (r == RoutingTable::Seen::kRefusedPuzzle) {
    ++stats.contacts_refused_puzzle;
    engine.drops().add(DropReason::kIdPuzzle);
  } else if (r == RoutingTable::Seen::kRefusedPrefix) {
    ++stats.contacts_refused_prefix;
    engine.drops().add(DropReason::kPrefixLimit);
  }
}

void Dht::Impl::rpc(const Contact& to, Method m, Bytes body, std::function<void(std::optional<Bytes>)> cb,
                    std::function<void()> on_slow) {
  RpcOptions o{cfg.rpc_timeout, cfg.rpc_attempts};
  o.on_slow = std::move(on_slow);
  engine.request(scope, to, m, body, [this, to, cb = std::move(cb)](RpcResult&& r) {
    if (r.status == RpcStatus::kTimeout && table.failed(to.id, cfg.max_failures)) evicted(to);
    cb(r.ok() ? std::optional<Bytes>(std::move(r.payload)) : std::nullopt);
  }, std::move(o));
}

void Dht::Impl::evicted(const Contact& c) {
  ++stats.contacts_evicted;
  if (graveyard.size() >= kGraveyard) graveyard.erase(graveyard.begin());
  graveyard.push_back({c, engine.now() + maintenance_period(), maintenance_period()});
}

void Dht::Impl::probe_graveyard() {
  TimePoint now = engine.now();
  int probes = 0;
  for (auto& g : graveyard) {
    if (g.next_probe > now || probes >= 8) continue;
    ++probes;
    g.backoff = std::min<Duration>(g.backoff * 2, std::min(cfg.bucket_refresh, cfg.republish_interval) / 4);
    g.next_probe = now + g.backoff;
    NodeId id = g.contact.id;
    engine.ping(scope, g.contact, [this, id](std::optional<NodeId> ok) {
      // On success the engine already reported the contact (back in the table); forget the grave.
      if (ok) std::erase_if(graveyard, [&](const Grave& x) { return x.contact.id == id; });
    }, RpcOptions{cfg.rpc_timeout, cfg.rpc_attempts});
  }
}

void Dht::Impl::schedule_maintenance() {
  maintenance = engine.schedule(scope, maintenance_period(), [this] {
    maintain();
    schedule_maintenance();
  });
}

void Dht::Impl::maintain() {
  TimePoint now = engine.now();
  values.expire(engine.env().unix_us());
  placements.drop_expired(now);
  neighbourhoods.drop_expired(now);
  probe_graveyard();
  if (dial_back)  // entries that entered when no helper could confirm them (or were promoted) get another check
    for (auto& c : table.due_for_check(now - kRecheckAfter, now, 8)) dial_back->check(c);
  // Holder republish: values whose time came, to the current k closest.
  std::vector<NodeId> due;
  for (auto it = republish_at.begin(); it != republish_at.end();) {
    if (it->second <= now) {
      due.push_back(it->first);
      it->second = now + jittered(cfg.republish_interval);
    }
    ++it;
  }
  for (auto& key : due) republish(key);
  // Original publisher: re-put own values with a fresh version every original_republish.
  uint64_t now_us = engine.env().unix_us();
  std::vector<StoredValue> due_originals;
  for (auto& [k, v] : originals)
    if (v.version + to_us(cfg.original_republish) <= now_us) due_originals.push_back(v);
  for (auto& v : due_originals) {
    StoredValue fresh = v;
    fresh.version = std::max(now_us, v.version + 1);
    sign_value(fresh, engine.identity(), network());
    put_value(fresh, [](const PutResult&) {});
  }
  // A node strangers cannot reach looks itself up every maintenance round: the nodes nearest its id may have
  // joined after it, and nothing else would make them learn of it (they hand out confirmed contacts first, and it
  // is not one). The lookup's requests reach them; they ping back through its NAT, which lets them in now, and
  // take it into their tables, so a lookup of its id ends where it is known: its punch rendezvous.
  if (dial_back && !dial_back->reachable()) {
    lookup(engine.id(), false, false, [](LookupResult) {});
  }
  // Idle buckets: refresh by looking up a random id in their range.
  int deepest = table.deepest_bucket();
  for (int b = 0; b <= deepest && b < static_cast<int>(RoutingTable::kBuckets); ++b) {
    if (now - table.last_refresh(b) < cfg.bucket_refresh) continue;
    table.mark_refreshed(b, now);
    refresh_bucket(b);
  }
  if (now - last_snapshot >= kSnapshotEvery) {
    last_snapshot = now;
    storage->save_contacts(table.all());
  }
}

void Dht::Impl::republish(const NodeId& key) {
  auto v = values.get(key);
  if (!v) {
    republish_at.erase(key);
    return;
  }
  lookup(key, false, false, [this, v = *v](LookupResult res) {
    store_on(res.closest, v, nullptr, nullptr);
  });
}

void Dht::Impl::refresh_neighbourhood() {
  const size_t fill = std::min(cfg.join_bucket_fill, cfg.k);
  if (fill == 0) return;
  int last = table.deepest_bucket() - 1;
  auto near = table.closest(engine.id(), cfg.k);
  if (near.size() == cfg.k) last = std::min(last, table.bucket_of(near.back().id));
  ++stats.join_refresh_runs;
  refresh_from(0, last, fill);
}

void Dht::Impl::refresh_from(int b, int last, size_t fill) {
  while (b <= last && table.bucket(static_cast<size_t>(b)).size() >= fill) ++b;
  if (b > last) {
    ++stats.join_refresh_runs_done;
    return;
  }
  refresh_bucket(b, fill, [this, b, last, fill] { refresh_from(b + 1, last, fill); });
}

void Dht::Impl::refresh_bucket(int b, size_t fill, std::function<void()> done) {
  std::vector<Contact> vantage;
  for (int shallow = b - 1; shallow >= 0 && vantage.size() < 2; --shallow) {
    auto& es = table.bucket(static_cast<size_t>(shallow));
    if (!es.empty()) vantage.push_back(es[engine.env().random_below(es.size())].contact);
  }
  LookupOptions o{.must_query = std::move(vantage)};
  // A join's refresh is there to give the bucket enough contacts for lookups (join_bucket_fill: its answers and
  // the newcomers that asked us meanwhile); the lookups of others fill it on (refresh_neighbourhood).
  if (fill) o.enough = [this, b, fill] { return table.bucket(static_cast<size_t>(b)).size() >= fill; };
  lookup(random_id_in_bucket(b), false, false, [done = std::move(done)](LookupResult) {
    if (done) done();
  }, std::move(o));
}

NodeId Dht::Impl::random_id_in_bucket(int b) {
  auto bytes = engine.id().bytes();
  std::array<uint8_t, NodeId::kSize> rnd;
  engine.env().random(rnd);
  for (size_t i = 0; i < NodeId::kBits; ++i) {
    size_t byte = i / 8;
    uint8_t mask = uint8_t(0x80 >> (i % 8));
    if (static_cast<int>(i) < b) continue;
    bool bit = static_cast<int>(i) == b ? !(bytes[byte] & mask) : (rnd[byte] & mask);
    bytes[byte] = bit ? (bytes[byte] | mask) : (bytes[byte] & ~mask);
  }
  return NodeId(bytes);
}

}  // namespace storjnet
