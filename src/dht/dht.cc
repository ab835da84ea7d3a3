// Dht: the public operations (put, get, find, stun, bootstrap, stats) over Dht::Impl (src/dht/dht_impl.h).
// See include/storjnet/dht.h.
#include "storjnet/dht.h"

#include <algorithm>

#include "common/once.h"
#include "dht/dht_impl.h"

namespace storjnet {

using namespace dht;

namespace {

// One stun walk: ask the chosen neighbours one after another until one answers.
struct StunWalk {
  std::vector<Contact> order;
  Once<std::optional<Endpoint>> cb;
};

void stun_step(Dht::Impl& d, std::shared_ptr<StunWalk> walk, size_t i) {
  if (i >= walk->order.size()) return walk->cb(std::nullopt);
  Contact to = walk->order[i];
  d.engine.stun(d.scope, to, [&d, walk, i](std::optional<Endpoint> ep) {
    if (ep) return walk->cb(ep);
    stun_step(d, walk, i + 1);
  }, RpcOptions{d.cfg.rpc_timeout, d.cfg.rpc_attempts});
}

// Looks ourselves up again after `delay`, then, if the table still holds fewer than k, refreshes as a join does
// (otherwise the join's refreshes filled the far buckets and the newcomers that joined since asked us and
// entered through their checks; refreshing again would mostly re-walk the partly filled bucket of our k-th
// closest). While such a lookup ends with fewer than k contacts in the table and some of the nodes it asked did
// not answer (a busy network, lost datagrams: not merely a small network), once more after twice the delay, up to
// kMaxRejoinDelay.
constexpr Duration kMaxRejoinDelay = std::chrono::minutes(5);
// A table that holds k or more asks its kRejoinAsks closest contacts first where our id belongs (a placement
// find_node: their k + k/4 closest, confirmed or not) and looks itself up only when an answer names a node
// nearer than our k-th closest that the table does not hold, or an ask fails: in a network that settled, a
// lookup of our own id asks k nodes to learn nothing new.
constexpr size_t kRejoinAsks = 3;

void rejoin_after(Dht::Impl& d, Duration delay);

// A join's probes (Dht::bootstrap): a find_node of our own id to each saved contact, and to each seed once its
// hello told its key. The join's lookup starts once every probe answered, failed or went slow (overdue), provided
// one answered: the contacts of a table saved a while ago are often gone, and each would hold the join for its
// whole timeout. With no answer yet it waits for the slow ones too (our own link may be what is slow). A late
// answer still counts: the engine reports its sender, which so enters the table. The saved contacts' answers
// that came before the lookup starts are handed to it (LookupParams::answered): it does not ask them again.
class JoinProbes {
 public:
  std::vector<std::pair<Contact, std::vector<Contact>>> answers;  // until the lookup takes them
  // Keeps the answer of `from` (its contacts named), and of all kept the `most` nearest `self` (a table of
  // thousands probed holds no more than that many answers at once; a probe dropped here is one the lookup may
  // ask again, as any candidate).
  void keep(const Contact& from, std::vector<Contact> named, const NodeId& self, size_t most) {
    answers.emplace_back(from, std::move(named));
    if (answers.size() <= most) return;
    auto far = std::max_element(answers.begin(), answers.end(), [&](const auto& a, const auto& b) {
      return (a.first.id ^ self) < (b.first.id ^ self);
    });
    answers.erase(far);
  }
  explicit JoinProbes(size_t n) : state_(n, kOut), unsettled_(n), out_(n) {}
  void slow(size_t i) {
    if (state_[i] != kOut) return;
    state_[i] = kSlow;
    --unsettled_;
  }
  void ended(size_t i, bool answered) {
    if (state_[i] == kEnded) return;
    if (state_[i] == kOut) --unsettled_;
    state_[i] = kEnded;
    --out_;
    answered_ += answered;
  }
  bool started() const { return started_; }
  // True once, when the lookup may start.
  bool start() {
    if (started_ || unsettled_ > 0 || (answered_ == 0 && out_ > 0)) return false;
    return started_ = true;
  }

 private:
  enum State : uint8_t { kOut, kSlow, kEnded };
  std::vector<State> state_;
  size_t unsettled_, out_, answered_ = 0;  // neither ended nor slow; not ended; ended with an answer
  bool started_ = false;
};

void rejoin_lookup(Dht::Impl& d, Duration delay) {
  ++d.stats.rejoin_lookups;
  d.lookup(d.engine.id(), false, false, [&d, delay](LookupResult res) {
    if (d.table.size() < d.cfg.k) d.refresh_neighbourhood();
    if (d.table.size() < d.cfg.k && res.failed > 0 && 2 * delay <= kMaxRejoinDelay) rejoin_after(d, 2 * delay);
  });
}

void rejoin_after(Dht::Impl& d, Duration delay) {
  d.engine.schedule(d.scope, delay, [&d, delay] {
    const NodeId self = d.engine.id();
    auto near = d.table.closest(self, d.cfg.k);
    if (near.size() < d.cfg.k) return rejoin_lookup(d, delay);
    ++d.stats.rejoin_checks;
    struct Check {
      size_t left;
      bool news = false;
    };
    const size_t asks = std::min(kRejoinAsks, near.size());  // an answer may come before the loop ends
    auto check = std::make_shared<Check>(Check{asks});
    const NodeId kth = near.back().id ^ self;
    Bytes ask = encode_find_node_request({self, true, false});
    for (size_t i = 0; i < asks; ++i)
      d.rpc(near[i], Method::kFindNode, ask, [&d, delay, check, kth, self](std::optional<Bytes> body) {
        auto a = body ? decode_find_node_answer(*body) : std::nullopt;
        if (!a) {
          check->news = true;
        } else {
          d.admit_learned(a->contacts, self);  // contacts no table of ours would hold are no news
          for (const Contact& c : a->contacts)
            if (c.id != self && (c.id ^ self) < kth && !d.table.find(c.id)) check->news = true;
        }
        if (--check->left == 0 && check->news) rejoin_lookup(d, delay);
      });
  });
}

PutResult cancelled_put() {
  PutResult r;
  r.error = "cancelled: the node stopped";
  return r;
}

}  // namespace

NodeId dht_key(std::string_view user_key) { return NodeId::hash_of(as_bytes(user_key)); }

Dht::Dht(Engine& engine, DhtConfig config, std::unique_ptr<DhtStorage> storage)
    : impl_(std::make_unique<Impl>(engine, config, std::move(storage))) {
  Impl& d = *impl_;
  if (!d.cfg.relay) return;
  d.relay = std::make_unique<Relay>(
      engine, d.table, d.cfg, [&d] { return d.dial_back && d.dial_back->reachable(); },
      [this](const std::string& key, Bytes value, std::function<void(bool)> done) {
        put(key, value, [done = std::move(done)](const PutResult& r) { done(r.ok); });
      },
      [&d](const std::string& key, const NodeId& owner, std::function<void(std::optional<OwnedValue>)> cb) {
        d.get_all(dht_key(key), false, owner, [cb = std::move(cb)](GetAllResult, std::optional<StoredValue> best) {
          if (!best) return cb(std::nullopt);
          cb(OwnedValue{std::move(best->value), best->owner, best->publisher(), best->version, 1});
        });
      });
  // Only where dial-back runs: without it no node is ever found reachable, so every node would reserve.
  d.relay->set_open([&d] { return d.dial_back && d.dial_back->open(); });
  // A single-family node in a network with nodes of the other family keeps reservations on dual-stack relays
  // (docs/protocol.md 5.3, "Families"); a relay's other address is its entry's alt, else what answers named.
  d.relay->set_families([&d] { return d.engine.env().families() != kBothFamilies && d.addresses.mixed(); },
                        [&d](const NodeId& id) -> std::optional<Endpoint> {
                          auto held = d.table.find(id);
                          if (held && held->alt.valid()) return held->alt;
                          return d.addresses.hearsay(id);
                        });
  if (!d.punch) return;
  d.punch->set_on_started([r = d.relay.get()](const Contact& to) { r->punch_started(to); });
  d.relay->set_hold([p = d.punch.get()](const NodeId& id) { return p->pending(id); });
  d.relay->set_on_relays([p = d.punch.get()](const NodeId& id, const std::vector<Contact>& relays) { p->note_relays(id, relays); });
  d.punch->set_reserved([r = d.relay.get()](const NodeId& id, Duration within) { return r->reserved(id, within); });
  if (!d.cfg.upgrade) return;
  d.upgrade = std::make_unique<Birthday>(engine, d.cfg, [&d](Endpoint::Family f) {
    return d.nat_view ? d.nat_view->view(f) : NatView::View{};
  });
  d.relay->set_on_path([u = d.upgrade.get()](const Contact& target) { u->path_works(target); });
  d.punch->set_on_sync([u = d.upgrade.get()](const IncomingRequest& q, const PunchMessage& m, const Reply& r) {
    u->on_sync(q, m, r);
  });
}

Dht::~Dht() {
  if (impl_) impl_->storage->save_contacts(impl_->table.all());
}

void Dht::bootstrap(const std::vector<Endpoint>& seeds, std::function<void(bool)> cb) {
  Impl& d = *impl_;
  Once<bool> done(std::move(cb), false);
  auto saved = d.storage->load_contacts();
  if (saved.empty() && seeds.empty()) return done(d.table.size() > 0);
  auto probes = std::make_shared<JoinProbes>(saved.size() + seeds.size());
  auto join = [&d, probes, done] {
    if (!probes->start()) return;
    if (d.table.size() == 0) return done(false);
    // Join: look ourselves up (fills the buckets near us), then refresh the farther buckets.
    d.lookup(d.engine.id(), false, false, [&d, done](LookupResult) {
      d.refresh_neighbourhood();
      // Nodes that join together see each other only partly at first: look again 5 s later.
      rejoin_after(d, 5s);
      done(d.table.size() > 0);
    }, {.release_slow = true, .answered = std::move(probes->answers)});
  };
  // A saved contact's answer is handed to the lookup; a seed's is not, and the lookup asks the seed again: in a
  // network that starts at once through one seed, that seed's table grows by the moment, and its second answer
  // names far more than its first (taking the first alone left joins with a thin table: `dht --nodes 1000`
  // then settled in 6.0 s instead of 2.0, with 43 contacts a node instead of 63). A saved contact's probe asks
  // for its dial-back verdict too, as the lookup's find_node would have (docs/protocol.md 5.1, "Verdict").
  const Bytes seed_query = encode_id_request(d.engine.id());
  const Bytes saved_query = encode_find_node_request({d.engine.id(), false, d.dial_back != nullptr, false});
  const size_t saved_probes = saved.size();
  auto ask = [&d, probes, join, seed_query, saved_query, saved_probes](size_t i, const Contact& c) {
    const Bytes& query = i < saved_probes ? saved_query : seed_query;
    d.rpc(c, Method::kFindNode, query, [&d, probes, join, i, c, saved_probes](std::optional<Bytes> body) {
      auto answer = body && i < saved_probes ? decode_find_node_answer(*body) : std::nullopt;
      if (answer && answer->verdict && d.dial_back) d.dial_back->heard_verdict(c, *answer->verdict);
      if (answer && !probes->started()) {
        d.admit_learned(answer->contacts, d.engine.id());
        probes->keep(c, std::move(answer->contacts), d.engine.id(), 2 * d.cfg.k);
      }
      probes->ended(i, body.has_value());
      join();
    }, [probes, join, i] {
      probes->slow(i);
      join();
    });
  };
  for (size_t i = 0; i < saved.size(); ++i) ask(i, saved[i]);
  for (size_t j = 0; j < seeds.size(); ++j) {
    const size_t i = saved.size() + j;
    RpcOptions o;
    o.on_slow = [probes, join, i] {
      probes->slow(i);
      join();
    };
    d.engine.hello(d.scope, seeds[j], [ask, probes, join, i](std::optional<Contact> c) {
      if (c) return ask(i, *c);
      probes->ended(i, false);
      join();
    }, o);
  }
}

void Dht::put(std::string_view key, ByteView value, std::function<void(const PutResult&)> cb) {
  Impl& d = *impl_;
  Once<const PutResult&> done(std::move(cb), cancelled_put());
  if (value.size() > kMaxValueSize) {
    PutResult r;
    r.error = "value too large: " + std::to_string(value.size()) + " bytes (max 65536)";
    return done(r);
  }
  StoredValue v;
  v.key = dht_key(key);
  v.value.assign(value.begin(), value.end());
  v.owner = d.engine.identity().public_key();
  v.version = d.engine.env().unix_us();
  if (auto held = d.values.get(v.key); held && held->owner == v.owner && held->version >= v.version)
    v.version = held->version + 1;
  if (auto mine = d.originals.find(v.key); mine != d.originals.end() && mine->second.version >= v.version)
    v.version = mine->second.version + 1;
  v.stored_at_us = v.version;
  v.original = true;
  sign_value(v, d.engine.identity(), d.network());
  d.put_value(v, std::move(done));
}

void Dht::get(std::string_view key, std::function<void(GetResult)> cb) { get(key, std::nullopt, std::move(cb)); }

void Dht::get(std::string_view key, std::optional<NodeId> owner, std::function<void(GetResult)> cb) {
  Once<GetResult> done(std::move(cb), GetResult{});
  impl_->get_all(dht_key(key), false, owner, [done](GetAllResult all, std::optional<StoredValue> best) {
    GetResult r;
    r.local = all.local;
    r.lookup = all.lookup;
    if (best) {
      r.value = std::move(best->value);
      r.owner = best->publisher();
      r.version = best->version;
    }
    done(std::move(r));
  });
}

void Dht::get_all(std::string_view key, std::function<void(GetAllResult)> cb) {
  Once<GetAllResult> done(std::move(cb), GetAllResult{});
  impl_->get_all(dht_key(key), true, std::nullopt, [done](GetAllResult all, std::optional<StoredValue>) { done(std::move(all)); });
}

void Dht::closest(const NodeId& target, std::function<void(std::vector<Contact>)> cb) {
  Impl& d = *impl_;
  Once<std::vector<Contact>> done(std::move(cb), std::vector<Contact>{});
  d.lookup(target, false, false, [done](LookupResult res) { done(std::move(res.closest)); },
           {.paths = d.cfg.disjoint_paths});
}

void Dht::find_contact(const NodeId& id, std::function<void(std::optional<Contact>)> cb) {
  Impl& d = *impl_;
  Once<std::optional<Contact>> done(std::move(cb), std::nullopt);
  if (auto c = d.table.find(id)) return done(*c);
  // No node of the lookup named it (a NATed node that tables dropped, or that answers hand out to no one): it
  // is reached through the relays it published, if it did (Relay::reach).
  d.find_online(id, [&d, id, done](std::optional<Contact> c) {
    if (c || !d.relay) return done(std::move(c));
    d.relay->reach(id, done);
  }, d.cfg.punch);
}

void Dht::find(const NodeId& id, std::function<void(std::optional<Endpoint>)> cb) {
  Impl& d = *impl_;
  if (id == d.engine.id()) return stun(std::move(cb));
  Once<std::optional<Endpoint>> done(std::move(cb), std::nullopt);
  // A routing-table entry is not proof the node is online now: always ask, via the lookup.
  d.find_online(id, [done](std::optional<Contact> c) { done(c ? std::optional(c->endpoint) : std::nullopt); });
}

void Dht::stun(std::function<void(std::optional<Endpoint>)> cb) {
  Impl& d = *impl_;
  Once<std::optional<Endpoint>> done(std::move(cb), std::nullopt);
  auto peers = d.table.all();
  if (peers.empty()) return done(std::nullopt);
  // Up to three random neighbours, one after another, until one answers.
  auto order = std::make_shared<std::vector<Contact>>();
  for (int i = 0; i < 3 && !peers.empty(); ++i) {
    size_t j = d.engine.env().random_below(peers.size());
    order->push_back(peers[j]);
    peers.erase(peers.begin() + static_cast<long>(j));
  }
  // The walk's state is owned by the one pending RPC callback only (no self-reference): it dies with the
  // scope, and its Once answers nullopt then.
  auto walk = std::make_shared<StunWalk>(StunWalk{std::move(*order), std::move(done)});
  stun_step(d, std::move(walk), 0);
}


std::vector<Contact> Dht::peers() const { return impl_->table.all(); }
size_t Dht::peer_count() const { return impl_->table.size(); }
std::vector<Contact> Dht::closest_known(const NodeId& target, size_t n) const { return impl_->table.closest(target, n); }
std::vector<Contact> Dht::handed_out(const NodeId& target) const { return impl_->answer_contacts(target, impl_->cfg.k); }
bool Dht::confirmed(const NodeId& id) const { return impl_->table.confirmed(id); }
const NodeId& Dht::id() const { return impl_->engine.id(); }
bool Dht::punched(const NodeId& id) const {
  return (impl_->punch && impl_->punch->punched(id)) || (impl_->upgrade && impl_->upgrade->upgraded(id));
}
bool Dht::lan_path(const NodeId& id) const { return impl_->punch && impl_->punch->lan_path(id); }
std::vector<NodeId> Dht::punched_ids() const {
  std::vector<NodeId> out;
  if (impl_->punch) out = impl_->punch->punched_ids();
  if (impl_->upgrade)
    for (const auto& id : impl_->upgrade->upgraded_ids())
      if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  return out;
}
const DhtConfig& Dht::config() const { return impl_->cfg; }

DhtStats Dht::stats() const {
  DhtStats s = impl_->stats;
  s.routing_contacts = impl_->table.size();
  s.stored_values = impl_->values.count();
  s.stored_bytes = impl_->values.bytes();
  s.routing_confirmed = impl_->table.confirmed_count();
  s.verify_pings = impl_->newcomers.pings();
  s.verify_spared = impl_->newcomers.spared();
  s.verify_asked = impl_->newcomers.asked();
  s.address_checks = impl_->addresses.checks();
  s.address_checks_refused = impl_->addresses.refused();
  if (impl_->dial_back) impl_->dial_back->fill(s);
  if (impl_->nat_view) impl_->nat_view->fill(s);
  if (impl_->punch) impl_->punch->fill(s);
  if (impl_->relay) impl_->relay->fill(s);
  if (impl_->upgrade) impl_->upgrade->fill(s);
  s.recent.assign(impl_->recent.begin(), impl_->recent.end());
  return s;
}

void Dht::flush() {
  impl_->storage->save_contacts(impl_->table.all());
  impl_->storage->flush();
}

}  // namespace storjnet
