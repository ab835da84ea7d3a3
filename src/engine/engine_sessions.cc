// Engine sessions (src/engine/engine.h): creating, evicting and shrinking per-peer sessions (idle ones shrink
// to a replay floor, docs/protocol.md 1.4), nonce epochs, and the per-peer request budgets.
#include "engine/engine.h"
#include "engine/evict_oldest.h"

#include <algorithm>

namespace storjnet {

Engine::Session* Engine::new_session(const PublicKey& pk, const crypto::SessionKey& key) {
  static_assert(sizeof(Session) <= 160, "a session, its key and the map's link fit one 208-byte heap chunk");
  static_assert(sizeof(Dormant) <= 32, "a dormant record and its fingerprint fill a 40-byte slot");
  std::optional<Dormant> was;  // taken first: evicting below must not drop this peer's floor
  if (auto d = dormant_.find(KeyedHash{}(pk)); d != dormant_.end()) {
    was = d->second;
    dormant_.erase(d);
  }
  if (sessions_.size() >= config_.max_sessions) evict_sessions();
  Session& s = sessions_[pk];
  s.key = key;
  s.tx_epoch = next_epoch();
  s.tx_salt = env_.random_u64();
  s.last_used = env_.now();
  s.requests = CompactBucket{config_.peer_request_burst, s.last_used};
  s.refusals = CompactBucket{config_.refusal_rate, s.last_used};
  s.unproven = CompactBucket{config_.amplification.unproven_request_rate, s.last_used};
  if (was) {
    s.rx = crypto::ReplayWindow::from_floor(was->floor());
    s.shown_address = was->shown_address;
  }
  ++stats_.sessions_created;
  if (!idle_sweep_ && config_.session_idle > Duration::zero())
    idle_sweep_ = schedule(config_.session_idle / 2, [this] { sweep_idle_sessions(); });
  return &s;
}

void Engine::set_epoch_floor(uint64_t floor, std::function<void(uint64_t)> persist) {
  last_epoch_ = std::max(last_epoch_, floor);
  epoch_reserved_ = last_epoch_;  // the first new session persists a mark before using its epoch
  epoch_persist_ = std::move(persist);
}

uint64_t Engine::next_epoch() {
  // A node-wide strictly increasing epoch orders each session after every earlier one; the persisted mark
  // (set_epoch_floor) keeps it so across restarts and backward clock steps.
  last_epoch_ = std::max(env_.unix_us(), last_epoch_ + 1);
  if (epoch_persist_ && last_epoch_ >= epoch_reserved_) {
    auto reserve = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(config_.epoch_reserve).count());
    epoch_reserved_ = last_epoch_ + std::max<uint64_t>(reserve, 1);
    epoch_persist_(epoch_reserved_);
  }
  return last_epoch_;
}

void Engine::evict_sessions() {
  evict_oldest_eighth(sessions_, [](const Session& s) { return s.last_used; }, [this](SessionMap::iterator it) {
    ++stats_.sessions_evicted;
    retire_session(it);
  });
}

Engine::SessionMap::iterator Engine::retire_session(SessionMap::iterator it) {
  // The replay floor outlives the session: a captured datagram of it stays refused when the peer's session is
  // re-made (docs/protocol.md 1.4). Only past max_dormant_sessions other peers is a floor forgotten.
  if (config_.max_dormant_sessions > 0) {
    if (dormant_.size() >= config_.max_dormant_sessions)
      evict_oldest_eighth(dormant_, [](const Dormant& d) { return d.last_used(); },
                          [this](DormantMap::iterator d) { dormant_.erase(d); });
    const Session& s = it->second;
    auto f = s.rx.floor();
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(s.last_used).count();
    dormant_[KeyedHash{}(it->first)] =
        Dormant{f.epoch, f.salt, f.top, static_cast<uint32_t>(secs), f.has, s.shown_address};
  }
  return sessions_.erase(it);
}

void Engine::sweep_idle_sessions() {
  // A session is shrunk when it was unused for session_idle, no request to the peer is outstanding, and its
  // rate budgets have refilled: re-made, it starts with full budgets, which it would have had anyway.
  idle_sweep_ = TimerId{};
  TimePoint now = env_.now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& s = it->second;
    s.requests.refill(config_.peer_request_rate, config_.peer_request_burst, now);
    s.refusals.refill(config_.refusal_rate, config_.refusal_rate, now);
    double unproven = config_.amplification.unproven_request_rate;
    s.unproven.refill(unproven, unproven, now);
    if (now - s.last_used >= config_.session_idle && !pending_per_peer_.contains(it->first) &&
        s.requests.full(config_.peer_request_burst) && s.refusals.full(config_.refusal_rate) &&
        s.unproven.full(unproven)) {
      ++stats_.sessions_idled;
      it = retire_session(it);
    } else {
      ++it;
    }
  }
  if (!sessions_.empty()) idle_sweep_ = schedule(config_.session_idle / 2, [this] { sweep_idle_sessions(); });
}

bool Engine::fresh_nonce(const crypto::ReplayWindow& rx, uint64_t epoch, uint64_t salt, uint64_t counter) {
  switch (rx.check(epoch, salt, counter)) {
    case crypto::ReplayWindow::Verdict::kReplay: drops_.add(DropReason::kReplay); return false;
    case crypto::ReplayWindow::Verdict::kStale: drops_.add(DropReason::kStaleSession); return false;
    case crypto::ReplayWindow::Verdict::kFresh: break;
  }
  return true;
}

Engine::Session* Engine::session_for_send(const PublicKey& pk) {
  auto it = sessions_.find(pk);
  if (it != sessions_.end()) return &it->second;
  crypto::SessionKey key;
  if (!crypto::derive_session_key(identity_, pk, key)) return nullptr;
  return new_session(pk, key);
}

bool Engine::take_token(Session& s) {
  return s.requests.take(config_.peer_request_rate, config_.peer_request_burst, env_.now());
}

// Answers to an address that has not proven it receives there are capped by the 3x rule in bytes; this caps
// them in number too, so a flood of small requests from a forged source costs a tag check each, not a send.
// The challenge goes out while half the budget is left: an honest peer proves its address within one round
// trip and never meets the cap.
bool Engine::unproven_request_allowed(Session& s, const Contact& from) {
  if (guard_.proven(from.endpoint, from.key)) return true;
  TimePoint now = env_.now();
  double rate = config_.amplification.unproven_request_rate;
  bool ok = s.unproven.take(rate, rate, now);
  Duration retry = config_.rpc_timeout / std::max(1, config_.rpc_attempts);
  if (s.unproven.tokens < rate / 2 && s.challenge_due(now, retry)) {
    s.challenged_now(now);
    send_challenge(from);
  }
  return ok;
}

}  // namespace storjnet
