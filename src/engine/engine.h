// Engine: the sans-IO core of a node. It owns the identity, the per-peer sessions (keys, replay windows,
// counters), fragmentation and reassembly, request/response matching with timeouts and retries, first
// contact (HELLO), and the node's timers. It is fed datagrams and wake-ups by a driver and talks to the
// world only through its Environment.
//
// Services (DHT, pubsub, messages, streams) register handlers for their methods and send requests through
// it. All calls must come from the node's thread.
//
// Cancellation: a service owns an Engine::Scope (engine.scope()) and passes it to request, schedule, hello,
// ping and stun, and wraps the continuations it hands to other services with Scope::bind (CallbackScope). When the scope ends (destroyed, or
// end()), the engine drops everything of it at once: its timers are cancelled, its pending RPCs and hellos
// are forgotten (their share of the pending bounds released), its bound functions are forgotten, and none of
// their callbacks ever runs again, not even with an error: a dying service is never called back. The
// callbacks are destroyed, after the engine's state is consistent again, so a Once (src/common/once.h) they
// held runs its user callback then, with its cancelled value: that is how every service keeps its public
// "every callback runs exactly once" promise. Calls without a scope belong to the engine itself (they live as
// long as the engine: for the engine's own work, tests and tools). A scope must not outlive its engine.
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "common/callback_scope.h"
#include "common/compact_bucket.h"
#include "crypto/session.h"
#include "engine/address_guard.h"
#include "engine/first_contact.h"
#include "engine/methods.h"
#include "engine/recent_sends.h"
#include "engine/rtt_estimate.h"
#include "engine/timer_queue.h"
#include "storjnet/contact.h"
#include "storjnet/environment.h"
#include "storjnet/identity.h"
#include "storjnet/keyed_hash.h"
#include "wire/drop_reason.h"
#include "storjnet/config.h"
#include "wire/reassembler.h"

namespace storjnet {
namespace wire {
struct Sealed;
struct CookieReply;
}

enum class RpcStatus { kOk, kTimeout, kRemoteError, kOverloaded };

struct RpcResult {
  RpcStatus status = RpcStatus::kTimeout;
  Bytes payload;      // response body (kOk)
  std::string error;  // reason (kRemoteError)
  Contact from;       // the peer as it answered (its endpoint as seen by us)
  Duration rtt{};     // last attempt's round trip
  bool resent = false;  // answered after the request was sent more than once (a copy, or the answer, was lost)
  bool ok() const { return status == RpcStatus::kOk; }
};
using RpcCallback = std::function<void(RpcResult&&)>;

struct RpcOptions {
  Duration timeout{0};  // 0: config default
  int attempts = 0;     // 0: config default
  // Whether the answer's delay is a round-trip sample (RttEstimate). False for a request whose answer waits
  // for other requests (a dial-back ask, answered after a third node's probe): a long, deliberate wait would
  // inflate every later request's timeout, and so delay the punch that follows an unanswered one.
  bool rtt_sample = true;
  // Called once, when the request is overdue (Engine::answer_due, at least slow_floor), or at its first
  // retransmission if that comes first. A caller with other work may stop waiting for it; its answer may still
  // come. Nothing is sent then: retransmissions keep their own timing. Not called when the attempt ends before
  // the request is overdue and no retransmission follows (a single attempt, or too little time left for another
  // copy to be answered). Called at once (from a timer, never within request()) when an attempt of an earlier
  // request to the same peer at the same address went overdue, requests to that peer are still pending, and no
  // answer came from it since: a dead peer costs one wait, not one per request.
  std::function<void()> on_slow = {};
  Duration slow_floor = std::chrono::milliseconds(100);
};

struct IncomingRequest {
  Contact from;  // authenticated key; endpoint as seen by us
  uint8_t method = 0;
  ByteView payload;
  bool oneway = false;
};

class Engine;

// Answers one request, once. Copyable; answering a one-way request does nothing.
class Reply {
 public:
  Reply(Engine* e, Contact to, uint32_t rpc_id, uint8_t method, bool oneway)
      : engine_(e), to_(std::move(to)), rpc_id_(rpc_id), method_(method), oneway_(oneway) {}
  void ok(ByteView payload) const;
  void error(std::string_view reason) const;

 private:
  Engine* engine_;
  Contact to_;
  uint32_t rpc_id_;
  uint8_t method_;
  bool oneway_;
};

using Handler = std::function<void(const IncomingRequest&, const Reply&)>;

struct EngineStats {
  uint64_t datagrams_in = 0, datagrams_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t retransmits = 0, timeouts = 0, sessions_created = 0, sessions_evicted = 0;
  uint64_t sessions_idled = 0;  // sessions shrunk to their replay floor after EngineConfig::session_idle
  uint64_t key_derivations = 0;  // X25519 work for senders without a session
  uint64_t key_work_offloaded = 0;  // first-contact key work (either direction) done off the node's thread
  uint64_t cookies_sent = 0, cookies_received = 0, challenges_sent = 0, addresses_proven = 0;
  uint64_t answer_challenges = 0;  // address challenges carried on answers (prove_on_answer)
  // Relayed paths (set_via): our datagrams sent wrapped to a relay, and inner datagrams a relay delivered.
  uint64_t relayed_out = 0, relayed_in = 0;
  std::array<uint64_t, kMethodSlots> requests_out{}, requests_in{};
};

class Engine {
 public:
  Engine(Environment& env, Identity identity, EngineConfig config = {});
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // --- driver entry points ---
  void on_datagram(const Endpoint& from, ByteView data);
  void on_wake();

  // --- services ---
  void set_handler(Method m, Handler h);
  // Methods whose requests count against the per-peer request rate (excess dropped as rate_limited).
  void set_rate_limited(Method m, bool on = true) { rate_limited_[static_cast<uint8_t>(m) % kMethodSlots] = on; }
  // Methods whose answers can outweigh 3x a small request (find_node, find_value): their requests go padded to
  // a full datagram until the peer holds a proof of our address, so the answer needs no challenge round trip.
  void set_padded(Method m, bool on = true) { padded_[static_cast<uint8_t>(m) % kMethodSlots] = on; }
  // --- cancellation (see the header comment) ---
  class Scope;
  Scope scope();
  // The calls below that take a Scope start nothing for an ended scope, and throw std::invalid_argument for a
  // scope made by another engine (a programming error: its end would not reach this engine).

  // Sends a request; `cb` runs exactly once (response, remote error, timeout, or overload), unless its scope
  // ends first (then never). It can run before request returns: kOverloaded is answered at once.
  void request(const Contact& to, Method m, ByteView payload, RpcCallback cb, RpcOptions opts = {}) {
    request_in(0, to, m, payload, std::move(cb), std::move(opts));
  }
  void request(const Scope& s, const Contact& to, Method m, ByteView payload, RpcCallback cb, RpcOptions opts = {});
  // Sends a one-way message (no response, no retry).
  void notify(const Contact& to, Method m, ByteView payload);
  // First contact: learns the key of whoever listens at `ep`. The key is NOT yet proven; prove it with an
  // authenticated request before trusting it. cb(nullopt) on timeout. opts.on_slow is called once, when the
  // hello is overdue as a request to a peer never timed is (twice every peer's retransmission timeout, at least
  // kUnknownPeerDue and opts.slow_floor: an address alone has no round trip of its own), or at the first
  // retransmission if that comes first; its answer may still come.
  void hello(const Endpoint& ep, std::function<void(std::optional<Contact>)> cb, RpcOptions opts = {}) {
    hello_in(0, ep, std::move(cb), opts);
  }
  void hello(const Scope& s, const Endpoint& ep, std::function<void(std::optional<Contact>)> cb, RpcOptions opts = {});
  // Built-in RPCs: kademlia_ping answers the responder's id; kademlia_stun answers the [ip, port] seen.
  // As request: once, possibly before the call returns, never after the scope ended.
  void ping(const Contact& to, std::function<void(std::optional<NodeId>)> cb, RpcOptions opts = {}) {
    ping_in(0, to, std::move(cb), opts);
  }
  void ping(const Scope& s, const Contact& to, std::function<void(std::optional<NodeId>)> cb, RpcOptions opts = {});
  void stun(const Contact& to, std::function<void(std::optional<Endpoint>)> cb, RpcOptions opts = {}) {
    stun_in(0, to, std::move(cb), opts);
  }
  void stun(const Scope& s, const Contact& to, std::function<void(std::optional<Endpoint>)> cb, RpcOptions opts = {});
  // Called for every authenticated message (request or response) with the sender as seen; is_response is also
  // true for an address echo that proved the sender's address (it receives there, as an answer shows).
  void set_on_contact(std::function<void(const Contact&, bool is_response)> f) { on_contact_ = std::move(f); }
  // Called when a request's attempt to `to` timed out and it is retransmitted (with the request's method):
  // hole punching (src/dht/punch.h) starts there. The hook may send; it must not fail the request.
  void set_on_unanswered(std::function<void(const Contact&, uint8_t method)> f) { on_unanswered_ = std::move(f); }
  // Moves the outstanding requests to `key` to endpoint `ep` and retransmits them there now (an authenticated
  // datagram from `key` came from `ep`: a punched hole, or a symmetric NAT's new port). Returns how many.
  size_t redirect(const PublicKey& key, const Endpoint& ep);

  // --- relayed paths (docs/protocol.md 5.3) ---
  // While `key` has a path via `relay`, every datagram this engine seals for `key` goes, unchanged, inside a
  // one-way relay_forward message to `relay` (whatever endpoint the contact names), and the relay hands it on:
  // services above see an ordinary peer. A path ends when an authenticated datagram from `key` arrives
  // directly (that path works), on clear_via, when nothing came through it for kViaIdle, or when evicted
  // (at most kMaxVia paths). `relay` must not be `key` itself. Once a direct datagram ended it, a send to `key`
  // at the relay's endpoint (a contact kept from the relayed exchange) goes to the address `key` was last heard
  // from directly, for kViaIdle after that.
  static constexpr Duration kViaIdle = std::chrono::seconds(120);
  static constexpr size_t kMaxVia = 1024;
  // First-contact key work off the node's thread (Environment::offload; KeyJob below): peers whose pair key is
  // being derived at once, and our messages or their datagrams waiting per such peer.
  static constexpr size_t kMaxKeyJobs = 64;
  static constexpr size_t kMaxKeyJobQueue = 32;
  void set_via(const PublicKey& key, const Contact& relay);
  void clear_via(const PublicKey& key) { via_.erase(key); }
  std::optional<Contact> via(const PublicKey& key) const;
  // Whether the peer's authenticated datagrams have come through its current relayed path (set_via to another
  // relay starts afresh).
  bool heard_via(const PublicKey& key) const;
  size_t via_count() const { return via_.size(); }
  // Every live relayed path (idle ones, which the next send to their peer ends, left out): (peer key, relay).
  std::vector<std::pair<PublicKey, Contact>> via_paths() const;
  // A relay (authenticated as `relay`) delivered `inner`, a sealed datagram for us: it is handled as if it
  // had arrived from `relay.endpoint`, and its sender is then answered through `relay` (set_via). Only a
  // sealed datagram of a peer other than the relay is taken, never one nested in another; the caller (the
  // relay service) decides which relays it accepts deliveries from. Its sender is not reported through
  // set_on_contact: a relayed peer is not a direct contact. Returns whether it was accepted for decryption.
  // A peer whose relayed path a direct datagram ended, heard directly within kDirectHold, keeps its direct
  // path: a relayed datagram it sent before (late, or duplicated by the relay) is handled as if it came from
  // its last direct address, and does not set the path again.
  bool on_relayed(const Contact& relay, ByteView inner);
  static constexpr Duration kDirectHold = std::chrono::seconds(5);
  // Where a datagram sealed for `to` goes now, for diagnostics (/api/status streams): "relayed via <relay
  // address>" (" unheard" while nothing came back through it), "direct <address> after a relay, heard <ms> ms
  // ago" (a relayed path a direct datagram ended), or "direct <address>".
  std::string route(const Contact& to) const;

  // --- timers ---
  // `fn` runs once after `delay` (never before schedule returns), unless cancelled or its scope ends first.
  TimerId schedule(Duration delay, std::function<void()> fn) { return schedule_in(0, delay, std::move(fn)); }
  TimerId schedule(const Scope& s, Duration delay, std::function<void()> fn);
  void cancel(TimerId& id) { timers_.cancel(id); }
  size_t timer_count() const { return timers_.size(); }

  Environment& env() { return env_; }
  TimePoint now() { return env_.now(); }
  const Identity& identity() const { return identity_; }
  const NodeId& id() const { return identity_.id(); }
  const EngineConfig& config() const { return config_; }
  const DropCounters& drops() const { return drops_; }
  DropCounters& drops() { return drops_; }
  const EngineStats& stats() const { return stats_; }
  size_t session_count() const { return sessions_.size(); }
  // Peers whose session was shrunk (idle or evicted) to its replay floor.
  size_t dormant_sessions() const { return dormant_.size(); }
  size_t pending_rpcs() const { return pending_.size(); }
  size_t reassembly_bytes() const { return reassembler_.bytes_in_use(); }
  size_t held_bytes() const { return guard_.held_bytes(); }
  // The smoothed round trip of every peer's answers (docs/protocol.md 3.1); zero before the first.
  Duration round_trip() const { return rtt_all_.srtt(); }
  // True once `key` proved it receives at `ep` (docs/protocol.md, "Threat model").
  bool address_proven(const Endpoint& ep, const PublicKey& key) const { return guard_.proven(ep, key); }
  // Challenges `to`'s address unless it is proven or was challenged within one retransmission interval: its
  // echo proves it, so a request it retransmits finds it proven (used by services serving proven peers only).
  void challenge(const Contact& to);
  // For the contact hook or the handler of a request: its answer, if sent before the handler returns, carries
  // an address challenge (a PROVING_RESPONSE, docs/protocol.md 3), so the requester's echo proves `from`'s
  // address with one datagram and no request of ours. False (nothing asked) unless a request from `from`
  // (direct, not relayed) is being handled and its address is unproven.
  bool prove_on_answer(const Contact& from);
  // For a handler: whether this node sent anything to `from`'s IP address (any port) within
  // RecentSends::kWindow before the datagram being handled arrived (dial-back self-check).
  bool sent_before_arrival(const Endpoint& from) const { return recent_sends_.sent_before(from, arrived_at_, arrivals_); }

  // Epoch persistence: the epoch in nonces only ever grows, across restarts and clock steps. `floor` is the
  // high-water mark persisted by an earlier run (0: none); `persist` is called (rarely) with a new mark
  // EngineConfig::epoch_reserve ahead of the epochs in use, before any of them is used.
  void set_epoch_floor(uint64_t floor, std::function<void(uint64_t)> persist);
  uint64_t last_epoch() const { return last_epoch_; }

 private:
  friend class Reply;
  // One per peer talked to lately: a node holds hundreds while it joins, so every field counts. The peer's
  // node id is not kept (it is derived from the key, Identity::id_of, for each authenticated datagram); the
  // budgets are CompactBuckets and the challenge time a millisecond stamp. Fields ordered to leave no padding:
  // 160 bytes (the replay window's far bits aside), one 208-byte heap chunk with its key and the map's link.
  struct Session {
    crypto::SessionKey key{};
    uint32_t next_msg_id = 0;
    uint32_t challenged_ms = 0;  // last address challenge sent for the request budget (when `challenged`)
    crypto::ReplayWindow rx;
    uint64_t tx_epoch = 0, tx_salt = 0, tx_counter = 0;
    TimePoint last_used{};
    CompactBucket requests;  // per-peer request rate
    CompactBucket refusals;  // "rate limited" answers to this peer
    CompactBucket unproven;  // requests answered while the peer's address is unproven
    RttEstimate rtt;         // answers from this peer (lost when the session shrinks)
    bool challenged = false;
    bool shown_address = false;  // we answered or echoed this peer: it has had our address proven

    // Whether an address challenge may go out now: none sent yet, or the last `retry` or more ago. Then
    // challenged_now records it.
    bool challenge_due(TimePoint now, Duration retry) const {
      auto since = std::chrono::milliseconds(CompactBucket::stamp(now) - challenged_ms);
      return !challenged || since >= retry;
    }
    void challenged_now(TimePoint now) {
      challenged = true;
      challenged_ms = CompactBucket::stamp(now);
    }
  };
  struct Pending {
    Contact to;
    Bytes message;
    uint32_t msg_id = 0;
    int attempts_left = 0;
    Duration attempt_timeout{};
    TimePoint sent_at{};
    TimePoint deadline{};  // the request's total timeout
    bool resent = false;   // sent more than once: its answer is no RTT sample (RttEstimate)
    bool rtt_sample = true;  // RpcOptions::rtt_sample
    bool slow_timer = false;  // `timer` is set for on_slow, before the attempt's own timeout
    TimerId timer;
    RpcCallback cb;
    std::function<void()> on_slow;  // RpcOptions::on_slow, until called
    uint64_t scope = 0;
  };
  struct PendingHello {
    Endpoint ep;
    int attempts_left = 0;
    Duration attempt_timeout{};
    TimerId timer;
    // `timer` is set for on_slow (unknown_peer_due after the send), before the attempt's end at `attempt_end`.
    bool slow_timer = false;
    TimePoint attempt_end{};
    std::function<void(std::optional<Contact>)> cb;
    std::function<void()> on_slow;  // RpcOptions::on_slow, until called
    uint64_t scope = 0;
  };
  enum MsgType : uint8_t {  // msg::Type
    kRequest = 0, kResponse = 1, kError = 2, kOneway = 3, kChallenge = 4, kEcho = 5, kProvingResponse = 6
  };
  // What a send is, for the anti-amplification budget: our own request or one-way message; an answer
  // (held when over budget); or a challenge/echo (never held).
  enum class SendKind { kInitiative, kAnswer, kControl };

  // What outlives a shrunk session (docs/protocol.md 1.4, "Idle sessions"): its replay floor, so no datagram
  // of the old session is accepted again, and whether it had our address proven. Held by the peer key's 64-bit
  // keyed fingerprint (DormantMap) in one flat table: 40 bytes a record, not a 96-byte node with a 32-byte key.
  // Two peers whose fingerprints collide (about n^2 / 2^65 among n records; a peer cannot aim at the process's
  // secret key) share one floor: a newer one can refuse the other's datagrams of an older session, which the
  // peer then re-makes, as after any lost floor.
  struct Dormant {  // 32 bytes
    uint64_t epoch = 0, salt = 0, top = 0;
    uint32_t last_used_s = 0;  // whole seconds (the least recently used are evicted first)
    bool has_rx = false, shown_address = false;
    TimePoint last_used() const { return std::chrono::seconds(last_used_s); }
    crypto::ReplayWindow::Floor floor() const { return {epoch, salt, top, has_rx}; }
  };
  using SessionMap = std::unordered_map<PublicKey, Session, KeyedHash>;
  using DormantMap = absl::flat_hash_map<uint64_t, Dormant>;  // by KeyedHash of the peer's key

  // The work of the public calls, for scope `scope` (0: the engine's own).
  void request_in(uint64_t scope, const Contact& to, Method m, ByteView payload, RpcCallback cb, RpcOptions opts);
  void hello_in(uint64_t scope, const Endpoint& ep, std::function<void(std::optional<Contact>)> cb, RpcOptions opts);
  void ping_in(uint64_t scope, const Contact& to, std::function<void(std::optional<NodeId>)> cb, RpcOptions opts);
  void stun_in(uint64_t scope, const Contact& to, std::function<void(std::optional<Endpoint>)> cb, RpcOptions opts);
  TimerId schedule_in(uint64_t scope, Duration delay, std::function<void()> fn);
  void end_scope(uint64_t scope);  // Scope::end
  bool usable(const Scope& s) const;  // active; throws std::invalid_argument for another engine's scope
  Session* session_for_send(const PublicKey& pk);
  Session* new_session(const PublicKey& pk, const crypto::SessionKey& key);
  void evict_sessions();
  SessionMap::iterator retire_session(SessionMap::iterator it);  // shrinks it to a Dormant record
  void sweep_idle_sessions();
  bool fresh_nonce(const crypto::ReplayWindow& rx, uint64_t epoch, uint64_t salt, uint64_t counter);
  // Sends `message` if the address budget allows, else holds it (kInitiative, kAnswer) and challenges the
  // address. A multi-fragment message gets a msg_id stored in *msg_id (0: assign one), so a retransmission
  // reuses it and the receiver's partial reassembly fills in only what was lost.
  void send_message(const Contact& to, ByteView message, SendKind kind, uint32_t* msg_id = nullptr);
  void send_frame(Session& s, const Contact& to, ByteView frame);
  void send_challenge(const Contact& to);
  void transmit(const Endpoint& to, ByteView datagram);  // counts, remembers (RecentSends) and sends
  void flush_held(const Contact& to);
  void sweep_held();
  void handle_sealed(const Endpoint& from, const wire::Sealed& s, const Contact* relay = nullptr);
  // Authenticates a datagram from a sender without a session, within the first-contact budget. False also
  // when the datagram is held for key work done off the node's thread (then handled when it is done).
  bool open_first_contact(const Endpoint& from, const wire::Sealed& s, crypto::SessionKey& key, bool relayed);

  // First-contact key work off the node's thread (Environment::offload; src/engine/engine_key_work.cc). While a
  // peer's pair key is being derived, our messages to it and its first datagrams wait here, in order, and go
  // (are handled) once it is known. Bounded: kMaxKeyJobs peers at once (beyond, the work is done in place, as
  // without offload), kMaxKeyJobQueue messages and datagrams per peer (beyond, dropped and counted).
  struct KeyJob {
    struct Send {
      Contact to;
      Bytes message;
      SendKind kind;
    };
    std::vector<Send> sends;
    std::vector<std::pair<Endpoint, Bytes>> datagrams;
  };
  bool offload_send(const Contact& given, const Contact& to, ByteView message, SendKind kind);  // true: queued
  bool hold_for_key(const Endpoint& from, const PublicKey& sender, bool start);  // true: held (datagram_)
  bool key_work_for(const PublicKey& pk) const { return key_work_ && key_work_->jobs.count(pk); }
  // nullptr: the driver does not offload, or no room. `ours`: a peer we chose to send to, whose key conversion the
  // work caches as in place (a sender not authenticated yet: nothing cached; the pair key: key_job_done).
  KeyJob* start_key_job(const PublicKey& pk, bool ours);
  void key_job_done(const PublicKey& pk, bool ok, const crypto::SessionKey& key);
  void handle_cookie_reply(const Endpoint& from, const wire::CookieReply& c);
  void handle_message(const Contact& from, ByteView message, bool relayed = false);
  void release_share(const Contact& to);  // a pending request to `to` ended
  void respond(const Contact& to, uint32_t rpc_id, uint8_t method, MsgType type, ByteView payload);
  void on_rpc_timeout(uint32_t rpc_id);
  // The wait before a request's attempt to `to` counts as lost: the configured share of its total time
  // (total / attempts), longer when `to`'s (else any peer's) RttEstimate says its answers take longer.
  Duration attempt_timeout(const Contact& to, Duration share) const;
  // When an answer from `to` is overdue (RpcOptions::on_slow). From its own answers: its retransmission timeout
  // (RFC 6298: srtt + 4 rttvar) and at least twice its smoothed round trip, so steady round trips (a small rttvar)
  // leave room for jitter. Without them: twice every peer's retransmission timeout, and at least kUnknownPeerDue,
  // as a peer never timed may be farther than those we talk to most.
  Duration answer_due(const Contact& to) const;
  Duration unknown_peer_due() const;  // answer_due of a peer never timed (a hello's, too)
  static constexpr Duration kUnknownPeerDue = std::chrono::milliseconds(250);
  void rtt_sampled(const Contact& from, Duration rtt);
  void on_hello_timeout(uint64_t challenge);
  void send_hello(const PendingHello& h, uint64_t challenge);
  bool take_token(Session& s);
  bool unproven_request_allowed(Session& s, const Contact& from);
  void sweep_reassembly();
  void update_wake();
  uint64_t next_epoch();

  Environment& env_;
  Identity identity_;
  EngineConfig config_;
  SessionMap sessions_;  // keys chosen by peers: keyed hash
  RttEstimate rtt_all_;  // answers from every peer: the estimate for a peer without one of its own
  DormantMap dormant_;
  TimerId idle_sweep_;
  std::unordered_map<uint32_t, Pending> pending_;
  std::unordered_map<uint64_t, PendingHello> hellos_;
  // The handler of method m is handlers_[handler_of_[m] - 1] (0: none): a node serves about 17 of the 64
  // method codes, and 64 empty std::functions would cost 2 KB a node.
  std::array<uint8_t, kMethodSlots> handler_of_{};
  std::vector<Handler> handlers_;
  std::array<bool, kMethodSlots> rate_limited_{};
  std::array<bool, kMethodSlots> padded_{};
  std::function<void(const Contact&, bool)> on_contact_;
  std::function<void(const Contact&, uint8_t)> on_unanswered_;
  wire::Reassembler reassembler_;
  TimerId reassembly_sweep_;
  TimerQueue timers_;
  TimePoint requested_wake_ = TimerQueue::kNever;
  uint64_t last_epoch_ = 0;
  uint64_t epoch_reserved_ = 0;  // persisted high-water mark (with epoch_persist_)
  std::function<void(uint64_t)> epoch_persist_;
  DropCounters drops_;
  EngineStats stats_;
  AddressGuard guard_;
  TimerId hold_sweep_;
  FirstContact first_contact_;
  struct KeptCookie {
    wire::Cookie cookie;
    TimePoint until;
  };
  std::unordered_map<Endpoint, KeptCookie> cookies_;  // received from peers under load, attached when sending
  struct PeerPending {  // the requests pending to one peer
    uint32_t count = 0;
    // A request to `overdue_at` went unanswered past its due time (its on_slow told, or an attempt's time out) and
    // no answer came from the peer since that attempt was sent: a new request to it there is overdue at once
    // (RpcOptions::on_slow). Requests that wait on others by design (rtt_sample false) mark nothing.
    bool overdue = false;
    Endpoint overdue_at{};
    TimePoint answered = TimePoint::min();  // the peer's last answer (or redirect) while requests to it were pending
  };
  std::unordered_map<PublicKey, PeerPending, KeyedHash> pending_per_peer_;
  std::unordered_map<Endpoint::Prefix, uint32_t> pending_per_prefix_;
  Bytes scratch_plain_, scratch_frame_;
  struct KeyWork {
    std::unordered_map<PublicKey, KeyJob, KeyedHash> jobs;
    std::optional<std::pair<PublicKey, crypto::SessionKey>> derived;  // a done job's key, while its datagrams run
    std::shared_ptr<const Identity> identity;  // what the work runs with, off the node's thread
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);  // work ending after the engine is gone
  };
  std::unique_ptr<KeyWork> key_work_;  // while jobs run (none most of the time)
  ByteView datagram_;  // the direct datagram being handled (on_datagram), for hold_for_key
  RecentSends recent_sends_;
  uint64_t arrivals_ = 0;   // datagrams received so far (the number of the one being handled)
  TimePoint arrived_at_{};  // when the datagram being handled arrived
  uint64_t next_scope_ = 1;
  struct Via {
    Contact relay;
    TimePoint last_used{};  // set, or a datagram came through it
    bool heard = false;     // an authenticated datagram from the peer came through this relay
    bool live(TimePoint now) const { return now - last_used < kViaIdle; }  // else the next send ends it
  };
  std::unordered_map<PublicKey, Via, KeyedHash> via_;
  // Peers whose relayed path a direct datagram ended: their last direct datagram since, and the endpoint of
  // the relay that carried the path (at most kMaxVia, each kept until kViaIdle after the last).
  struct Direct {
    Endpoint from;
    TimePoint at{};
    Endpoint relay;
  };
  // `to`, or, when `to` names a peer at the endpoint of the relay that carried its ended relayed path (a
  // contact a service kept from the relayed exchange), the peer at its direct address: a datagram sealed for
  // the peer is never for that relay.
  Contact direct_target(const Contact& to) const;
  std::unordered_map<PublicKey, Direct, KeyedHash> direct_after_via_;
  bool in_relayed_ = false;  // handling a relayed datagram (no nesting)
  // The direct request being handled (its contact hook and handler), for prove_on_answer; prove_answer_: its
  // answer carries an address challenge.
  const Contact* answering_ = nullptr;
  uint32_t answering_rpc_ = 0;
  bool prove_answer_ = false;
};

// A service's share of the engine: what it started through the engine ends with it (see the header comment).
// Movable, not copyable; a default-constructed or moved-from Scope is ended. Ending it never runs any of its
// callbacks; it destroys them (a Once among them then runs its user callback with the cancelled value).
class Engine::Scope {
 public:
  Scope() { bound_.end(); }
  Scope(Scope&& o) noexcept : engine_(std::exchange(o.engine_, nullptr)), id_(std::exchange(o.id_, 0)), bound_(std::move(o.bound_)) {}
  Scope& operator=(Scope&& o) noexcept {
    if (this != &o) {
      end();
      engine_ = std::exchange(o.engine_, nullptr);
      id_ = std::exchange(o.id_, 0);
      bound_ = std::move(o.bound_);
    }
    return *this;
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope() { end(); }

  // Ends the scope now (idempotent): the engine's work of it first, then its bound functions.
  void end();
  bool active() const { return engine_ != nullptr; }
  // A continuation for another service that lives no longer than the scope (CallbackScope::bind).
  template <class... A, class F>
  std::function<void(A...)> bind(F&& f) const {
    return bound_.bind<A...>(std::forward<F>(f));
  }
  size_t bound_count() const { return bound_.size(); }

 private:
  friend class Engine;
  Scope(Engine* e, uint64_t id) : engine_(e), id_(id) {}

  Engine* engine_ = nullptr;
  uint64_t id_ = 0;
  CallbackScope bound_;
};

}  // namespace storjnet
