// FirstContact: budgets the key work (Ed25519->X25519 conversion and X25519) an engine spends on sealed
// datagrams from senders it holds no session for, so a flood of fresh keys or forged datagrams cannot starve
// honest peers of CPU.
//  - A global token bucket (EngineConfig::new_key_rate/new_key_burst) pays for key work.
//  - When it is empty the node is "under load": an unknown sender's datagram gets a stateless COOKIE_REPLY
//    instead (a MAC of its source address under a secret rotated every cookie_lifetime; valid for the
//    current and the previous secret), and only datagrams carrying a valid cookie for their source address
//    get key work, from a per-/24-or-/48-prefix bucket (new_key_prefix_rate/burst; bounded table), as
//    WireGuard does. A sender must receive at its address to get a cookie, so forged sources cost nothing.
//  - Cookie replies cost a send each, so they are budgeted too (cookie_reply_rate in all,
//    cookie_reply_prefix_rate per prefix): past either, an unknown sender's datagram is dropped unanswered
//    (kUnanswered). A flood then costs the node a header parse and two bucket checks per datagram.
//  - Keys that failed (invalid points, or a tag that did not verify) are remembered with their derived key in
//    a small bounded cache: a repeat costs one tag check, never a second curve operation. An honest key used
//    in forgeries still authenticates: the cache holds the key, not a verdict.
#pragma once
#include <optional>
#include <unordered_map>

#include "common/token_bucket.h"
#include "crypto/session.h"
#include "storjnet/config.h"
#include "storjnet/endpoint.h"
#include "storjnet/environment.h"
#include "wire/datagram.h"

namespace storjnet {

class FirstContact {
 public:
  // kBadCookie: answer with a fresh cookie. kDrop: valid cookie, prefix key budget spent. kUnanswered: a cookie
  // reply was due but the cookie-reply budget (global or the prefix's) is spent.
  enum class Admit { kWork, kSendCookie, kBadCookie, kDrop, kUnanswered };

  FirstContact(Environment& env, const EngineConfig& config);

  // Whether an unknown sender's datagram from `from` (carrying `cookie`, if any) gets key work now.
  Admit admit(const Endpoint& from, const std::optional<wire::Cookie>& cookie);
  // The cookie for `from` under the current secret.
  wire::Cookie cookie_for(const Endpoint& from);
  bool cookie_valid(const Endpoint& from, const wire::Cookie& cookie);

  // Failed keys. nullptr: unknown; else the derived key, or nullopt when the key is unusable.
  const std::optional<crypto::SessionKey>* failed(const PublicKey& pk) const;
  void remember_failed(const PublicKey& pk, std::optional<crypto::SessionKey> key);
  void forget_failed(const PublicKey& pk) { failed_.erase(pk); }

 private:
  void rotate(TimePoint now);
  wire::Cookie mac(const std::array<uint8_t, 32>& secret, const Endpoint& from) const;

  Environment& env_;
  const EngineConfig& config_;
  TokenBucket global_;
  struct PrefixBudget {
    TokenBucket keys, cookies;
  };
  PrefixBudget& prefix_budget(const Endpoint& from, TimePoint now);
  bool cookie_reply_allowed(const Endpoint& from, TimePoint now);

  TokenBucket cookies_;
  std::unordered_map<Endpoint::Prefix, PrefixBudget> per_prefix_;
  std::unordered_map<PublicKey, std::optional<crypto::SessionKey>, KeyedHash> failed_;
  std::array<uint8_t, 32> secret_{}, previous_{};
  TimePoint rotated_at_{};
  bool have_secret_ = false;
};

}  // namespace storjnet
