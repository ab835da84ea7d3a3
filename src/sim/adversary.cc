#include "sim/adversary.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "dht/codec.h"
#include "dht/signed_value.h"
#include "node/node_internals.h"
#include "pubsub/bloom.h"
#include "pubsub/wire.h"
#include "sim/network_builder.h"
#include "sim/rng.h"
#include "storjnet/dht.h"
#include "storjnet/pubsub.h"
#include "storjnet/simulator.h"

namespace storjnet::sim {

std::optional<Attack> parse_attack(std::string_view name) {
  for (Attack a : {Attack::kNone, Attack::kEclipse, Attack::kOverwrite, Attack::kDrop, Attack::kForgeSubscribe, Attack::kAll})
    if (attack_name(a) == name) return a;
  return std::nullopt;
}

std::string attack_name(Attack a) {
  switch (a) {
    case Attack::kNone: return "none";
    case Attack::kEclipse: return "eclipse";
    case Attack::kOverwrite: return "overwrite";
    case Attack::kDrop: return "drop";
    case Attack::kForgeSubscribe: return "forge-subscribe";
    case Attack::kAll: return "all";
  }
  return "?";
}

namespace {
using namespace std::chrono_literals;
using dht::FindValueResponse;
using pubsub::RegisterBody;
using pubsub::UpdateKind;

// What an attacker does instead of the real code; an attack is a set of these.
struct Behaviour {
  bool lie = false;         // find_node / find_value answer only the attackers closest to the target
  bool vote = false;        // find_value answers the coalition's own value; overwrite stores every round
  enum class Store { kReal, kRefuse, kAckAndDrop } store = Store::kReal;
  bool drop_pubsub = false;  // registrations, replicas and events acknowledged and dropped
  bool forge = false;        // forged registrations and all-ones filters every round
};

Behaviour behaviour_of(Attack a) {
  Behaviour b;
  switch (a) {
    case Attack::kNone: break;
    case Attack::kEclipse: b.lie = true; break;
    case Attack::kOverwrite:
      b.vote = true;
      b.store = Behaviour::Store::kRefuse;
      break;
    case Attack::kDrop:
      b.lie = true;
      b.store = Behaviour::Store::kAckAndDrop;
      b.drop_pubsub = true;
      break;
    case Attack::kForgeSubscribe: b.forge = true; break;
    case Attack::kAll:
      b.lie = b.vote = b.drop_pubsub = b.forge = true;
      b.store = Behaviour::Store::kAckAndDrop;
      break;
  }
  return b;
}

std::array<uint8_t, 32> seed_bytes(uint64_t a, uint64_t b) {
  Rng rng(mix64(a, b));
  std::array<uint8_t, 32> s;
  for (size_t i = 0; i < 32; i += 8) {
    uint64_t v = rng.next();
    std::memcpy(s.data() + i, &v, 8);
  }
  return s;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

class Adversary {
 public:
  explicit Adversary(const AdversaryConfig& c) : cfg_(c), b_(behaviour_of(c.attack)), rng_(mix64(c.seed, 0xad7e5a)) {
    cfg_.node.dht.id_puzzle_bits = c.puzzle_bits;
  }

  AdversaryResult run() {
    res_.seed = cfg_.seed;
    res_.nodes = cfg_.nodes;
    SimConfig sc;
    sc.seed = cfg_.seed;
    sc.node = cfg_.node;
    sim_ = std::make_unique<Simulator>(sc);
    network_ = cfg_.node.engine.network_id;
    k_ = cfg_.node.dht.k;

    choose_attackers();
    choose_workload();
    auto placed = place_ids();
    size_t next_placed = 0;
    for (size_t i = 0; i < cfg_.nodes; ++i) {
      if (attacker_[i] && next_placed < placed.size()) sim_->add_node(cfg_.node, placed[next_placed++]);
      else sim_->add_node(cfg_.node);
    }
    measure_placement(placed);
    res_.joined = join_network(*sim_, cfg_.seed);
    sim_->run_for(5s);

    for (size_t i = 0; i < cfg_.nodes; ++i) (attacker_[i] ? members_ : honest_).push_back(i);
    for (size_t a : members_) member_contacts_.push_back(sim_->contact(a));
    arm_attackers();

    join_victim();
    subscribe();
    puts();
    sim_->run_for(cfg_.attack_time);
    gets();
    publish();
    lookup_quality();

    const auto peers = sim_->node(victim_).dht().peers();
    res_.victim_contacts = peers.size();
    for (const auto& c : peers) {
      long i = sim_->index_of(c.endpoint);
      res_.victim_honest_contacts += i >= 0 && !attacker_[static_cast<size_t>(i)];
    }
    res_.honest_contacts_ratio = peers.empty() ? 0 : double(res_.victim_honest_contacts) / double(peers.size());
    for (size_t i : honest_) {
      res_.honest_bad_signatures += sim_->node(i).dht().stats().bad_signatures;
      auto ps = sim_->node(i).pubsub().stats();
      res_.honest_registrations_forged += ps.registrations_forged;
      res_.honest_registrations_unverified += ps.registrations_unverified;
      res_.honest_held_rejected += ps.held_rejected + ps.holder_waits_refused;
      res_.honest_saturated_levels += ps.saturated_levels;
      res_.honest_crowded_registrations += ps.crowded_registrations;
      res_.honest_crowded_events += ps.crowded_events;
    }
    res_.rounds_p50 = percentile(rounds_, 0.5);
    res_.rounds_p99 = percentile(rounds_, 0.99);
    res_.trace_hash = sim_->trace_hash();
    return res_;
  }

 private:
  // ------------------------------------------------------------ setup

  void choose_attackers() {
    attacker_.assign(cfg_.nodes, false);
    size_t want = static_cast<size_t>(std::llround(cfg_.malicious * static_cast<double>(cfg_.nodes)));
    want = std::min(want, cfg_.nodes > 2 ? cfg_.nodes - 2 : 0);  // node 0 and one more stay honest
    res_.attackers = want;
    for (size_t placed = 0; placed < want;) {
      size_t i = 1 + rng_.below(cfg_.nodes - 1);
      if (!attacker_[i]) {
        attacker_[i] = true;
        ++placed;
      }
    }
  }

  void choose_workload() {
    for (size_t j = 0; j < cfg_.puts; ++j) keys_.push_back("adv-" + std::to_string(cfg_.seed) + "-" + std::to_string(j));
    for (size_t t = 0; t < cfg_.topics; ++t) topics_.push_back("adv-topic-" + std::to_string(cfg_.seed) + "-" + std::to_string(t));
    victim_identity_ = std::make_unique<Identity>(
        Identity::from_seed_solving(seed_bytes(cfg_.seed, 0x71c71d), network_, cfg_.puzzle_bits));
    targets_.push_back(victim_identity_->id());
    for (const auto& t : topics_) targets_.push_back(dht_key(t));
    for (const auto& k : keys_) targets_.push_back(dht_key(k));
  }

  // The attacker's id search: 2^(puzzle + placement) key generations; the valid ids closest to each target
  // go to it, up to k per target.
  std::vector<Identity> place_ids() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
    res_.ids_per_target = targets_.empty() ? 0 : std::min(k_, res_.attackers / targets_.size());
    if (res_.ids_per_target == 0) return {};
    const int bits = std::min(cfg_.puzzle_bits + cfg_.placement_bits, 26);
    const uint64_t tries = uint64_t{1} << std::max(bits, 0);
    std::vector<std::pair<NodeId, uint64_t>> pool;  // valid id, try
    for (uint64_t t = 0; t < tries; ++t) {
      auto seed = seed_bytes(cfg_.seed ^ 0xa77ac6e5, t);
      PublicKey pk;
      std::array<uint8_t, 64> sk;
      crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
      NodeId id = Identity::id_of(pk);
      if (id_puzzle_ok(id, network_, cfg_.puzzle_bits)) pool.push_back({id, t});
    }
    std::vector<bool> used(pool.size(), false);
    std::vector<Identity> out;
    std::vector<std::pair<NodeId, size_t>> by_distance;
    for (const NodeId& target : targets_) {
      by_distance.clear();
      for (size_t p = 0; p < pool.size(); ++p)
        if (!used[p]) by_distance.push_back({pool[p].first ^ target, p});
      size_t take = std::min(res_.ids_per_target, by_distance.size());
      std::partial_sort(by_distance.begin(), by_distance.begin() + static_cast<long>(take), by_distance.end());
      for (size_t j = 0; j < take; ++j) {
        size_t p = by_distance[j].second;
        used[p] = true;
        out.push_back(Identity::from_seed(seed_bytes(cfg_.seed ^ 0xa77ac6e5, pool[p].second)));
        placed_target_.push_back(target);
      }
    }
    return out;
  }

  void measure_placement(const std::vector<Identity>& placed) {
    double sum = 0;
    for (size_t j = 0; j < placed.size(); ++j) sum += placed[j].id().common_prefix_bits(placed_target_[j]);
    res_.placed_prefix_bits = placed.empty() ? 0 : sum / double(placed.size());
    double honest = 0;
    for (const NodeId& t : targets_) {
      int best = 0;
      for (size_t i = 0; i < cfg_.nodes; ++i)
        if (!attacker_[i]) best = std::max(best, sim_->contact(i).id.common_prefix_bits(t));
      honest += best;
    }
    res_.honest_prefix_bits = targets_.empty() ? 0 : honest / double(targets_.size());
  }

  size_t random_honest() { return honest_[rng_.below(honest_.size())]; }

  // ------------------------------------------------------------ the coalition

  // Up to k attackers closest to `target`, the requester excluded.
  std::vector<Contact> lie(const NodeId& target, const NodeId& requester) {
    std::vector<std::pair<NodeId, size_t>> d;
    d.reserve(member_contacts_.size());
    for (size_t m = 0; m < member_contacts_.size(); ++m)
      if (member_contacts_[m].id != requester) d.push_back({member_contacts_[m].id ^ target, m});
    size_t n = std::min(k_, d.size());
    std::partial_sort(d.begin(), d.begin() + static_cast<long>(n), d.end());
    std::vector<Contact> out;
    for (size_t j = 0; j < n; ++j) out.push_back(member_contacts_[d[j].second]);
    ++res_.lies_told;
    return out;
  }

  // The k honest nodes closest to `key` (the coalition's shared view of the network), cached.
  const std::vector<Contact>& honest_closest(const NodeId& key) {
    auto it = closest_cache_.find(key);
    if (it != closest_cache_.end()) return it->second;
    std::vector<std::pair<NodeId, size_t>> d;
    for (size_t i : honest_) d.push_back({sim_->contact(i).id ^ key, i});
    if (victim_joined_) d.push_back({sim_->contact(victim_).id ^ key, victim_});
    size_t n = std::min(k_, d.size());
    std::partial_sort(d.begin(), d.begin() + static_cast<long>(n), d.end());
    std::vector<Contact> out;
    for (size_t j = 0; j < n; ++j) out.push_back(sim_->contact(d[j].second));
    return closest_cache_.emplace(key, std::move(out)).first->second;
  }

  bool is_member_key(const PublicKey& pk) const {
    return std::any_of(member_contacts_.begin(), member_contacts_.end(), [&](const Contact& c) { return c.key == pk; });
  }

  // A store reached an attacker: the coalition remembers the honest value and signs its own for the key.
  void learn(const StoredValue& v) {
    if (is_member_key(v.owner)) return;
    auto [it, fresh] = honest_values_.try_emplace(v.key, v);
    if (!fresh && v.version > it->second.version) it->second = v;
    if (!fresh) return;
    StoredValue own;
    own.key = v.key;
    own.value = as_bytes_copy("{\"forged\":true}");
    own.version = engine(members_[0]).env().unix_us();
    dht::sign_value(own, engine(members_[0]).identity(), network_);
    own_values_.emplace(v.key, std::move(own));
  }

  static Bytes as_bytes_copy(std::string_view s) { return Bytes(s.begin(), s.end()); }
  Engine& engine(size_t i) { return NodeInternals::engine(sim_->node(i)); }

  void arm_attackers() {
    for (size_t a : members_) arm(a);
    if (!members_.empty() && (b_.vote || b_.forge)) {
      pubsub::FilterBody f;
      const auto& pc = cfg_.node.pubsub;
      f.levels.assign(pc.depth, pubsub::BloomFilter(pc.filter_bits, pc.filter_hashes));
      for (auto& l : f.levels)
        for (size_t i = 0; i < l.bits(); ++i) l.set_bit(i);
      all_ones_ = pubsub::encode_filter(f);
      schedule_round();
    }
  }

  void arm(size_t a) {
    Engine& e = engine(a);
    Node& node = sim_->node(a);
    if (b_.lie) {
      e.set_handler(Method::kFindNode, [this](const IncomingRequest& q, const Reply& r) {
        auto req = dht::decode_find_node_request(q.payload);
        if (!req) return r.error("malformed find_node");
        r.ok(dht::encode_contacts(lie(req->target, q.from.id)));
      });
    }
    if (b_.lie || b_.vote) {
      e.set_handler(Method::kFindValue, [this, &node](const IncomingRequest& q, const Reply& r) {
        auto key = dht::decode_id_request(q.payload);
        if (!key) return r.error("malformed find_value");
        FindValueResponse resp;
        if (auto it = own_values_.find(*key); b_.vote && it != own_values_.end()) resp.value = it->second;
        if (!resp.value && b_.lie) resp.contacts = lie(*key, q.from.id);
        if (!resp.value && !b_.lie) {
          resp.contacts = node.dht().closest_known(*key, k_ + 1);
          std::erase_if(resp.contacts, [&](const Contact& c) { return c.id == q.from.id; });
          if (resp.contacts.size() > k_) resp.contacts.resize(k_);
        }
        r.ok(dht::encode_find_value_response(resp));
      });
    }
    if (b_.store != Behaviour::Store::kReal) {
      e.set_handler(Method::kStore, [this](const IncomingRequest& q, const Reply& r) {
        auto v = dht::decode_store(q.payload);
        if (!v) return r.error("malformed store");
        learn(*v);
        r.ok(dht::encode_bool(b_.store == Behaviour::Store::kAckAndDrop));
      });
    }
    if (b_.drop_pubsub) {
      for (Method m : {Method::kQuasarUpdate, Method::kQuasarNotify})
        e.set_handler(m, [](const IncomingRequest&, const Reply& r) { r.ok({}); });
    }
  }

  // ------------------------------------------------------------ active attacks, every round

  void schedule_round() {
    engine(members_[0]).schedule(cfg_.attack_round, [this] {
      round();
      schedule_round();
    });
  }

  void round() {
    if (b_.vote) overwrite();
    if (b_.forge) forge();
  }

  void overwrite() {
    const uint64_t now_us = engine(members_[0]).env().unix_us();
    for (const auto& [key, honest] : honest_values_) {
      StoredValue tampered = honest;  // the owner's signature over other bytes
      tampered.value.push_back('!');
      StoredValue future = honest;    // a newer version the owner never signed
      future.version = std::max(honest.version, now_us) + 20'000'000;
      const Bytes bodies[] = {dht::encode_store(own_values_.at(key)), dht::encode_store(tampered), dht::encode_store(future)};
      size_t from = members_[static_cast<size_t>(key.bytes()[0]) * members_.size() / 256];
      for (const auto& to : honest_closest(key))
        for (const auto& body : bodies) {
          ++res_.attacker_stores;
          engine(from).request(to, Method::kStore, body, [](RpcResult&&) {});
        }
    }
  }

  RegisterBody forged_statement(size_t forger, size_t subscriber, const NodeId& topic_key, bool subscribe,
                                UpdateKind kind) {
    RegisterBody b;
    b.kind = kind;
    b.topic_key = topic_key;
    b.subscribe = subscribe;
    b.hops = 1;
    b.subscriber = sim_->contact(subscriber).key;
    b.endpoint = sim_->endpoint(subscriber);
    b.issued_us = engine(forger).env().unix_us();
    b.signature = engine(forger).identity().sign(pubsub::register_statement(network_, b));
    return b;
  }

  void forge() {
    const NodeId spam = dht_key("adv-spam-" + std::to_string(cfg_.seed));
    for (size_t t = 0; t < subscribers_.size(); ++t) {
      const NodeId key = dht_key(topics_[t]);
      for (size_t s : subscribers_[t]) {
        size_t forger = members_[rng_.below(members_.size())];
        Bytes unsub = pubsub::encode_register(forged_statement(forger, s, key, false, UpdateKind::kReplica));
        const auto& holders = honest_closest(key);
        for (size_t h = 0; h < holders.size() && h < (cfg_.node.pubsub.direct ? cfg_.node.pubsub.holders : cfg_.node.pubsub.replicas); ++h) {
          ++res_.forged_registrations_sent;
          engine(forger).request(holders[h], Method::kQuasarUpdate, unsub, [](RpcResult&&) {});
        }
        auto routed = forged_statement(forger, s, key, false, UpdateKind::kRegister);
        auto unwanted = forged_statement(forger, s, spam, true, UpdateKind::kRegister);
        for (const auto* body : {&routed, &unwanted}) {
          ++res_.forged_registrations_sent;
          engine(forger).request(sim_->contact(random_honest()), Method::kQuasarUpdate, pubsub::encode_register(*body),
                                 [](RpcResult&&) {});
        }
      }
    }
    for (size_t a : members_)
      for (size_t n = 0; n < cfg_.node.pubsub.neighbours; ++n) {
        ++res_.filters_sent;
        engine(a).notify(sim_->contact(random_honest()), Method::kQuasarUpdate, all_ones_);
      }
  }

  // ------------------------------------------------------------ honest workload

  void join_victim() {
    victim_ = sim_->add_node(cfg_.node, *victim_identity_);
    attacker_.push_back(false);
    auto done = std::make_shared<bool>(false);  // a callback after we stopped waiting must not dangle
    sim_->node(victim_).dht().bootstrap({sim_->endpoint(random_honest())}, [done](bool) { *done = true; });
    sim_->run_until([&] { return *done; }, 60s);
    sim_->run_for(6s);  // the join's second look, 5 s later
    victim_joined_ = true;
    closest_cache_.clear();
  }

  void subscribe() {
    subscribers_.resize(topics_.size());
    for (size_t t = 0; t < topics_.size(); ++t) {
      std::set<size_t> chosen;
      size_t want = std::min(cfg_.subscribers_per_topic, honest_.size());
      while (chosen.size() < want) chosen.insert(random_honest());
      subscribers_[t].assign(chosen.begin(), chosen.end());
      for (size_t s : chosen) {
        sim_->node(s).pubsub().subscribe(topics_[t]);
        if (observed_.insert(s).second)
          sim_->node(s).pubsub().set_on_event([this, s](const std::string&, const std::string& ev) {
            delivered_.insert({s, ev});
          });
      }
    }
    sim_->run_for(5s);
  }

  void puts() {
    for (size_t i = 0; i < cfg_.putters; ++i) chosen_putters_.push_back(random_honest());
    putter_.resize(keys_.size());
    values_.resize(keys_.size());
    acked_.assign(keys_.size(), false);
    for (size_t start = 0; start < keys_.size(); start += kBatch) {
      size_t end = std::min(keys_.size(), start + kBatch);
      auto left = std::make_shared<size_t>(end - start);
      for (size_t j = start; j < end; ++j) {
        putter_[j] = chosen_putters_.empty() ? random_honest() : chosen_putters_[j % chosen_putters_.size()];
        values_[j] = as_bytes_copy("{\"honest\":" + std::to_string(j) + "}");
        ++res_.puts;
        sim_->node(putter_[j]).dht().put(keys_[j], values_[j], [this, j, left](const PutResult& r) {
          --*left;
          acked_[j] = r.ok;
          res_.puts_ok += r.ok;
          res_.puts_reused += r.placement_reused;
          rounds_.push_back(r.lookup.rounds);
        });
      }
      sim_->run_until([&] { return *left == 0; }, 60s);
    }
    res_.put_ok_ratio = res_.puts ? double(res_.puts_ok) / double(res_.puts) : 0;
  }

  // Each acked key is read twice by a random honest node other than its putter: first naming its owner
  // (Dht::get with an owner: what a reader who knows whose key it reads does), then without (the vote).
  void gets() {
    read_all(true, res_.owned_gets);
    read_all(false, res_.gets);
  }

  void read_all(bool name_owner, GetCounts& c) {
    for (size_t start = 0; start < keys_.size(); start += kBatch) {
      size_t end = std::min(keys_.size(), start + kBatch);
      auto left = std::make_shared<size_t>(0);
      for (size_t j = start; j < end; ++j) {
        if (!acked_[j]) continue;
        size_t from;
        do from = random_honest();
        while (from == putter_[j] && honest_.size() > 1);
        ++*left;
        ++c.gets;
        const NodeId owner = sim_->contact(putter_[j]).id;
        auto named = name_owner ? std::optional<NodeId>(owner) : std::nullopt;
        sim_->node(from).dht().get(keys_[j], named, [this, j, owner, left, &c](GetResult r) {
          --*left;
          rounds_.push_back(r.lookup.rounds);
          if (!r.value) ++c.missing;
          else if (*r.value == values_[j] && r.owner == owner) ++c.ok;
          else ++c.forged;
        });
      }
      sim_->run_until([&] { return *left == 0; }, 60s);
    }
    c.ok_ratio = c.gets ? double(c.ok) / double(c.gets) : 0;
  }

  void publish() {
    std::vector<std::pair<size_t, std::string>> expected;
    uint64_t seq = 0;
    for (size_t e = 0; e < cfg_.events_per_topic; ++e)
      for (size_t t = 0; t < topics_.size(); ++t) {
        std::string ev = "{\"seq\":" + std::to_string(seq++) + "}";
        sim_->node(random_honest()).pubsub().publish(topics_[t], ev);
        for (size_t s : subscribers_[t]) expected.push_back({s, ev});
        sim_->run_for(20ms);
      }
    res_.events_expected = expected.size();
    auto count = [&] {
      size_t n = 0;
      for (const auto& x : expected) n += delivered_.count(x);
      return n;
    };
    sim_->run_until([&] { return count() == expected.size(); }, 15s);
    sim_->run_for(1s);
    res_.events_delivered = count();
    res_.pubsub_delivery = expected.empty() ? 0 : double(res_.events_delivered) / double(expected.size());
  }

  // After the measurement (so it changes none of the figures above): how close the holder lookups of the topics'
  // subscribers came to the network's true k closest nodes, and how many attackers they returned.
  void lookup_quality() {
    // Shared with the lookups' callbacks: one still pending when the wait below gives up must not touch this
    // frame.
    struct Tally {
      size_t left = 0, found = 0, attackers = 0, recalled = 0;
    };
    auto tally = std::make_shared<Tally>();
    const size_t k = std::min(k_, attacker_.size());
    size_t lookups = 0, true_attackers = 0;
    for (size_t t = 0; t < topics_.size(); ++t) {
      const NodeId key = dht_key(topics_[t]);
      std::vector<std::pair<NodeId, size_t>> d;
      for (size_t i = 0; i < attacker_.size(); ++i) d.push_back({sim_->contact(i).id ^ key, i});
      std::partial_sort(d.begin(), d.begin() + static_cast<long>(k), d.end());
      auto truth = std::make_shared<std::set<NodeId>>();
      for (size_t j = 0; j < k; ++j) {
        truth->insert(sim_->contact(d[j].second).id);
        true_attackers += attacker_[d[j].second];
      }
      for (size_t s : subscribers_[t]) {
        ++tally->left;
        ++lookups;
        sim_->node(s).dht().closest(key, [this, truth, tally](std::vector<Contact> cs) {
          --tally->left;
          tally->found += cs.size();
          for (const auto& c : cs) {
            long i = sim_->index_of(c.endpoint);
            tally->attackers += i >= 0 && attacker_[static_cast<size_t>(i)];
            tally->recalled += truth->count(c.id);
          }
        });
      }
    }
    sim_->run_until([&] { return tally->left == 0; }, 60s);
    if (!lookups || !tally->found) return;
    res_.holder_lookup_attacker_ratio = double(tally->attackers) / double(tally->found);
    res_.true_closest_attacker_ratio = double(true_attackers) / double(topics_.size() * k);
    res_.holder_lookup_recall = double(tally->recalled) / double(lookups * k);
  }

  static constexpr size_t kBatch = 20;

  AdversaryConfig cfg_;
  Behaviour b_;
  Rng rng_;
  AdversaryResult res_;
  uint32_t network_ = 0;
  size_t k_ = 20;
  std::vector<bool> attacker_;
  std::vector<size_t> members_, honest_;
  std::vector<Contact> member_contacts_;
  std::vector<std::string> keys_, topics_;
  std::vector<NodeId> targets_, placed_target_;
  std::unique_ptr<Identity> victim_identity_;
  size_t victim_ = 0;
  bool victim_joined_ = false;
  std::map<NodeId, StoredValue> honest_values_, own_values_;  // what the coalition learned and signed
  std::map<NodeId, std::vector<Contact>> closest_cache_;
  Bytes all_ones_;
  std::vector<std::vector<size_t>> subscribers_;
  std::set<size_t> observed_;
  std::set<std::pair<size_t, std::string>> delivered_;
  std::vector<size_t> putter_;
  std::vector<size_t> chosen_putters_;  // with AdversaryConfig::putters
  std::vector<Bytes> values_;
  std::vector<bool> acked_;
  std::vector<double> rounds_;
  std::unique_ptr<Simulator> sim_;  // last: destroyed first, while what its callbacks touch still lives
};

}  // namespace

AdversaryResult run_adversary(const AdversaryConfig& config) { return Adversary(config).run(); }

}  // namespace storjnet::sim
