#include "engine/first_contact.h"

#include <sodium.h>

#include <algorithm>

namespace storjnet {

FirstContact::FirstContact(Environment& env, const EngineConfig& config)
    : env_(env),
      config_(config),
      global_{config.new_key_burst, env.now()},
      cookies_{config.cookie_reply_rate, env.now()} {}

void FirstContact::rotate(TimePoint now) {
  if (have_secret_ && now - rotated_at_ < config_.cookie_lifetime) return;
  bool both = !have_secret_ || now - rotated_at_ >= 2 * config_.cookie_lifetime;
  previous_ = secret_;
  env_.random(secret_);
  if (both) env_.random(previous_);
  rotated_at_ = now;
  have_secret_ = true;
}

wire::Cookie FirstContact::mac(const std::array<uint8_t, 32>& secret, const Endpoint& from) const {
  uint8_t in[1 + 16 + 2];
  in[0] = static_cast<uint8_t>(from.family);
  std::copy(from.addr.begin(), from.addr.end(), in + 1);
  in[17] = static_cast<uint8_t>(from.port >> 8);
  in[18] = static_cast<uint8_t>(from.port);
  wire::Cookie c;
  crypto_generichash(c.data(), c.size(), in, sizeof in, secret.data(), secret.size());
  return c;
}

wire::Cookie FirstContact::cookie_for(const Endpoint& from) {
  rotate(env_.now());
  return mac(secret_, from);
}

bool FirstContact::cookie_valid(const Endpoint& from, const wire::Cookie& cookie) {
  rotate(env_.now());
  auto a = mac(secret_, from), b = mac(previous_, from);
  return sodium_memcmp(a.data(), cookie.data(), a.size()) == 0 || sodium_memcmp(b.data(), cookie.data(), b.size()) == 0;
}

FirstContact::PrefixBudget& FirstContact::prefix_budget(const Endpoint& from, TimePoint now) {
  auto it = per_prefix_.find(from.prefix());
  if (it == per_prefix_.end()) {
    if (per_prefix_.size() >= config_.new_key_prefix_table) per_prefix_.clear();  // all refill to full: fair
    it = per_prefix_
             .emplace(from.prefix(), PrefixBudget{TokenBucket{config_.new_key_prefix_burst, now},
                                                  TokenBucket{config_.cookie_reply_prefix_rate, now}})
             .first;
  }
  return it->second;
}

bool FirstContact::cookie_reply_allowed(const Endpoint& from, TimePoint now) {
  // The prefix's bucket first: a prefix over its share does not spend the global budget.
  if (!prefix_budget(from, now).cookies.take(config_.cookie_reply_prefix_rate, config_.cookie_reply_prefix_rate, now))
    return false;
  return cookies_.take(config_.cookie_reply_rate, config_.cookie_reply_rate, now);
}

FirstContact::Admit FirstContact::admit(const Endpoint& from, const std::optional<wire::Cookie>& cookie) {
  TimePoint now = env_.now();
  if (global_.take(config_.new_key_rate, config_.new_key_burst, now)) return Admit::kWork;
  if (!cookie) return cookie_reply_allowed(from, now) ? Admit::kSendCookie : Admit::kUnanswered;
  if (!cookie_valid(from, *cookie)) return cookie_reply_allowed(from, now) ? Admit::kBadCookie : Admit::kUnanswered;
  return prefix_budget(from, now).keys.take(config_.new_key_prefix_rate, config_.new_key_prefix_burst, now)
             ? Admit::kWork
             : Admit::kDrop;
}

const std::optional<crypto::SessionKey>* FirstContact::failed(const PublicKey& pk) const {
  auto it = failed_.find(pk);
  return it == failed_.end() ? nullptr : &it->second;
}

void FirstContact::remember_failed(const PublicKey& pk, std::optional<crypto::SessionKey> key) {
  if (failed_.size() >= config_.failed_key_cache) failed_.clear();
  failed_[pk] = key;
}

}  // namespace storjnet
