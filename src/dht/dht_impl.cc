// Dht::Impl's construction, and its answers to find_node, find_value and store (src/dht/dht_impl.h).
#include "dht/dht_impl.h"

namespace storjnet {

Dht::Impl::Impl(Engine& e, DhtConfig c, std::unique_ptr<DhtStorage> s)
    : engine(e), cfg(c), storage(std::move(s)), table(e.id(), c.k, admission(c, e.config().network_id)),
      values(*storage, cfg), store_rate(c.store_rate),
      placements(c.placement_reuse, c.k + c.k / 4),
      neighbourhoods(c.neighbourhood_reuse ? c.placement_reuse : Duration{}, c.k, c.k + c.k / 4),
      newcomers(e, table, cfg, [this](const Contact& c) { on_contact(c, true); },
                [this] { return stats.lookups != stats.lookups_completed; }),
      addresses(e, table, c.rpc_timeout),
      scope(e.scope()) {
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
  if (cfg.nat_view) nat_view = std::make_unique<NatView>(engine, table, cfg.rpc_timeout);
  if (dial_back && nat_view)
    dial_back->set_public_address([this](Endpoint::Family f) { return nat_view->view(f).address; });
  if (cfg.punch)
    punch = std::make_unique<Punch>(
        engine, table, cfg, [this] {
          // Reachable through a NAT is reachable only while the NAT keeps our mapping: keep it alive too.
          return dial_back && dial_back->reachable() && !dial_back->translated(Endpoint::Family::kV4) &&
                 !dial_back->translated(Endpoint::Family::kV6);
        },
        [this](const NodeId& id, std::function<void(std::vector<Contact>)> done) {
          lookup(id, false, false, [done = std::move(done)](LookupResult res) { done(std::move(res.closest)); });
        });
  schedule_maintenance();
}

bool Dht::Impl::acceptable(const StoredValue& v) {
  if (verify_value(v, network())) return true;
  ++stats.bad_signatures;
  engine.drops().add(DropReason::kDhtBadValue);
  return false;
}

Dht::Impl::~Impl() {
  // The user callbacks of operations in flight run now, with their cancelled value (Once, in dht.cc).
  scope.end();
  upgrade.reset();
  relay.reset();
  punch.reset();
  engine.set_on_contact(nullptr);
  for (Method m : {Method::kFindNode, Method::kFindValue, Method::kStore}) engine.set_handler(m, nullptr);
}

void Dht::Impl::admit_learned(std::vector<Contact>& contacts, const NodeId& target) {
  size_t refused = std::erase_if(contacts, [&](const Contact& c) { return !table.puzzle_ok(c); });
  stats.contacts_refused_puzzle += refused;
  engine.drops().add(DropReason::kIdPuzzle, refused);
  addresses.learned(contacts);  // turned towards a family we send on; second addresses of held entries checked
  uint8_t families = engine.env().families();
  std::erase_if(contacts, [&](const Contact& c) { return !c.reachable_by(families) && c.id != target; });
}

std::vector<Contact> Dht::Impl::answer_contacts(const NodeId& target, size_t n, bool placement) const {
  if (!dial_back || placement) return table.closest(target, n);
  auto out = table.closest_answer(target, n);
  if (out.empty() || out.front().id != target)
    if (auto exact = table.find(target)) {
      out.insert(out.begin(), *exact);
      if (out.size() > n) out.pop_back();
    }
  return out;
}

std::vector<Contact> Dht::Impl::shareable(const NodeId& target, const Contact& to, bool placement) {
  // A placement answer names a quarter more: the asker stores on the k closest that are alive, and the nodes
  // just past the k closest replace those that died (no other answer need name them). 25 IPv4 contacts
  // (k = 20) still fit one datagram.
  size_t n = placement ? std::min(cfg.k + cfg.k / 4, kMaxContactsPerResponse) : cfg.k;
  auto out = answer_contacts(target, n + 1, placement);
  bool public_peer = !to.endpoint.is_private_or_loopback();
  if (public_peer)
    for (Contact& c : out) {  // a dual-stack contact keeps only its public addresses
      if (c.alt.valid() && c.alt.is_private_or_loopback()) c.alt = {};
      if (c.endpoint.is_private_or_loopback() && c.alt.valid()) c = Contact{c.id, c.key, c.alt};
    }
  std::erase_if(out, [&](const Contact& c) {
    return c.id == to.id || (public_peer && c.endpoint.is_private_or_loopback());
  });
  if (out.size() > n) out.resize(n);
  return out;
}

void Dht::Impl::on_find_node(const IncomingRequest& q, const Reply& r) {
  auto req = decode_find_node_request(q.payload);
  if (!req) return r.error("malformed find_node");
  FindNodeAnswer a{shareable(req->target, q.from, req->placement), std::nullopt};
  // The verdict a kVerdict request would get; it costs one byte here, where an ask costs a round trip.
  if (req->verdict && dial_back) a.verdict = dial_back->verdict(q.from.endpoint.family);
  // Marks: the contacts no dial-back of ours confirmed (a put stores on them but need not ask them; section 5,
  // "Placement"). Without dial-back nothing is confirmed or not, and while fewer than k entries are confirmed (a
  // young network, a node that just joined: plain answers then hand out unconfirmed ones too) it says little: no
  // marks then.
  if (req->marks && req->verdict && dial_back && table.confirmed_count() >= cfg.k) {
    uint32_t marks = 0;
    for (size_t i = 0; i < a.contacts.size() && i < 32; ++i)
      if (!table.confirmed(a.contacts[i].id)) marks |= uint32_t{1} << i;
    a.unconfirmed = marks;
  }
  r.ok(encode_find_node_answer(a));
}

void Dht::Impl::on_find_value(const IncomingRequest& q, const Reply& r) {
  auto key = decode_id_request(q.payload);
  if (!key) return r.error("malformed find_value");
  FindValueResponse resp;
  resp.value = values.get(*key);
  if (!resp.value) resp.contacts = shareable(*key, q.from);
  r.ok(encode_find_value_response(resp));
}

void Dht::Impl::on_store(const IncomingRequest& q, const Reply& r) {
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
  // Cheap refusals before the signature check; a value held byte for byte was verified on arrival. Another
  // owner's value is replaced only under the arriving owner's self-named key, after its signature checked.
  auto held = values.get(v->key);
  if (held) switch (ValueStore::claim(*v, *held)) {
      case ValueStore::Claim::kSquat: ++stats.squats_refused; [[fallthrough]];
      case ValueStore::Claim::kOther: ++stats.stores_rejected; return r.ok(encode_bool(false));
      case ValueStore::Claim::kOwner:
      case ValueStore::Claim::kReclaim: break;
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
    case ValueStore::Result::kReclaimed: ++stats.squats_displaced; [[fallthrough]];
    case ValueStore::Result::kStored:
    case ValueStore::Result::kSame:
      ++stats.stores_accepted;
      // Someone just republished this key to us: our own republish can wait a full interval.
      republish_at[v->key] = engine.now() + jittered(cfg.republish_interval);
      return r.ok(encode_bool(true));
    case ValueStore::Result::kSquatRefused: ++stats.squats_refused; [[fallthrough]];
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

}  // namespace storjnet
