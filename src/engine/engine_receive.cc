// Engine, receiving (src/engine/engine.h): datagrams in. HELLO and cookie replies, sealed datagrams (known
// sessions, replay floors of shrunk ones, first contacts within their budget), fragment reassembly, and the
// messages they carry: requests to their handlers, responses to their pending RPCs.
#include <algorithm>
#include <cstring>

#include "common/msgpack_util.h"
#include "crypto/key_cache.h"
#include "engine/engine.h"
#include "engine/message.h"
#include "wire/datagram.h"
#include "wire/frame.h"

namespace storjnet {

void Engine::on_datagram(const Endpoint& from, ByteView data) {
  ++arrivals_;
  arrived_at_ = env_.now();
  ++stats_.datagrams_in;
  stats_.bytes_in += data.size();
  auto r = wire::decode(data, config_.network_id);
  if (!r.datagram) {
    drops_.add(r.drop);
    return;
  }
  if (auto* h = std::get_if<wire::Hello>(&*r.datagram)) {
    if (h->sender == identity_.public_key()) {
      drops_.add(DropReason::kBadKey);
      return;
    }
    // Stateless answer, smaller than the (padded) hello: no amplification, nothing kept.
    Bytes dg = wire::encode_hello_reply(config_.network_id, {identity_.public_key(), h->challenge});
    transmit(from, dg);
  } else if (auto* hr = std::get_if<wire::HelloReply>(&*r.datagram)) {
    auto it = hellos_.find(hr->challenge);
    if (it == hellos_.end() || it->second.ep != from) {
      drops_.add(DropReason::kUnexpectedResponse);
    } else if (hr->responder == identity_.public_key()) {
      drops_.add(DropReason::kBadKey);
    } else {
      auto cb = std::move(it->second.cb);
      timers_.cancel(it->second.timer);
      hellos_.erase(it);
      cb(Contact::from_key(hr->responder, from));
    }
  } else if (auto* c = std::get_if<wire::CookieReply>(&*r.datagram)) {
    handle_cookie_reply(from, *c);
  } else {
    datagram_ = data;
    handle_sealed(from, std::get<wire::Sealed>(*r.datagram));
    datagram_ = {};
  }
  update_wake();
}

void Engine::handle_sealed(const Endpoint& from, const wire::Sealed& s, const Contact* relay) {
  if (s.sender == identity_.public_key()) {
    drops_.add(DropReason::kBadKey);
    return;
  }
  uint64_t epoch, salt, counter;
  wire::split_nonce(s.nonce, epoch, salt, counter);
  Session* sess = nullptr;
  auto it = sessions_.find(s.sender);
  if (it != sessions_.end()) {
    sess = &it->second;
    if (!fresh_nonce(sess->rx, epoch, salt, counter)) return;
    if (!crypto::open(sess->key, s.nonce, s.header, s.ciphertext, scratch_plain_)) {
      drops_.add(DropReason::kAuthFailed);
      return;
    }
  } else {
    // A shrunk session's floor is checked first: a replay of its datagrams costs no key work.
    if (auto d = dormant_.find(KeyedHash{}(s.sender));
        d != dormant_.end() && !fresh_nonce(crypto::ReplayWindow::from_floor(d->second.floor()), epoch, salt, counter))
      return;
    crypto::SessionKey key;
    if (!open_first_contact(from, s, key, relay != nullptr)) return;
    crypto::remember_session_key(identity_, s.sender, key);
    first_contact_.forget_failed(s.sender);
    sess = new_session(s.sender, key);
  }
  sess->rx.accept(epoch, salt, counter);
  sess->last_used = env_.now();
  guard_.received(from, s.sender, s.size(), env_.now());
  Contact contact{Identity::id_of(s.sender), s.sender, from};
  // The path it came by is the one to answer by: through its relay, or (a direct datagram) directly; but a
  // relayed datagram right after direct ones is late (sent before the direct path worked): it is answered
  // at the direct address, and the direct path stays.
  TimePoint now = env_.now();
  auto direct = direct_after_via_.find(s.sender);
  if (direct != direct_after_via_.end() && now - direct->second.at >= kViaIdle) {
    direct_after_via_.erase(direct);
    direct = direct_after_via_.end();
  }
  bool held = direct != direct_after_via_.end() && now - direct->second.at < kDirectHold;
  if (relay) {
    if (held && !via_.count(s.sender)) {
      contact.endpoint = direct->second.from;
    } else {
      set_via(s.sender, *relay);
      if (auto v = via_.find(s.sender); v != via_.end()) v->second.heard = true;
    }
  } else if (direct != direct_after_via_.end()) {
    via_.erase(s.sender);
    direct->second.from = from;
    direct->second.at = now;
  } else if (auto v = via_.find(s.sender); v != via_.end()) {
    if (direct_after_via_.size() >= kMaxVia)
      std::erase_if(direct_after_via_, [&](const auto& kv) { return now - kv.second.at >= kViaIdle; });
    if (direct_after_via_.size() >= kMaxVia) direct_after_via_.erase(direct_after_via_.begin());
    direct_after_via_[s.sender] = Direct{from, now, v->second.relay.endpoint};
    via_.erase(v);
  }
  bool relayed = relay != nullptr;

  auto frame = wire::decode_frame(scratch_plain_);
  if (!frame) {
    drops_.add(DropReason::kBadFrame);
    return;
  }
  if (frame->whole()) {
    Bytes message(frame->body.begin(), frame->body.end());
    handle_message(contact, message, relayed);
    return;
  }
  Bytes message;
  switch (reassembler_.add(contact.id, from, frame->msg_id, frame->index, frame->count, frame->body, env_.now(),
                           message, drops_)) {
    case wire::Reassembler::Result::kComplete: handle_message(contact, message, relayed); break;
    case wire::Reassembler::Result::kIncomplete:
      if (!reassembly_sweep_) reassembly_sweep_ = schedule(config_.reassembly.timeout, [this] { sweep_reassembly(); });
      break;
    case wire::Reassembler::Result::kDuplicate: drops_.add(DropReason::kReplay); break;
    case wire::Reassembler::Result::kInvalid: drops_.add(DropReason::kBadFrame); break;
    case wire::Reassembler::Result::kOverLimit: drops_.add(DropReason::kReassemblyLimit); break;
    case wire::Reassembler::Result::kShortFragment: drops_.add(DropReason::kShortFragment); break;
  }
}

// A relay_deliver from `relay` (the relay service checked it is one of ours): its inner datagram is handled as
// if it came from the relay's endpoint, so the sender is answered the same way.
bool Engine::on_relayed(const Contact& relay, ByteView inner) {
  if (in_relayed_) {
    drops_.add(DropReason::kRelayRefused);
    return false;
  }
  auto r = wire::decode(inner, config_.network_id);
  const wire::Sealed* s = r.datagram ? std::get_if<wire::Sealed>(&*r.datagram) : nullptr;
  if (!s || s->sender == relay.key) {
    drops_.add(r.datagram ? DropReason::kRelayRefused : r.drop);
    return false;
  }
  ++stats_.relayed_in;
  in_relayed_ = true;
  handle_sealed(relay.endpoint, *s, &relay);
  in_relayed_ = false;
  return true;
}

bool Engine::open_first_contact(const Endpoint& from, const wire::Sealed& s, crypto::SessionKey& key, bool relayed) {
  // Unknown sender: authenticate before keeping any state for it. The key work (curve operations) is paid
  // from the first-contact budget unless the key is already known: cached pair key, or failed before.
  const std::optional<crypto::SessionKey>* failed = first_contact_.failed(s.sender);
  if (failed && !*failed) {
    drops_.add(DropReason::kBadKey);
    return false;
  }
  if (key_work_ && key_work_->derived && key_work_->derived->first == s.sender) {
    key = key_work_->derived->second;  // key work done off the node's thread, for this datagram (key_job_done)
  } else if (failed) {
    key = **failed;
  } else if (!crypto::cached_pair_key(identity_.public_key(), s.sender, key)) {
    // Key work for this sender under way: the datagram waits for it (its first one paid the budget).
    if (!relayed && key_work_for(s.sender)) {
      hold_for_key(from, s.sender, false);
      return false;
    }
    switch (first_contact_.admit(from, s.cookie)) {
      case FirstContact::Admit::kWork: break;
      case FirstContact::Admit::kSendCookie:
      case FirstContact::Admit::kBadCookie: {
        if (relayed) {  // a cookie reply would go to the relay, which cannot use it: dropped
          drops_.add(DropReason::kKeyBudget);
          return false;
        }
        // Stateless, and smaller than the datagram it answers: no amplification, nothing kept.
        wire::CookieReply c{identity_.public_key(), s.nonce, first_contact_.cookie_for(from)};
        Bytes dg = wire::encode_cookie_reply(config_.network_id, c);
        ++stats_.cookies_sent;
        transmit(from, dg);
        drops_.add(s.cookie ? DropReason::kBadCookie : DropReason::kKeyBudget);
        return false;
      }
      case FirstContact::Admit::kDrop: drops_.add(DropReason::kKeyBudget); return false;
      case FirstContact::Admit::kUnanswered: drops_.add(DropReason::kCookieBudget); return false;
    }
    ++stats_.key_derivations;
    if (!relayed && hold_for_key(from, s.sender, true)) return false;
    if (!crypto::derive_session_key(identity_, s.sender, key, /*cache=*/false)) {
      first_contact_.remember_failed(s.sender, std::nullopt);
      drops_.add(DropReason::kBadKey);
      return false;
    }
  }
  if (!crypto::open(key, s.nonce, s.header, s.ciphertext, scratch_plain_)) {
    if (!failed) first_contact_.remember_failed(s.sender, key);
    drops_.add(DropReason::kAuthFailed);
    return false;
  }
  return true;
}

void Engine::handle_cookie_reply(const Endpoint& from, const wire::CookieReply& c) {
  // Accepted only when it echoes the nonce of a datagram our current session with the responder sent: an
  // off-path party cannot know the session's salt.
  uint64_t epoch, salt, counter;
  wire::split_nonce(c.nonce, epoch, salt, counter);
  auto it = sessions_.find(c.responder);
  if (it == sessions_.end() || it->second.tx_epoch != epoch || it->second.tx_salt != salt ||
      counter >= it->second.tx_counter) {
    drops_.add(DropReason::kBadCookie);
    return;
  }
  ++stats_.cookies_received;
  if (cookies_.size() >= config_.cookies_kept) cookies_.clear();
  cookies_[from] = KeptCookie{c.cookie, env_.now() + config_.cookie_keep};
  // Resend at once what waits for this peer there (the retry schedule is unchanged).
  for (auto& [id, p] : pending_)
    if (p.to.key == c.responder && p.to.endpoint == from) send_message(p.to, p.message, SendKind::kInitiative, &p.msg_id);
}

void Engine::sweep_reassembly() {
  reassembly_sweep_ = TimerId{};
  drops_.add(DropReason::kReassemblyTimeout, reassembler_.expire(env_.now()));
  if (!reassembler_.empty())
    reassembly_sweep_ = schedule(config_.reassembly.timeout / 2, [this] { sweep_reassembly(); });
}

void Engine::handle_message(const Contact& from, ByteView m, bool relayed) {
  if (m.size() < msg::kHeader || m[0] > kProvingResponse) {
    drops_.add(DropReason::kBadMessage);
    return;
  }
  uint8_t type = m[0];
  uint32_t rpc_id = wire::get_u32(m.data() + 1);
  uint8_t method = m[5];
  ByteView payload = m.subspan(msg::kHeader);

  if (type == kChallenge || type == kEcho) {
    if (payload.size() != 8) {
      drops_.add(DropReason::kBadMessage);
      return;
    }
    if (type == kChallenge) {
      send_message(from, msg::token(kEcho, wire::get_u64(payload.data())), SendKind::kControl);
    } else if (guard_.echo(from.endpoint, from.key, wire::get_u64(payload.data()), env_.now())) {
      ++stats_.addresses_proven;
      flush_held(from);
      // It receives where it sends from, as an answer would show: the contact hook hears it as answered (a
      // newcomer whose answer carried the challenge, prove_on_answer, enters the routing table now).
      if (on_contact_ && !relayed) on_contact_(from, true);
    } else {
      drops_.add(DropReason::kBadEcho);
    }
    return;
  }
  if (type == kProvingResponse) {  // a response with an address challenge: echoed, then handled as a response
    if (payload.size() < 8) {
      drops_.add(DropReason::kBadMessage);
      return;
    }
    // Echoed only when it answers one of our requests to that peer: nothing else makes us send.
    auto p = pending_.find(rpc_id);
    if (!relayed && p != pending_.end() && p->second.to.key == from.key)
      send_message(from, msg::token(kEcho, wire::get_u64(payload.data())), SendKind::kControl);
    type = kResponse;
    payload = payload.subspan(8);
  }

  if (type == kRequest || type == kOneway) {
    if (method >= kMethodSlots) {
      drops_.add(DropReason::kUnknownMethod);
      if (type == kRequest) respond(from, rpc_id, method, kError, as_bytes("unknown method"));
      return;
    }
    auto it = sessions_.find(from.key);
    if (type == kRequest && it != sessions_.end() && !unproven_request_allowed(it->second, from)) {
      drops_.add(DropReason::kUnprovenLimit);
      return;
    }
    if (rate_limited_[method] && it != sessions_.end() && !take_token(it->second)) {
      drops_.add(DropReason::kRateLimited);
      // Say so, but not to every request of a flood: each answer costs a seal and a send.
      if (type == kRequest && it->second.refusals.take(config_.refusal_rate, config_.refusal_rate, env_.now()))
        respond(from, rpc_id, method, kError, as_bytes("rate limited"));
      return;
    }
    // prove_on_answer applies to this request while its hook and handler run. A handler can nest another
    // message (a relay delivery, on_relayed): the outer request's state comes back when that one is done.
    struct Answering {
      Engine& e;
      const Contact* from;
      uint32_t rpc;
      bool prove;
      ~Answering() {
        e.answering_ = from;
        e.answering_rpc_ = rpc;
        e.prove_answer_ = prove;
      }
    } answering{*this, answering_, answering_rpc_, prove_answer_};
    answering_ = type == kRequest && !relayed ? &from : nullptr;
    answering_rpc_ = rpc_id;
    prove_answer_ = false;
    if (on_contact_ && !relayed) on_contact_(from, false);
    ++stats_.requests_in[method % kMethodSlots];
    uint8_t slot = handler_of_[method];
    if (slot == 0 || !handlers_[slot - 1]) {
      drops_.add(DropReason::kUnknownMethod);
      if (type == kRequest) respond(from, rpc_id, method, kError, as_bytes("unknown method"));
      return;
    }
    handlers_[slot - 1](IncomingRequest{from, method, payload, type == kOneway},
                        Reply(this, from, rpc_id, method, type == kOneway));
    return;
  }
  // Any authenticated response proves the sender alive, even a late one whose request already timed out
  // (under load that is common; not counting it would evict healthy contacts).
  if (on_contact_ && !relayed) on_contact_(from, true);
  if (auto peer = pending_per_peer_.find(from.key); peer != pending_per_peer_.end()) {  // relayed too: it answers
    peer->second.overdue = false;
    peer->second.answered = env_.now();
  }
  auto it = pending_.find(rpc_id);
  if (it == pending_.end() || it->second.to.key != from.key) {
    drops_.add(DropReason::kUnexpectedResponse);
    return;
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  release_share(p.to);
  timers_.cancel(p.timer);
  // The rpc id is unguessable and went only to p.to.endpoint: an answer from there proves the address.
  if (p.to.endpoint == from.endpoint && !guard_.proven(from.endpoint, from.key)) {
    guard_.prove(from.endpoint, from.key, env_.now());
    ++stats_.addresses_proven;
    flush_held(from);
  }
  RpcResult r;
  r.from = from;
  r.rtt = env_.now() - p.sent_at;
  r.resent = p.resent;
  if (!p.resent && p.rtt_sample) rtt_sampled(from, r.rtt);
  if (type == kResponse) {
    r.status = RpcStatus::kOk;
    r.payload.assign(payload.begin(), payload.end());
  } else {
    r.status = RpcStatus::kRemoteError;
    r.error.assign(payload.begin(), payload.end());
  }
  p.cb(std::move(r));
}

}  // namespace storjnet
