#include "engine/address_guard.h"

#include <algorithm>
#include <cstring>

#include "engine/evict_oldest.h"
#include "storjnet/keyed_hash.h"

namespace storjnet {

uint64_t AddressGuard::fingerprint(const Endpoint& ep, const PublicKey& pk) const {
  if (last_fp_.set && last_fp_.ep == ep && last_fp_.pk == pk) return last_fp_.fp;
  uint8_t buf[1 + 16 + 2 + 32];
  buf[0] = static_cast<uint8_t>(ep.family);
  std::memcpy(buf + 1, ep.addr.data(), 16);
  buf[17] = static_cast<uint8_t>(ep.port >> 8);
  buf[18] = static_cast<uint8_t>(ep.port);
  std::memcpy(buf + 19, pk.data(), 32);
  last_fp_ = {ep, pk, keyed_hash(buf, sizeof buf), true};
  return last_fp_.fp;
}

bool AddressGuard::touch_proven(uint64_t fp, TimePoint now) {
  auto it = proven_.find(fp);
  if (it == proven_.end()) return false;
  it->second = now;
  return true;
}

static size_t hold_charge(const Bytes& m) { return std::max(m.size(), AddressGuard::kMinHoldCharge); }

AddressGuard::Entry& AddressGuard::entry(uint64_t fp, TimePoint now) {
  auto it = table_.find(fp);
  if (it == table_.end()) {
    if (now >= next_forget_) forget_idle(now);
    if (table_.size() >= limits_.max_entries) evict();
    it = table_.emplace(fp, Entry{}).first;
  }
  it->second.last = now;
  return it->second;
}

void AddressGuard::evict() {
  evict_oldest_eighth(table_, [](const Entry& e) { return e.last; }, [this](auto it) {
    if (auto q = holding_.find(it->first); q != holding_.end()) {
      drops_.add(DropReason::kHoldExpired, q->second.held.size());
      drop_held(q, q->second.held.size());
    }
    table_.erase(it);
  });
}

void AddressGuard::forget_idle(TimePoint now) {
  next_forget_ = now + kUnprovenIdle / 2;
  absl::erase_if(table_, [&](const auto& kv) {
    return now - kv.second.last >= kUnprovenIdle && !holding_.contains(kv.first);
  });
}

void AddressGuard::received(const Endpoint& ep, const PublicKey& pk, size_t bytes, TimePoint now) {
  uint64_t fp = fingerprint(ep, pk);
  if (touch_proven(fp, now)) return;
  entry(fp, now).in += bytes;
}

void AddressGuard::prove(const Endpoint& ep, const PublicKey& pk, TimePoint now) {
  uint64_t fp = fingerprint(ep, pk);
  table_.erase(fp);  // its held messages stay queued until release()
  if (!proven_.contains(fp) && proven_.size() >= limits_.max_entries)
    evict_oldest_eighth(proven_, [](TimePoint t) { return t; }, [this](auto it) { proven_.erase(it); });
  proven_[fp] = now;
}

bool AddressGuard::proven(const Endpoint& ep, const PublicKey& pk) const {
  return proven_.contains(fingerprint(ep, pk));
}

bool AddressGuard::allow(const Endpoint& ep, const PublicKey& pk, size_t bytes, bool initiative, TimePoint now) {
  uint64_t fp = fingerprint(ep, pk);
  if (touch_proven(fp, now)) return true;
  auto it = table_.find(fp);
  if (it == table_.end() && initiative) return true;  // we chose this address; nothing from it is being amplified
  Entry& e = it == table_.end() ? entry(fp, now) : it->second;
  if (static_cast<double>(e.out + bytes) > limits_.factor * static_cast<double>(e.in)) return false;
  e.out += bytes;
  return true;
}

uint64_t AddressGuard::challenge_token(const Endpoint& ep, const PublicKey& pk, uint64_t fresh, TimePoint now) {
  Entry& e = entry(fingerprint(ep, pk), now);
  if (e.token == 0) e.token = fresh ? fresh : 1;
  return e.token;
}

bool AddressGuard::echo(const Endpoint& ep, const PublicKey& pk, uint64_t token, TimePoint now) {
  auto it = table_.find(fingerprint(ep, pk));  // a proven pair has no entry, so no outstanding token
  if (it == table_.end() || it->second.token == 0 || it->second.token != token) return false;
  prove(ep, pk, now);
  return true;
}

bool AddressGuard::hold(const Endpoint& ep, const PublicKey& pk, Bytes message, TimePoint now) {
  uint64_t fp = fingerprint(ep, pk);
  size_t charge = hold_charge(message);
  entry(fp, now);  // first: it may evict, and with it held queues
  auto q = holding_.find(fp);
  size_t queued = q == holding_.end() ? 0 : q->second.bytes;
  size_t& prefix = held_per_prefix_[ep.prefix()];
  if (queued + charge > limits_.hold_per_address || prefix + charge > limits_.hold_per_prefix ||
      held_total_ + charge > limits_.hold_total) {
    if (prefix == 0) held_per_prefix_.erase(ep.prefix());
    drops_.add(DropReason::kHoldFull);
    return false;
  }
  HeldQueue& h = q == holding_.end() ? holding_[fp] : q->second;
  h.prefix = ep.prefix();
  h.bytes += charge;
  prefix += charge;
  held_total_ += charge;
  h.held.push_back({std::move(message), now});
  return true;
}

void AddressGuard::drop_held(HoldMap::iterator q, size_t n) {
  if (n == 0) return;
  HeldQueue& h = q->second;
  size_t freed = 0;
  for (size_t i = 0; i < n; ++i) freed += hold_charge(h.held[i].message);
  h.held.erase(h.held.begin(), h.held.begin() + static_cast<long>(n));
  h.bytes -= freed;
  held_total_ -= freed;
  auto p = held_per_prefix_.find(h.prefix);
  if (p != held_per_prefix_.end() && (p->second -= freed) == 0) held_per_prefix_.erase(p);
  if (h.held.empty()) holding_.erase(q);
}

std::vector<Bytes> AddressGuard::release(const Endpoint& ep, const PublicKey& pk) {
  std::vector<Bytes> out;
  auto q = holding_.find(fingerprint(ep, pk));
  if (q == holding_.end()) return out;
  for (auto& h : q->second.held) out.push_back(std::move(h.message));
  // Charges are recomputed from sizes in drop_held; do it by hand since the messages moved out.
  size_t freed = q->second.bytes;
  held_total_ -= freed;
  auto p = held_per_prefix_.find(q->second.prefix);
  if (p != held_per_prefix_.end() && (p->second -= freed) == 0) held_per_prefix_.erase(p);
  holding_.erase(q);
  return out;
}

void AddressGuard::expire(TimePoint now) {
  for (auto q = holding_.begin(); q != holding_.end();) {
    auto next = std::next(q);
    const auto& held = q->second.held;
    size_t n = 0;
    while (n < held.size() && now - held[n].at >= limits_.hold_timeout) ++n;
    drops_.add(DropReason::kHoldExpired, n);
    drop_held(q, n);  // may erase q
    q = next;
  }
}

}  // namespace storjnet
