// Dht::Impl's operations: lookups, stores on a lookup's closest nodes, puts with their retries, gets with
// their vote, and finding a node by its id.
#include "dht/dht_impl.h"

namespace storjnet {

void Dht::Impl::lookup(const NodeId& target, bool want_value, bool stop_on_target,
                       std::function<void(LookupResult)> done, LookupOptions o) {
  ++stats.lookups;
  int b = table.bucket_of(target);
  if (b >= 0) table.mark_refreshed(b, engine.now());
  const size_t paths = o.paths, seeds = o.seeds;
  LookupParams p{engine.id(), target, want_value, stop_on_target, cfg.k, cfg.alpha, paths,
                 std::move(o.must_query), o.settle};
  p.on_named = std::move(o.on_named);
  p.enough = std::move(o.enough);
  if (want_value && paths > 1) {
    p.settle_within = holder_radius();
    p.settle_values = 2;
  }
  p.placement = o.placement;
  p.path_answers = o.path_answers;
  p.release_slow = o.release_slow;
  p.answered = std::move(o.answered);
  // find_node asks for the answerer's dial-back verdict too: a "reachable" one spares its verdict request.
  // A put asks for marks on the contacts the answerer has not confirmed: it stores on them but need not ask them.
  // Marks in an answer to any other request are ignored.
  const bool marks = o.placement && dial_back != nullptr;
  Bytes request = want_value ? encode_id_request(target)
                             : encode_find_node_request({target, o.placement, dial_back != nullptr, marks});
  // The holders of a key answer with the very same signed value: its signature is checked once per lookup.
  auto verified = want_value ? std::make_shared<dht::VerifiedValues>() : nullptr;
  QueryFn query = [this, want_value, marks, target, owner = o.owner, request, verified](const Contact& to,
                                                                                        QueryDone qd, QuerySlow slow) {
    Method m = want_value ? Method::kFindValue : Method::kFindNode;
    rpc(to, m, request, [this, to, want_value, marks, target, owner, verified,
                         qd = std::move(qd)](std::optional<Bytes> body) {
      if (!body) return qd(std::nullopt);
      QueryResponse resp;
      if (want_value) {
        auto fv = decode_find_value_response(*body, target);
        if (!fv) return qd(std::nullopt);
        resp.contacts = std::move(fv->contacts);
        auto acceptable_here = [this](const StoredValue& v) { return acceptable(v); };
        if (fv->value && (!owner || fv->value->publisher() == *owner) && verified->check(*fv->value, acceptable_here))
          resp.value = std::move(fv->value);
      } else {
        auto a = decode_find_node_answer(*body);
        if (!a) return qd(std::nullopt);
        if (a->verdict && dial_back) dial_back->heard_verdict(to, *a->verdict);
        resp.contacts = std::move(a->contacts);
        if (marks) resp.unconfirmed = a->unconfirmed.value_or(0);
      }
      // admit_learned drops contacts: the marks follow the ones it keeps.
      std::vector<Contact> sent = resp.unconfirmed ? resp.contacts : std::vector<Contact>{};
      admit_learned(resp.contacts, target);
      if (resp.unconfirmed) resp.unconfirmed = marks_of_kept(sent, resp.unconfirmed, resp.contacts);
      qd(std::move(resp));
    }, std::move(slow));
  };
  Lookup::start(p, table.closest(target, seeds ? seeds : cfg.k), std::move(query), [this] { return engine.now(); },
                [this, done = std::move(done)](LookupResult res) {
                  stats.lookup_rpcs += res.stats.rpcs;
                  ++stats.lookups_completed;
                  recent.push_back(res.stats);
                  if (recent.size() > kRecentLookups) recent.pop_front();
                  // The last lookup ended (and its caller started none): newcomers waiting for one stop waiting.
                  if (stats.lookups == stats.lookups_completed)
                    engine.schedule(scope, Duration{}, [this] {
                      if (stats.lookups == stats.lookups_completed) newcomers.lookups_ended();
                    });
                  done(std::move(res));
                });
}

std::optional<NodeId> Dht::Impl::holder_radius() const {
  auto near = table.closest(engine.id(), cfg.k);
  if (near.size() < cfg.k) return std::nullopt;
  return near.back().id ^ engine.id();
}

StoreFn Dht::Impl::store_fn(const StoredValue& v) {
  return [this, body = encode_store(v)](const Contact& to, std::function<void(StoreAnswer)> done) {
    rpc(to, Method::kStore, body, [done = std::move(done)](std::optional<Bytes> resp) {
      done(resp ? decode_bool(*resp) : std::nullopt);
    });
  };
}

void Dht::Impl::store_on(const std::vector<Contact>& targets, const StoredValue& v,
                         std::function<void(size_t)> first_ack, std::function<void(StoreTally)> all_done,
                         size_t want) {
  StoreRun::make(store_fn(v), want ? want : targets.size(), std::move(first_ack), std::move(all_done))->place(targets);
}

bool Dht::Impl::self_among_closest(const NodeId& key, const LookupResult& res) const {
  if (res.placement.size() >= cfg.k) return (engine.id() ^ key) < (res.placement[cfg.k - 1].id ^ key);
  return !res.placement.empty() && res.failed == 0;
}

void Dht::Impl::find_online(const NodeId& id, std::function<void(std::optional<Contact>)> cb, bool named) {
  auto done = std::make_shared<bool>(false);
  auto shared_cb = std::make_shared<std::function<void(std::optional<Contact>)>>(std::move(cb));
  auto timer = std::make_shared<TimerId>();
  *timer = engine.schedule(scope, cfg.find_timeout, [done, shared_cb] {
    if (*done) return;
    *done = true;
    (*shared_cb)(std::nullopt);
  });
  auto answer = [this, done, shared_cb, timer](std::optional<Contact> c) {
    if (*done) return;
    *done = true;
    engine.cancel(*timer);
    (*shared_cb)(std::move(c));
  };
  LookupOptions o;
  if (named)
    o.on_named = [this, id, answer](const Contact& c) {
      if (punch) punch->expect_neighbourhood(id);
      // The lookup asks the target next: its own answer, with the address it answers from now, is better
      // than another node's view of it (a NAT may have moved its mapping). It gets one attempt's time.
      engine.schedule(scope, cfg.rpc_timeout / std::max(cfg.rpc_attempts, 1), [answer, c] { answer(c); });
    };
  lookup(id, false, true, [this, named, id, answer](LookupResult res) {
    // A request to the target may need a punch: the nodes closest to it are the rendezvous. Noted however
    // the lookup ended (also when the target answered), which ends the punch's wait for them.
    if (named && punch) punch->note_neighbourhood(id, res.closest);
    answer(res.target || !named ? res.target : res.target_named);
  }, std::move(o));
}

void Dht::Impl::put_value(const StoredValue& v, std::function<void(const PutResult&)> cb) {
  ++stats.puts;
  originals[v.key] = v;
  auto st = std::make_shared<PutState>();
  st->value = v;
  st->cb = std::move(cb);
  st->deadline = engine.now() + cfg.put_timeout;
  put_attempt(std::move(st));
}

void Dht::Impl::put_attempt(std::shared_ptr<PutState> st) {
  ++st->result.attempts;
  const StoredValue& v = st->value;
  if (auto held = values.get(v.key); held && !ValueStore::may_replace(v, *held))
    return put_done(st, 0, "the key holds another owner's value");
  // The stores: on the k closest the lookup finds (answered or only named: a placement answer names the key's
  // true neighbourhood), one that does not answer giving its turn to the next closest. All of them once the
  // lookup ended, none during it: a colluder told the value during the lookup squats the key's honest
  // neighbourhood with its own value before the owner's stores reach it (docs/protocol.md 10.8).
  const PlacementCache::Entry* recent = st->result.attempts == 1 ? placements.find(v.key, engine.now()) : nullptr;
  if (recent && !placement_current(v.key, recent->targets)) recent = nullptr;
  // Else, the key's neighbourhood as recent puts of other keys found it whole, under the same rules.
  std::optional<NeighbourhoodCache::Placement> near;
  if (!recent && st->result.attempts == 1) near = neighbourhoods.placement(v.key, engine.now());
  if (near && !placement_current(v.key, near->targets)) near.reset();
  const bool reused = recent != nullptr || near.has_value();
  // The placement's age: its lookup's end (for a neighbourhood, the newest region's: a stale one drops them all).
  const TimePoint used_at = recent ? recent->at : near ? near->newest : engine.now();
  auto run = StoreRun::make(store_fn(v), cfg.k, [this, st](size_t acks) { put_done(st, acks + st->local, {}); },
                            [this, st, reused, used_at, near_depth = near ? near->depth : -1](StoreTally t) {
                              const NodeId& key = st->value.key;
                              // A placement whose stores all landed is worth another put of the key soon; one
                              // that lost a store, or met a refusal, is not (nor one no newer than it). Stores
                              // lost on candidates its lookup left slow (most likely dead) were foreseen: it is
                              // remembered without them. The same goes for the region its lookup found whole;
                              // and a stale placement drops the regions around the key (those a neighbourhood's
                              // stores came from) and those holding a node that did not answer.
                              const bool foreseen = !reused && std::all_of(
                                  t.missed.begin(), t.missed.end(), [&](const NodeId& id) {
                                    return std::find(st->slow.begin(), st->slow.end(), id) != st->slow.end();
                                  });
                              const bool clean = (t.missed.empty() || foreseen) && t.refused == 0 && t.acks > 0;
                              if (!clean) {
                                const TimePoint at = reused ? used_at : st->looked_up;
                                placements.forget(key, at);
                                const int around = near_depth >= 0 ? near_depth
                                                   : st->region   ? st->region->depth
                                                                  : static_cast<int>(NodeId::kBits);
                                neighbourhoods.forget(key, around, at);
                                for (const NodeId& id : t.missed) neighbourhoods.forget(id, NodeId::kBits, at);
                              } else if (!reused) {
                                std::erase_if(st->placement, [&](const Contact& c) {
                                  return std::find(t.missed.begin(), t.missed.end(), c.id) != t.missed.end();
                                });
                                placements.remember(key, std::move(st->placement), st->self_among, st->looked_up,
                                                    engine.now());
                                // Its region holds no missed node: a clean put missed only slow ones, which
                                // the region was narrowed to leave out.
                                if (st->region) neighbourhoods.remember(std::move(*st->region), engine.now());
                              }
                              st->region.reset();
                              if (st->result.ok) return;
                              if (t.refused > 0)
                                return put_done(st, 0, "refused: the replicas hold another owner's or a newer value");
                              if (engine.now() + kPutRetryDelay >= st->deadline)
                                return put_done(st, 0, "no node among the k closest acknowledged the store");
                              ++stats.put_retries;
                              engine.schedule(scope, kPutRetryDelay, [this, st] { put_attempt(st); });
                            });
  // A put of a key we put moments ago stores on that put's placement at once, as its lookup would find the same
  // nodes (DhtConfig::placement_reuse); a retry always looks up.
  if (recent) {
    st->result.placement_reused = true;
    ++stats.placements_reused;
    return place_put(st, run, recent->targets, recent->self_among);
  }
  // So does a put whose key's neighbourhood recent puts found whole (DhtConfig::neighbourhood_reuse): we keep a
  // copy when we are nearer the key than its k-th closest there (then we lie in the subtree they came from).
  if (near) {
    st->result.placement_reused = true;
    ++stats.neighbourhoods_reused;
    const bool self_among = (engine.id() ^ v.key) < (near->targets[cfg.k - 1].id ^ v.key);
    return place_put(st, run, std::move(near->targets), self_among);
  }
  // A retry starts from more of the table: its closest contacts may all be unreachable (a partition).
  size_t seeds = cfg.k * static_cast<size_t>(st->result.attempts);
  lookup(v.key, false, false, [this, st, run](LookupResult res) {
    st->result.lookup = res.stats;
    st->self_among = self_among_closest(st->value.key, res);
    st->looked_up = engine.now();
    st->slow = std::move(res.slow);
    if (cfg.neighbourhood_reuse && cfg.placement_reuse > Duration{}) {
      std::vector<NodeId> unconfirmed = st->slow;  // the region stops short of any of them
      unconfirmed.insert(unconfirmed.end(), res.lost.begin(), res.lost.end());
      st->region = NeighbourhoodCache::region_of(st->value.key, res.placement, unconfirmed, cfg.k, st->looked_up);
    }
    if (cfg.placement_reuse > Duration{})  // what the cache keeps of it
      st->placement.assign(res.placement.begin(),
                           res.placement.begin() + std::min(res.placement.size(), placements.keep()));
    place_put(st, run, std::move(res.placement), st->self_among);
  }, {.seeds = seeds,
      .paths = cfg.disjoint_paths,
      .placement = true,
      .path_answers = kPutPathAnswers});
}

void Dht::Impl::place_put(const std::shared_ptr<PutState>& st, const std::shared_ptr<StoreRun>& run,
                          std::vector<Contact> targets, bool self_among) {
  const StoredValue& v = st->value;
  // We hold (and serve) our own value only when we are among its k closest; otherwise a later put
  // would leave a stale copy here that no republish reaches.
  st->local = 0;
  auto held = values.get(v.key);
  if (held && !ValueStore::may_replace(v, *held)) return put_done(st, 0, "the key holds another owner's value");
  if (self_among) {
    auto r = values.store(v, engine.id());
    if (r == ValueStore::Result::kWriteFailed) ++stats.storage_write_failures;
    if (r == ValueStore::Result::kReclaimed) ++stats.squats_displaced;
    st->local = r == ValueStore::Result::kStored || r == ValueStore::Result::kReclaimed ||
                r == ValueStore::Result::kSame;
    if (st->local) republish_at[v.key] = engine.now() + jittered(cfg.republish_interval);
  } else if (held && (held->owner != v.owner || ValueStore::newer(v, *held))) {  // a stale copy, or a squatter's
    values.erase(v.key);
  }
  run->place(std::move(targets));
}

bool Dht::Impl::placement_current(const NodeId& key, const std::vector<Contact>& targets) const {
  const bool short_of_k = targets.size() < cfg.k;
  for (const Contact& c : table.closest(key, cfg.k)) {
    if (!short_of_k && !((c.id ^ key) < (targets[cfg.k - 1].id ^ key))) break;  // closest first: none nearer
    // Its last request timed out: most likely the node a lookup found gone and left out of the placement. (One
    // that merely lost a datagram is left out of reused puts until it is heard from again, or the minute ends.)
    if (table.failures(c.id) > 0) continue;
    if (std::none_of(targets.begin(), targets.end(), [&](const Contact& t) { return t.id == c.id; })) return false;
  }
  return true;
}

void Dht::Impl::put_done(const std::shared_ptr<PutState>& st, size_t acks, std::string error) {
  if (!st->cb) return;
  st->result.ok = error.empty();
  st->result.stored_on = acks;
  st->result.error = std::move(error);
  auto cb = std::move(st->cb);
  st->cb = nullptr;
  cb(st->result);
}

void Dht::Impl::get_all(const NodeId& key, bool every_owner, std::optional<NodeId> owner,
                        std::function<void(GetAllResult, std::optional<StoredValue>)> cb) {
  ++stats.gets;
  lookup(key, true, false, [this, key, every_owner, owner, cb = std::move(cb)](LookupResult res) {
    auto local = values.get(key);
    if (local && owner && local->publisher() != *owner) local.reset();
    GetAllResult r;
    r.local = local.has_value();
    r.lookup = res.stats;
    const std::vector<FoundValue> counted = every_owner ? res.values : dht::voters(res);
    r.values = dht::tally(counted, local);
    std::optional<StoredValue> best;
    if (!r.values.empty()) {
      ++stats.gets_found;
      for (auto& f : counted)
        if (f.value.owner == r.values[0].owner && (!best || ValueStore::newer(f.value, *best))) best = f.value;
      if (local && local->owner == r.values[0].owner && (!best || ValueStore::newer(*local, *best))) best = local;
      // Cache the winner only when no other owner was found: a contested vote cached on an honest node
      // would make that node refuse the other owner for good (the first owner keeps a key).
      if (res.cache_target && best && r.values.size() == 1) store_on({*res.cache_target}, *best, nullptr, nullptr);
    }
    cb(std::move(r), std::move(best));
  }, {.paths = cfg.disjoint_paths, .settle = !every_owner, .owner = owner});
}

}  // namespace storjnet
