// Dht::Impl: the DHT's state and protocol logic (RPC handlers, routing-table upkeep, lookups, stores,
// maintenance), behind the public Dht in include/storjnet/dht.h. Internal: included by src/dht/dht.cc only
// (it holds file-local constants), which adds the public operations on top.
#pragma once
#include "storjnet/dht.h"

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "dht/codec.h"
#include "dht/dial_back.h"
#include "dht/newcomer_check.h"
#include "dht/punch.h"
#include "dht/relay.h"
#include "dht/lookup.h"
#include "dht/routing_table.h"
#include "dht/signed_value.h"
#include "dht/store_rate.h"
#include "dht/vote.h"
#include "dht/value_store.h"
#include "engine/engine.h"

namespace storjnet {

using namespace dht;

namespace {
constexpr size_t kRecentLookups = 1024;
constexpr auto kSnapshotEvery = std::chrono::minutes(5);
constexpr auto kPutRetryDelay = 500ms;
constexpr auto kRecheckAfter = std::chrono::minutes(10);

uint64_t to_us(Duration d) { return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()); }

// How Impl::lookup runs a lookup beyond its target. must_query: contacts asked whatever their distance;
// seeds: how many of the table's closest contacts to start from (0: k); paths: disjoint paths; settle: end
// once the paths agree (LookupParams); owner (value lookups): only values signed by this node id count, a
// node answering with anyone else's answers as if it held none.
struct LookupOptions {
  std::vector<Contact> must_query = {};
  size_t seeds = 0;
  size_t paths = 1;
  bool settle = true;
  std::optional<NodeId> owner = std::nullopt;
};
}  // namespace

struct Dht::Impl {
  Engine& engine;
  DhtConfig cfg;
  std::unique_ptr<DhtStorage> storage;
  RoutingTable table;
  ValueStore values;
  StoreRate store_rate;
  DhtStats stats;
  std::deque<LookupStats> recent;
  std::unordered_map<int, bool> pinging;              // buckets with a liveness ping in flight
  std::unordered_map<NodeId, TimePoint> republish_at;  // held keys -> next holder republish
  std::unordered_map<NodeId, StoredValue> originals;   // values we published (re-put every original_republish)
  // Evicted contacts, probed now and then with backoff: a healed partition or a restarted peer comes back.
  struct Grave {
    Contact contact;
    TimePoint next_probe{};
    Duration backoff{};
  };
  std::vector<Grave> graveyard;
  static constexpr size_t kGraveyard = 64;
  TimerId maintenance;
  TimePoint last_snapshot{};
  NewcomerCheck newcomers;  // request senders pinged before they enter the table
  std::unique_ptr<DialBack> dial_back;  // nullptr when cfg.dial_back is off
  std::unique_ptr<Punch> punch;         // nullptr when cfg.punch is off
  std::unique_ptr<Relay> relay;         // nullptr when cfg.relay is off (made by Dht::Dht: it puts and gets)
  // Every RPC, timer and continuation of the DHT (Engine::Scope): ended first when the Dht is destroyed.
  Engine::Scope scope;

  Impl(Engine& e, DhtConfig c, std::unique_ptr<DhtStorage> s)
      : engine(e), cfg(c), storage(std::move(s)), table(e.id(), c.k, admission(c, e.config().network_id)),
        values(*storage, cfg), store_rate(c.store_rate),
        newcomers(e, table, cfg, [this](const Contact& c) { on_contact(c, true); }), scope(e.scope()) {
    if (!table.puzzle_ok({e.id(), {}, {}}))
      throw std::invalid_argument("this node's id does not solve the network's id puzzle (" +
                                  std::to_string(c.id_puzzle_bits) + " bits): create it with Identity::generate");
    engine.set_on_contact([this](const Contact& c, bool answered) { on_contact(c, answered); });
    engine.set_handler(Method::kFindNode, [this](const IncomingRequest& q, const Reply& r) { on_find_node(q, r); });
    engine.set_handler(Method::kFindValue, [this](const IncomingRequest& q, const Reply& r) { on_find_value(q, r); });
    engine.set_handler(Method::kStore, [this](const IncomingRequest& q, const Reply& r) { on_store(q, r); });
    for (Method m : {Method::kFindNode, Method::kFindValue, Method::kStore}) engine.set_rate_limited(m);
    for (Method m : {Method::kFindNode, Method::kFindValue}) engine.set_padded(m);
    // Values held from an earlier run get republish times; the saved routing table is reloaded by bootstrap.
    TimePoint now = engine.now();
    storage->for_each([&](const StoredValue& v) {
      republish_at[v.key] = now + jittered(cfg.republish_interval);
      if (v.original) originals[v.key] = v;
    });
    last_snapshot = now;
    if (cfg.dial_back) dial_back = std::make_unique<DialBack>(engine, table, cfg);
    if (cfg.punch)
      punch = std::make_unique<Punch>(
          engine, table, cfg, [this] { return dial_back && dial_back->reachable(); },
          [this](const NodeId& id, std::function<void(std::vector<Contact>)> done) {
            lookup(id, false, false, [done = std::move(done)](LookupResult res) { done(std::move(res.closest)); });
          });
    schedule_maintenance();
  }

  uint32_t network() const { return engine.config().network_id; }

  // A value from the network we may keep or return: signed by its owner. (Storing nodes also bound its
  // version by their clock; a getter does not, or a getter whose clock runs slow would refuse every fresh value.)
  bool acceptable(const StoredValue& v) {
    if (verify_value(v, network())) return true;
    ++stats.bad_signatures;
    engine.drops().add(DropReason::kDhtBadValue);
    return false;
  }

  ~Impl() {
    // The user callbacks of operations in flight run now, with their cancelled value (Once, in dht.cc).
    scope.end();
    relay.reset();
    punch.reset();
    engine.set_on_contact(nullptr);
    for (Method m : {Method::kFindNode, Method::kFindValue, Method::kStore}) engine.set_handler(m, nullptr);
  }

  Duration jittered(Duration d) {
    // +-10%: holders of the same value do not republish in lockstep.
    auto span = d.count() / 5;
    return Duration(d.count() - span / 2 + (span > 0 ? static_cast<int64_t>(engine.env().random_below(span)) : 0));
  }

  // ------------------------------------------------------------ contact admission (Sybil resistance)

  static RoutingTable::Admission admission(const DhtConfig& c, uint32_t network_id) {
    return {network_id, c.id_puzzle_bits, c.max_per_prefix_bucket, c.max_per_prefix_table};
  }

  // Contacts learned from a peer's answer: those whose id fails the puzzle are dropped (and counted).
  void admit_learned(std::vector<Contact>& contacts) {
    size_t refused = std::erase_if(contacts, [&](const Contact& c) { return !table.puzzle_ok(c); });
    stats.contacts_refused_puzzle += refused;
    engine.drops().add(DropReason::kIdPuzzle, refused);
  }

  // ------------------------------------------------------------ routing table upkeep

  void on_contact(const Contact& c, bool answered) {
    if (punch) punch->heard(c);
    if (relay) relay->heard(c);
    if (!answered && !engine.address_proven(c.endpoint, c.key) && !table.find(c.id)) {
      // No verifying ping for a contact the table would refuse anyway.
      if (auto refused = table.refusal(c)) return count_refusal(*refused);
      return newcomers.check(c);
    }
    auto r = table.seen(c, engine.now());
    count_refusal(r);
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

  void count_refusal(RoutingTable::Seen r) {
    if (r == RoutingTable::Seen::kRefusedPuzzle) {
      ++stats.contacts_refused_puzzle;
      engine.drops().add(DropReason::kIdPuzzle);
    } else if (r == RoutingTable::Seen::kRefusedPrefix) {
      ++stats.contacts_refused_prefix;
      engine.drops().add(DropReason::kPrefixLimit);
    }
  }

  // Sends a DHT request; a timeout counts against the contact (evicted after max_failures in a row).
  void rpc(const Contact& to, Method m, Bytes body, std::function<void(std::optional<Bytes>)> cb) {
    engine.request(scope, to, m, body, [this, to, cb = std::move(cb)](RpcResult&& r) {
      if (r.status == RpcStatus::kTimeout && table.failed(to.id, cfg.max_failures)) evicted(to);
      cb(r.ok() ? std::optional<Bytes>(std::move(r.payload)) : std::nullopt);
    }, RpcOptions{cfg.rpc_timeout, cfg.rpc_attempts});
  }

  Duration maintenance_period() const {
    Duration period = std::min({cfg.republish_interval, cfg.bucket_refresh, cfg.expire_after}) / 8;
    return std::max<Duration>(period, 100ms);
  }

  void evicted(const Contact& c) {
    ++stats.contacts_evicted;
    if (graveyard.size() >= kGraveyard) graveyard.erase(graveyard.begin());
    graveyard.push_back({c, engine.now() + maintenance_period(), maintenance_period()});
  }

  void probe_graveyard() {
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

  // The n contacts an answer for `target` names. With dial-back, confirmed contacts first (docs/protocol.md
  // 5.1); but a contact whose id is the target itself is named whatever its confirmation: the asker wants that
  // very node (to reach it, punching or relaying if need be).
  std::vector<Contact> answer_contacts(const NodeId& target, size_t n) const {
    if (!dial_back) return table.closest(target, n);
    auto out = table.closest_answer(target, n);
    if (out.empty() || out.front().id != target)
      if (auto exact = table.find(target)) {
        out.insert(out.begin(), *exact);
        if (out.size() > n) out.pop_back();
      }
    return out;
  }

  // Contacts we may tell `to` about: never private or loopback addresses to a peer on a public address.
  std::vector<Contact> shareable(const NodeId& target, const Contact& to) {
    auto out = answer_contacts(target, cfg.k + 1);
    bool public_peer = !to.endpoint.is_private_or_loopback();
    std::erase_if(out, [&](const Contact& c) {
      return c.id == to.id || (public_peer && c.endpoint.is_private_or_loopback());
    });
    if (out.size() > cfg.k) out.resize(cfg.k);
    return out;
  }

  // ------------------------------------------------------------ handlers

  void on_find_node(const IncomingRequest& q, const Reply& r) {
    auto target = decode_id_request(q.payload);
    if (!target) return r.error("malformed find_node");
    r.ok(encode_contacts(shareable(*target, q.from)));
  }

  void on_find_value(const IncomingRequest& q, const Reply& r) {
    auto key = decode_id_request(q.payload);
    if (!key) return r.error("malformed find_value");
    FindValueResponse resp;
    resp.value = values.get(*key);
    if (!resp.value) resp.contacts = shareable(*key, q.from);
    r.ok(encode_find_value_response(resp));
  }

  void on_store(const IncomingRequest& q, const Reply& r) {
    if (!store_rate.allow(q.from.id, engine.now())) {
      ++stats.stores_rate_limited;
      return r.error("store rate exceeded");
    }
    auto v = decode_store(q.payload);
    if (!v) return r.error("malformed store");
    auto refuse = [&](const char* why) {
      ++stats.stores_rejected;
      engine.drops().add(DropReason::kDhtStoreRefused);
      r.error(why);
    };
    uint64_t now_us = engine.env().unix_us();
    if (v->version > now_us + to_us(cfg.max_future_skew)) return refuse("version in the future");
    if (v->version + to_us(cfg.expire_after) < now_us) return refuse("value expired");
    // Cheap refusals before the signature check; a value held byte for byte was verified on arrival.
    auto held = values.get(v->key);
    if (held && held->owner != v->owner) {
      ++stats.stores_rejected;
      return r.ok(encode_bool(false));
    }
    if (!(held && same_signed_value(*held, *v)) && !acceptable(*v)) {
      ++stats.stores_rejected;
      return r.error("bad signature");
    }
    v->stored_at_us = now_us;
    v->original = false;
    std::optional<Endpoint::Prefix> block;  // public senders are charged per address block, as in the routing table
    if (!q.from.endpoint.is_private_or_loopback() && !q.from.endpoint.is_unspecified()) block = q.from.endpoint.prefix();
    switch (values.store(*v, q.from.id, block)) {
      case ValueStore::Result::kStored:
      case ValueStore::Result::kSame:
        ++stats.stores_accepted;
        // Someone just republished this key to us: our own republish can wait a full interval.
        republish_at[v->key] = engine.now() + jittered(cfg.republish_interval);
        return r.ok(encode_bool(true));
      case ValueStore::Result::kHeldNewer:
      case ValueStore::Result::kOtherOwner: ++stats.stores_rejected; return r.ok(encode_bool(false));
      case ValueStore::Result::kTooLarge: return refuse("value too large (max 65536 bytes)");
      case ValueStore::Result::kFull: return refuse("storage full");
      case ValueStore::Result::kQuota: return refuse("per-peer storage quota exceeded");
      case ValueStore::Result::kPrefixQuota: return refuse("per-prefix storage quota exceeded");
      case ValueStore::Result::kWriteFailed:
        ++stats.storage_write_failures;
        return r.error("storage write failed");
    }
  }

  // ------------------------------------------------------------ lookups

  // seeds: how many of the table's closest contacts to start from (0: k). A seed that fails is replaced by
  // the next one, so a retry with more seeds gets past a region of the table that is all unreachable.
  // paths: disjoint paths (S/Kademlia). Puts and gets use cfg.disjoint_paths; table upkeep (join, refresh,
  // holder republish) and find use one: they carry no value a liar could hide, and the table's admission
  // rules bound what a liar can insert.
  void lookup(const NodeId& target, bool want_value, bool stop_on_target, std::function<void(LookupResult)> done,
              LookupOptions o = {}) {
    ++stats.lookups;
    int b = table.bucket_of(target);
    if (b >= 0) table.mark_refreshed(b, engine.now());
    const size_t paths = o.paths, seeds = o.seeds;
    LookupParams p{engine.id(), target, want_value, stop_on_target, cfg.k, cfg.alpha, paths,
                   std::move(o.must_query), o.settle};
    if (want_value && paths > 1) {
      p.settle_within = holder_radius();
      p.settle_values = 2;
    }
    QueryFn query = [this, want_value, target, owner = o.owner](const Contact& to, QueryDone qd) {
      Method m = want_value ? Method::kFindValue : Method::kFindNode;
      rpc(to, m, encode_id_request(target), [this, want_value, target, owner, qd = std::move(qd)](std::optional<Bytes> body) {
        if (!body) return qd(std::nullopt);
        QueryResponse resp;
        if (want_value) {
          auto fv = decode_find_value_response(*body, target);
          if (!fv) return qd(std::nullopt);
          resp.contacts = std::move(fv->contacts);
          if (fv->value && (!owner || fv->value->publisher() == *owner) && acceptable(*fv->value))
            resp.value = std::move(fv->value);
        } else {
          auto cs = decode_contacts(*body);
          if (!cs) return qd(std::nullopt);
          resp.contacts = std::move(*cs);
        }
        admit_learned(resp.contacts);
        qd(std::move(resp));
      });
    };
    Lookup::start(p, table.closest(target, seeds ? seeds : cfg.k), std::move(query), [this] { return engine.now(); },
                  [this, done = std::move(done)](LookupResult res) {
                    stats.lookup_rpcs += res.stats.rpcs;
                    ++stats.lookups_completed;
                    recent.push_back(res.stats);
                    if (recent.size() > kRecentLookups) recent.pop_front();
                    done(std::move(res));
                  });
  }

  // How far from a key its holders (its k closest nodes) are expected to be: as far as our k-th closest
  // contact is from us (the network's density seen from here). nullopt while the table holds fewer than k.
  std::optional<NodeId> holder_radius() const {
    auto near = table.closest(engine.id(), cfg.k);
    if (near.size() < cfg.k) return std::nullopt;
    return near.back().id ^ engine.id();
  }

  struct StoreTally {
    size_t acks = 0, refused = 0;  // true answers; false answers (another owner's or a newer value held)
  };
  // Stores `v` on `targets`: first_ack(acks) at the first acknowledgement, all_done(tally) after every
  // store answered or timed out.
  void store_on(const std::vector<Contact>& targets, const StoredValue& v, std::function<void(size_t)> first_ack,
                std::function<void(StoreTally)> all_done) {
    struct State {
      size_t left;
      StoreTally tally;
      bool told = false;
    };
    auto state = std::make_shared<State>(State{targets.size(), {}});
    Bytes body = encode_store(v);
    if (targets.empty()) {
      if (all_done) all_done({});
      return;
    }
    for (auto& t : targets) {
      rpc(t, Method::kStore, body, [state, first_ack, all_done](std::optional<Bytes> resp) {
        auto answer = resp ? decode_bool(*resp) : std::nullopt;
        if (answer) ++(*answer ? state->tally.acks : state->tally.refused);
        if (state->tally.acks > 0 && !state->told && first_ack) {
          state->told = true;
          first_ack(state->tally.acks);
        }
        if (--state->left == 0 && all_done) all_done(state->tally);
      });
    }
  }

  // True when a lookup shows us among the k closest to key: it must be complete (k answers, or fewer with
  // no candidate lost), since a lookup that lost nodes to loss or death proves nothing about distance.
  bool self_among_closest(const NodeId& key, const LookupResult& res) const {
    if (res.closest.size() >= cfg.k) return (engine.id() ^ key) < (res.closest.back().id ^ key);
    return !res.closest.empty() && res.failed == 0;
  }

  // ------------------------------------------------------------ maintenance

  void schedule_maintenance() {
    maintenance = engine.schedule(scope, maintenance_period(), [this] {
      maintain();
      schedule_maintenance();
    });
  }

  void maintain() {
    TimePoint now = engine.now();
    values.expire(engine.env().unix_us());
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

  void republish(const NodeId& key) {
    auto v = values.get(key);
    if (!v) {
      republish_at.erase(key);
      return;
    }
    lookup(key, false, false, [this, v = *v](LookupResult res) {
      store_on(res.closest, v, nullptr, nullptr);
    });
  }

  // The node `id` as it answered a lookup of its id, or nullopt; at most find_timeout.
  // The target as it answered a lookup; with `named`, else as an answer named it (a NATed node may not answer
  // strangers: its contact is still worth a request, which hole punching may carry, docs/protocol.md 5.2).
  void find_online(const NodeId& id, std::function<void(std::optional<Contact>)> cb, bool named = false) {
    auto done = std::make_shared<bool>(false);
    auto shared_cb = std::make_shared<std::function<void(std::optional<Contact>)>>(std::move(cb));
    auto timer = std::make_shared<TimerId>();
    *timer = engine.schedule(scope, cfg.find_timeout, [done, shared_cb] {
      if (*done) return;
      *done = true;
      (*shared_cb)(std::nullopt);
    });
    lookup(id, false, true, [this, done, shared_cb, timer, named, id](LookupResult res) {
      if (*done) return;
      *done = true;
      engine.cancel(*timer);
      // A request to a target resolved this way may need a punch: its neighbourhood names the rendezvous.
      if (named && punch && !res.target) punch->note_neighbourhood(id, res.closest);
      (*shared_cb)(res.target || !named ? res.target : res.target_named);
    });
  }

  // Lookups of a random id in every bucket that holds fewer than k contacts, from bucket 0 down to the bucket
  // of our k-th closest contact. The buckets below that one hold only ids nearer to us than our k-th closest:
  // a lookup of our own id has just asked our closest nodes for them, so a refresh there finds nothing new
  // (most of them hold fewer than k because fewer than k such nodes exist).
  void refresh_neighbourhood() {
    int last = table.deepest_bucket() - 1;
    auto near = table.closest(engine.id(), cfg.k);
    if (near.size() == cfg.k) last = std::min(last, table.bucket_of(near.back().id));
    for (int b = 0; b <= last; ++b)
      if (table.bucket(static_cast<size_t>(b)).size() < cfg.k) refresh_bucket(b);
  }

  // A lookup of a random id in bucket b's range. If nodes joined together, every contact near that range
  // may share our ignorance of it (all on our side of bit b); so also ask two random contacts from
  // shallower buckets, who sit on the other side of an earlier bit and see the range from outside.
  void refresh_bucket(int b) {
    std::vector<Contact> vantage;
    for (int shallow = b - 1; shallow >= 0 && vantage.size() < 2; --shallow) {
      auto& es = table.bucket(static_cast<size_t>(shallow));
      if (!es.empty()) vantage.push_back(es[engine.env().random_below(es.size())].contact);
    }
    lookup(random_id_in_bucket(b), false, false, [](LookupResult) {}, {.must_query = std::move(vantage)});
  }

  NodeId random_id_in_bucket(int b) {
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

  // ------------------------------------------------------------ operations

  struct PutState {
    StoredValue value;
    std::function<void(const PutResult&)> cb;
    TimePoint deadline;
    PutResult result;
  };

  void put_value(const StoredValue& v, std::function<void(const PutResult&)> cb) {
    ++stats.puts;
    originals[v.key] = v;
    put_attempt(std::make_shared<PutState>(PutState{v, std::move(cb), engine.now() + cfg.put_timeout, {}}));
  }

  // One lookup and store round of a put; another after kPutRetryDelay while no replica acknowledged.
  void put_attempt(std::shared_ptr<PutState> st) {
    ++st->result.attempts;
    // A retry starts from more of the table: its closest contacts may all be unreachable (a partition).
    size_t seeds = cfg.k * static_cast<size_t>(st->result.attempts);
    lookup(st->value.key, false, false, [this, st](LookupResult res) {
      const StoredValue& v = st->value;
      st->result.lookup = res.stats;
      // We hold (and serve) our own value only when we are among its k closest; otherwise a later put
      // would leave a stale copy here that no republish reaches.
      size_t local = 0;
      auto held = values.get(v.key);
      if (held && held->owner != v.owner) return put_done(st, 0, "the key holds another owner's value");
      if (self_among_closest(v.key, res)) {
        auto r = values.store(v, engine.id());
        if (r == ValueStore::Result::kWriteFailed) ++stats.storage_write_failures;
        local = r == ValueStore::Result::kStored || r == ValueStore::Result::kSame;
        if (local) republish_at[v.key] = engine.now() + jittered(cfg.republish_interval);
      } else if (held && ValueStore::newer(v, *held)) {
        values.erase(v.key);
      }
      store_on(res.closest, v, [this, st, local](size_t acks) { put_done(st, acks + local, {}); },
               [this, st](StoreTally t) {
                 if (st->result.ok) return;
                 if (t.refused > 0) return put_done(st, 0, "refused: the replicas hold another owner's or a newer value");
                 if (engine.now() + kPutRetryDelay >= st->deadline)
                   return put_done(st, 0, "no node among the k closest acknowledged the store");
                 ++stats.put_retries;
                 engine.schedule(scope, kPutRetryDelay, [this, st] { put_attempt(st); });
               });
    }, {.seeds = seeds, .paths = cfg.disjoint_paths});
  }

  // Answers a put once: ok with `acks` when error is empty.
  void put_done(const std::shared_ptr<PutState>& st, size_t acks, std::string error) {
    if (!st->cb) return;
    st->result.ok = error.empty();
    st->result.stored_on = acks;
    st->result.error = std::move(error);
    auto cb = std::move(st->cb);
    st->cb = nullptr;
    cb(st->result);
  }

  // every_owner: a full lookup (dht_get_all), every owner found; otherwise the lookup settles once its paths
  // agree, and the k closest answering nodes vote.
  // owner: only that publisher's values count (Dht::get with an owner).
  void get_all(const NodeId& key, bool every_owner, std::optional<NodeId> owner,
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
};

Dht::Dht(Engine& engine, DhtConfig config, std::unique_ptr<DhtStorage> storage)
    : impl_(std::make_unique<Impl>(engine, config, std::move(storage))) {
  Impl& d = *impl_;
  if (!d.cfg.relay) return;
  d.relay = std::make_unique<Relay>(
      engine, d.table, d.cfg, [&d] { return d.dial_back && d.dial_back->reachable(); },
      [this](const std::string& key, Bytes value, std::function<void(bool)> done) {
        put(key, value, [done = std::move(done)](const PutResult& r) { done(r.ok); });
      },
      [this](const std::string& key, const NodeId& owner, std::function<void(std::optional<Bytes>)> cb) {
        get(key, owner, [cb = std::move(cb)](GetResult r) { cb(std::move(r.value)); });
      });
  if (d.punch) d.punch->set_on_started([r = d.relay.get()](const Contact& to) { r->punch_started(to); });
}

}  // namespace storjnet
