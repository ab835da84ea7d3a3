// Engine, first-contact key work off the node's thread (src/engine/engine.h, KeyJob). A peer's pair key costs
// an X25519 (and the conversion of its Ed25519 key) the first time this process talks to it: ~75 us, most of
// a join's or a put's CPU. Where the driver offloads (Environment::offload), that work runs on another core
// while the node goes on; the messages that need the key wait for it in order. The protocol is unchanged:
// the same key, the same datagrams, the same first-contact budget (paid by a sender's first datagram).
#include "crypto/key_cache.h"
#include "engine/engine.h"
#include "wire/datagram.h"

namespace storjnet {

bool Engine::offload_send(const Contact& given, const Contact& to, ByteView message, SendKind kind) {
  KeyJob* job = key_work_for(to.key) ? &key_work_->jobs.at(to.key) : nullptr;
  if (!job) {
    crypto::SessionKey key;
    if (to.key == identity_.public_key() || crypto::cached_pair_key(identity_.public_key(), to.key, key))
      return false;  // nothing to derive
    if (!(job = start_key_job(to.key, /*ours=*/true))) return false;  // in place
  }
  if (job->sends.size() >= kMaxKeyJobQueue) {
    drops_.add(DropReason::kKeyBudget);  // a request among them is sent again by its retry
    return true;
  }
  job->sends.push_back({given, Bytes(message.begin(), message.end()), kind});
  return true;
}

bool Engine::hold_for_key(const Endpoint& from, const PublicKey& sender, bool start) {
  if (datagram_.empty()) return false;
  KeyJob* job = key_work_for(sender) ? &key_work_->jobs.at(sender) : nullptr;
  if (!job && !(start && (job = start_key_job(sender, /*ours=*/false)))) return false;
  if (job->datagrams.size() >= kMaxKeyJobQueue) {
    drops_.add(DropReason::kKeyBudget);
    return true;
  }
  job->datagrams.emplace_back(from, Bytes(datagram_.begin(), datagram_.end()));
  return true;
}

Engine::KeyJob* Engine::start_key_job(const PublicKey& pk, bool ours) {
  if (key_work_ && key_work_->jobs.size() >= kMaxKeyJobs) return nullptr;
  if (!key_work_) key_work_ = std::make_unique<KeyWork>();
  if (!key_work_->identity) key_work_->identity = std::make_shared<const Identity>(identity_);
  struct Result {
    bool ok = false;
    crypto::SessionKey key{};
  };
  auto result = std::make_shared<Result>();
  // The key of a sender not authenticated yet must not enter the process-wide cache (a datagram that opens adds
  // its pair key, as in place). For a peer we chose to send to, the work caches the Ed25519 key's conversion, as
  // in place, which every node of the process that meets the peer would otherwise pay again (a conversion checks
  // the point: it costs more than the X25519). Its pair key is cached by key_job_done, on the node's thread, as
  // the session is made: cached here, it would let the peer's next datagram open (cached_pair_key) before those
  // held for the job, and our next messages leave before those waiting on it.
  bool offloaded = env_.offload(
      [me = key_work_->identity, pk, result, ours] {
        // A key that does not convert fails here, once (derive_session_key would convert it again).
        result->ok = (!ours || crypto::x25519_of(pk)) && crypto::derive_session_key(*me, pk, result->key, false);
      },
      [this, alive = std::weak_ptr<bool>(key_work_->alive), pk, result] {
        if (!alive.expired()) key_job_done(pk, result->ok, result->key);
      });
  if (!offloaded) {
    if (key_work_->jobs.empty() && !key_work_->derived) key_work_.reset();
    return nullptr;
  }
  ++stats_.key_work_offloaded;
  return &key_work_->jobs[pk];
}

void Engine::key_job_done(const PublicKey& pk, bool ok, const crypto::SessionKey& key) {
  if (!key_work_) return;
  auto it = key_work_->jobs.find(pk);
  if (it == key_work_->jobs.end()) return;
  KeyJob job = std::move(it->second);
  key_work_->jobs.erase(it);
  if (!ok) {  // not a valid key: our messages to it go nowhere (as in place), its datagrams are refused
    if (!job.datagrams.empty()) {
      first_contact_.remember_failed(pk, std::nullopt);
      drops_.add(DropReason::kBadKey, job.datagrams.size());
    }
  } else {
    // Its datagrams first (in order, as they came), each opened with the key as if derived in place then.
    for (auto& [from, bytes] : job.datagrams) {
      key_work_->derived.emplace(pk, key);
      auto r = wire::decode(bytes, config_.network_id);
      datagram_ = bytes;
      // Handled now as if it arrived now: what went to its address meanwhile counts as sent before it
      // (sent_before_arrival), the conservative side for the dial-back self-check.
      ++arrivals_;
      arrived_at_ = env_.now();
      if (r.datagram)
        if (auto* s = std::get_if<wire::Sealed>(&*r.datagram)) handle_sealed(from, *s);
      datagram_ = {};
      key_work_->derived.reset();
    }
    if (!job.sends.empty() && !sessions_.count(pk)) {
      crypto::remember_session_key(identity_, pk, key);  // we chose to talk to it, as derive_session_key would
      new_session(pk, key);
    }
    for (auto& m : job.sends) send_message(m.to, m.message, m.kind);
  }
  // Gone with its alive token once no job is left to hear back (sends above may have started new ones).
  if (key_work_ && key_work_->jobs.empty()) key_work_.reset();
  update_wake();
}

}  // namespace storjnet
