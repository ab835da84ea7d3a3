#include "pubsub/serving.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace storjnet::pubsub {

uint64_t serving_score(const EventId& id, const NodeId& subscriber, const NodeId& holder) {
  static_assert(sizeof(EventId) == crypto_shorthash_KEYBYTES);
  uint8_t msg[2 * NodeId::kSize];
  std::memcpy(msg, subscriber.bytes().data(), NodeId::kSize);
  std::memcpy(msg + NodeId::kSize, holder.bytes().data(), NodeId::kSize);
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, msg, sizeof msg, id.data());
  uint64_t v = 0;
  for (uint8_t b : out) v = (v << 8) | b;
  return v;
}

bool serves(const EventId& id, const NodeId& me, const NodeId& subscriber, const std::vector<NodeId>& subscriber_holders,
            const HolderSet& publisher_holders, size_t serving) {
  if (subscriber_holders.empty()) return true;
  bool me_named = false;
  size_t shared = 0;
  for (const auto& h : subscriber_holders) {
    if (!publisher_holders.count(h)) continue;
    ++shared;
    if (h == me) me_named = true;
  }
  if (shared == 0) return true;
  if (!me_named) return false;
  // Few shared holders (lookups that disagree: lies, or a registration made while joining): whoever lies
  // among them is a large part of them, so every shared holder serves.
  if (shared < 2 * serving) return true;
  // Rank among the shared holders: count those ahead of us (higher score; ties by id), stop at `serving`.
  const uint64_t mine = serving_score(id, subscriber, me);
  size_t ahead = 0;
  for (const auto& h : subscriber_holders) {
    if (h == me || !publisher_holders.count(h)) continue;
    const uint64_t s = serving_score(id, subscriber, h);
    if (s > mine || (s == mine && h < me)) {
      if (++ahead >= serving) return false;
    }
  }
  return true;
}

double distance_fraction(const NodeId& distance) {
  double f = 0, scale = 1;
  for (size_t i = 0; i < 8; ++i) {
    scale /= 256;
    f += distance.bytes()[i] * scale;
  }
  return f;
}

double crowding(const NodeId& key, const std::vector<NodeId>& found, const NodeId& own_radius, size_t k) {
  const double radius = distance_fraction(own_radius);
  if (k == 0 || found.size() < (k + 1) / 2 || radius <= 0) return 0;
  double farthest = 0;
  for (const auto& id : found) farthest = std::max(farthest, distance_fraction(id ^ key));
  const double expected = radius * double(found.size()) / double(k);
  // Every node found sits on the key (all within 2^-64 of it): as crowded as can be measured.
  return farthest > 0 ? expected / farthest : expected * 0x1p64;
}

EventId per_sender(const EventId& id, const NodeId& sender) {
  EventId out;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, out.size());
  static constexpr char kContext[] = "storjnet pubsub per-sender";
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kContext), sizeof kContext - 1);
  crypto_generichash_update(&st, id.data(), id.size());
  crypto_generichash_update(&st, sender.bytes().data(), NodeId::kSize);
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

EventId content_key(const NotifyBody& ev) {
  EventId out;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, out.size());
  const uint8_t lengths[8] = {static_cast<uint8_t>(ev.topic.size() >> 8), static_cast<uint8_t>(ev.topic.size()), 0, 0,
                              static_cast<uint8_t>(ev.event.size() >> 24), static_cast<uint8_t>(ev.event.size() >> 16),
                              static_cast<uint8_t>(ev.event.size() >> 8), static_cast<uint8_t>(ev.event.size())};
  crypto_generichash_update(&st, ev.id.data(), ev.id.size());
  crypto_generichash_update(&st, lengths, sizeof lengths);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(ev.topic.data()), ev.topic.size());
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(ev.event.data()), ev.event.size());
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

}  // namespace storjnet::pubsub
