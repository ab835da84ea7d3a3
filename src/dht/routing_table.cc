#include "dht/routing_table.h"

#include <algorithm>

namespace storjnet::dht {

int RoutingTable::bucket_of(const NodeId& id) const {
  int cpl = self_.common_prefix_bits(id);
  return cpl >= static_cast<int>(kBuckets) ? -1 : cpl;
}

bool RoutingTable::puzzle_ok(const Contact& c) const { return id_puzzle_ok(c.id, adm_.network_id, adm_.puzzle_bits); }

std::optional<Endpoint::Prefix> RoutingTable::limited_prefix(const Endpoint& ep) {
  if (ep.is_private_or_loopback() || ep.is_unspecified()) return std::nullopt;
  return ep.prefix();
}

size_t RoutingTable::in_prefix(const Endpoint& ep) const {
  auto p = limited_prefix(ep);
  if (!p) return 0;
  auto it = per_prefix_.find(*p);
  return it == per_prefix_.end() ? 0 : it->second;
}

bool RoutingTable::prefix_fits(const Bucket& bk, const Endpoint& ep, const NodeId* except) const {
  auto p = limited_prefix(ep);
  if (!p) return true;
  size_t in_bucket = 0, in_table = in_prefix(ep);
  for (const auto& e : bk.entries) {
    if (except && e.contact.id == *except) {
      if (limited_prefix(e.contact.endpoint) == p) --in_table;  // the entry being moved does not count
      continue;
    }
    if (limited_prefix(e.contact.endpoint) == p) ++in_bucket;
  }
  return in_bucket < adm_.per_prefix_bucket && in_table < adm_.per_prefix_table;
}

std::optional<RoutingTable::Seen> RoutingTable::refusal(const Contact& c) const {
  if (!puzzle_ok(c)) return Seen::kRefusedPuzzle;
  static const Bucket kNoBucket{};
  auto b = static_cast<size_t>(bucket_of(c.id));
  if (!prefix_fits(b < buckets_.size() ? buckets_[b] : kNoBucket, c.endpoint, nullptr)) return Seen::kRefusedPrefix;
  return std::nullopt;
}

void RoutingTable::count_prefix(const Endpoint& ep, int delta) {
  auto p = limited_prefix(ep);
  if (!p) return;
  auto& n = per_prefix_[*p];
  n = static_cast<size_t>(static_cast<long>(n) + delta);
  if (n == 0) per_prefix_.erase(*p);
}

namespace {
static_assert(sizeof(RoutingTable::Entry) <= 112, "an entry's small fields fill the contact's padding");

// Before a push_back: grows a full vector by 4 elements but never past `cap`, where the default doubling would
// leave a bucket of k = 20 with room for 32 (a third of its bytes unused), and a far bucket a join filled to
// half of k (10) with room for 16. A bucket grows a few times in its life: the copies cost nothing that counts.
template <class T>
void reserve_at_most(std::vector<T>& v, size_t cap) {
  if (v.size() < v.capacity()) return;
  v.reserve(std::max(v.size() + 1, std::min(cap, v.capacity() + 4)));
}
}  // namespace

RoutingTable::Seen RoutingTable::seen(const Contact& c, TimePoint now) {
  int b = bucket_of(c.id);
  if (b < 0 || !c.endpoint.valid()) return Seen::kIgnored;
  Bucket& bk = at(b);
  auto it = std::find_if(bk.entries.begin(), bk.entries.end(), [&](const Entry& e) { return e.contact.id == c.id; });
  if (it != bk.entries.end()) {
    Entry e = *it;
    if (e.contact.endpoint.family != c.endpoint.family) {  // heard on its other family: that address, observed
      e.contact.alt = c.endpoint;
      e.last_seen = now;
      e.failures = 0;
      bk.entries.erase(it);
      bk.entries.push_back(e);
      return Seen::kUpdated;
    }
    if (e.contact.endpoint != c.endpoint) {  // moved: charge the new address block, if it has room
      if (limited_prefix(e.contact.endpoint) != limited_prefix(c.endpoint) && !prefix_fits(bk, c.endpoint, &c.id)) {
        remove(c.id);
        return Seen::kRefusedPrefix;
      }
      count_prefix(e.contact.endpoint, -1);
      count_prefix(c.endpoint, +1);
      if (e.confirmed) --confirmed_;
      e.confirmed = false;
      e.checked = now;
    }
    Endpoint alt = e.contact.alt;  // what the other family's socket was heard from stays known
    e.contact = c;
    if (!c.alt.valid()) e.contact.alt = alt;
    e.last_seen = now;
    e.failures = 0;
    bk.entries.erase(it);
    bk.entries.push_back(e);
    return Seen::kUpdated;
  }
  if (!puzzle_ok(c)) return Seen::kRefusedPuzzle;
  if (!prefix_fits(bk, c.endpoint, nullptr)) return Seen::kRefusedPrefix;
  if (bk.entries.size() < k_) {
    reserve_at_most(bk.entries, k_);
    bk.entries.push_back({.contact = c, .last_seen = now, .checked = now});
    count_prefix(c.endpoint, +1);
    ++size_;
    return Seen::kAdded;
  }
  auto r = std::find_if(bk.replacements.begin(), bk.replacements.end(), [&](const Contact& x) { return x.id == c.id; });
  if (r != bk.replacements.end()) bk.replacements.erase(r);
  reserve_at_most(bk.replacements, kReplacements + 1);
  bk.replacements.push_back(c);
  if (bk.replacements.size() > kReplacements) bk.replacements.erase(bk.replacements.begin());
  return Seen::kFull;
}

std::optional<Contact> RoutingTable::oldest_in_bucket_of(const NodeId& id, TimePoint quiet_since) const {
  int b = bucket_of(id);
  if (b < 0 || static_cast<size_t>(b) >= buckets_.size() || buckets_[b].entries.empty()) return std::nullopt;
  const Entry& oldest = buckets_[b].entries.front();
  if (!(oldest.last_seen < quiet_since)) return std::nullopt;
  return oldest.contact;
}

bool RoutingTable::failed(const NodeId& id, int max_failures) {
  int b = bucket_of(id);
  if (b < 0 || static_cast<size_t>(b) >= buckets_.size()) return false;
  auto& es = buckets_[b].entries;
  auto it = std::find_if(es.begin(), es.end(), [&](const Entry& e) { return e.contact.id == id; });
  if (it == es.end()) return false;
  if (it->failures < 255) ++it->failures;
  if (it->failures < max_failures) return false;
  remove(id);
  return true;
}

void RoutingTable::remove(const NodeId& id) {
  int b = bucket_of(id);
  if (b < 0 || static_cast<size_t>(b) >= buckets_.size()) return;
  Bucket& bk = buckets_[b];
  auto it = std::find_if(bk.entries.begin(), bk.entries.end(), [&](const Entry& e) { return e.contact.id == id; });
  if (it == bk.entries.end()) {
    auto r = std::find_if(bk.replacements.begin(), bk.replacements.end(), [&](const Contact& x) { return x.id == id; });
    if (r != bk.replacements.end()) bk.replacements.erase(r);
    return;
  }
  TimePoint seen = it->last_seen;
  if (it->confirmed) --confirmed_;
  count_prefix(it->contact.endpoint, -1);
  bk.entries.erase(it);
  --size_;
  // The newest waiting contact whose address block still has room. Not yet proven alive recently: it goes to
  // the front (least recently seen), to be checked first.
  for (auto r = bk.replacements.rbegin(); r != bk.replacements.rend(); ++r) {
    if (!prefix_fits(bk, r->endpoint, nullptr)) continue;
    bk.entries.insert(bk.entries.begin(), Entry{.contact = *r, .last_seen = seen});
    count_prefix(r->endpoint, +1);
    bk.replacements.erase(std::next(r).base());
    ++size_;
    break;
  }
}

std::optional<Contact> RoutingTable::find(const NodeId& id) const {
  int b = bucket_of(id);
  if (b < 0 || static_cast<size_t>(b) >= buckets_.size()) return std::nullopt;
  for (auto& e : buckets_[b].entries)
    if (e.contact.id == id) return e.contact;
  return std::nullopt;
}

namespace {
// A contact's place in an ordering by distance to a target: `key` decides almost every comparison in one
// integer compare (its low 63 bits are the distance's first 63); the whole distance breaks its ties.
template <class T>
struct Ranked {
  uint64_t key;
  NodeId distance;
  const T* item;
  bool operator<(const Ranked& o) const { return key != o.key ? key < o.key : distance < o.distance; }
};
template <class T>
Ranked<T> ranked(const NodeId& id, const NodeId& target, const T* item, bool last = false) {
  NodeId d = id ^ target;
  return {uint64_t(last) << 63 | d.prefix64() >> 1, d, item};
}
}  // namespace

std::vector<Contact> RoutingTable::closest(const NodeId& target, size_t n) const {
  // Contacts in bucket i share exactly i bits with us; relative to the target, bucket cpl(self, target) holds
  // the closest ones, then deeper buckets, then shallower ones in decreasing order. Collect buckets in that
  // order until n are gathered, then sort only what was collected.
  std::vector<Ranked<Contact>> got;
  got.reserve(n + k_);
  int t = self_.common_prefix_bits(target);
  const int nb = static_cast<int>(buckets_.size());
  auto take = [&](int b) {
    if (b >= nb) return;
    for (auto& e : buckets_[b].entries) got.push_back(ranked(e.contact.id, target, &e.contact));
  };
  if (t < static_cast<int>(kBuckets)) take(t);
  for (int b = std::min<int>(t, kBuckets) + 1; b < nb; ++b) take(b);
  size_t enough = got.size();
  for (int b = std::min<int>(t, kBuckets) - 1; b >= 0 && enough < n; --b) {
    take(b);
    enough = got.size();
  }
  size_t m = std::min(n, got.size());
  std::partial_sort(got.begin(), got.begin() + m, got.end());
  std::vector<Contact> out;
  out.reserve(m);
  for (size_t i = 0; i < m; ++i) out.push_back(*got[i].item);
  return out;
}

std::vector<Contact> RoutingTable::closest_answer(const NodeId& target, size_t n) const {
  if (confirmed_ == size_) return closest(target, n);
  std::vector<Ranked<Entry>> got;
  got.reserve(size_);
  // Confirmed first (closest first among them), then the unconfirmed by distance; the first n, by distance.
  for (auto& bk : buckets_)
    for (auto& e : bk.entries) got.push_back(ranked(e.contact.id, target, &e, !e.confirmed));
  size_t m = std::min(n, got.size());
  std::partial_sort(got.begin(), got.begin() + m, got.end());
  got.resize(m);
  for (auto& g : got) g.key &= ~(uint64_t(1) << 63);
  std::sort(got.begin(), got.end());
  std::vector<Contact> out;
  out.reserve(m);
  for (auto& g : got) out.push_back(g.item->contact);
  return out;
}

bool RoutingTable::set_confirmed(const NodeId& id) {
  int b = bucket_of(id);
  if (b < 0 || static_cast<size_t>(b) >= buckets_.size()) return false;
  for (auto& e : buckets_[b].entries)
    if (e.contact.id == id && !e.confirmed) {
      e.confirmed = true;
      ++confirmed_;
      return true;
    }
  return false;
}

bool RoutingTable::confirmed(const NodeId& id) const {
  int b = bucket_of(id);
  if (b < 0 || static_cast<size_t>(b) >= buckets_.size()) return false;
  for (auto& e : buckets_[b].entries)
    if (e.contact.id == id) return e.confirmed;
  return false;
}

int RoutingTable::failures(const NodeId& id) const {
  int b = bucket_of(id);
  if (b < 0 || static_cast<size_t>(b) >= buckets_.size()) return 0;
  for (auto& e : buckets_[b].entries)
    if (e.contact.id == id) return e.failures;
  return 0;
}

std::vector<Contact> RoutingTable::due_for_check(TimePoint before, TimePoint now, size_t n) {
  std::vector<Contact> out;
  for (auto& bk : buckets_)
    for (auto& e : bk.entries) {
      if (out.size() >= n) return out;
      if (e.confirmed || e.checked >= before) continue;
      e.checked = now;
      out.push_back(e.contact);
    }
  return out;
}

std::vector<Contact> RoutingTable::all() const {
  std::vector<Contact> out;
  out.reserve(size_);
  for (auto& bk : buckets_)
    for (auto& e : bk.entries) out.push_back(e.contact);
  return out;
}

int RoutingTable::deepest_bucket() const {
  for (int i = static_cast<int>(buckets_.size()) - 1; i >= 0; --i)
    if (!buckets_[i].entries.empty()) return i;
  return -1;
}

}  // namespace storjnet::dht
