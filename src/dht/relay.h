// Relay: sealed datagrams relayed through a public node when neither a direct path nor a punched hole works
// (docs/protocol.md 5.3). Three roles, three methods:
// - Relay R (a node dial-back found reachable): serves relay_reserve requests (method 8) from peers whose
//   address is proven, at most DhtConfig::relay_max_reservations at once, each for relay_reservation_life
//   unless renewed. It passes a relay_forward (method 9, one-way: target id | sealed datagram) from A on to
//   target B as a relay_deliver (method 10, one-way: the sealed datagram, unchanged) only when B holds a
//   reservation (A's address proven; a circuit A->B is opened or refreshed), or when the target A opened a
//   circuit to the sender B within relay_circuit_life (B's answer). The datagram must be sealed by the peer
//   that sent the relay_forward (its public key is in the sealed header: checked without any key work), so a
//   relay never carries anyone else's datagram, and what it sends is 20 bytes shorter than what it received.
//   Every relayed datagram is paid in bytes from its circuit's budget (relay_pair_rate, burst
//   relay_pair_burst) and from the relay's total (relay_total_rate); circuits are bounded per target and in
//   all. R decrypts nothing: the inner datagram is end-to-end sealed for B.
// - NATed node B (dial-back has not found it reachable): keeps relay_reservations reservations with the
//   contacts closest to its own id (dial-back-confirmed ones first, down the whole table; a refusal moves on to
//   the next at once), renewed every keepalive_interval (which
//   also keeps its NAT mappings towards them open), and publishes the list in the DHT at "storjnet-relay/<B's id hex>", signed by
//   B (readers ask for B's value only: Dht::get with an owner, docs/protocol.md 10.8). A renewal left
//   unanswered keeps the reservation until it lapses (a refusal ends it). It accepts
//   relay_deliver only from its relays (and from relays it sent through itself).
// - Initiator A: when it starts a punch to B (Punch's on_started hook) it reads B's relay list; if B was not
//   heard from directly within kFallbackAfter of the start (or, when the list came later, while the punch asks
//   the listed relays as rendezvous: set_on_relays, kListHold), it sets a relayed path to B through one of the
//   listed relays, at random (Engine::set_via), and moves B's waiting requests there (Engine::redirect):
//   services above the engine see nothing else. When nothing from B came through that relay kPathCheck later,
//   another listed relay is tried (round the list again once all were, for at most kRetryAfter from the
//   start). (A punch that succeeds later wins: B's first direct datagram ends the path.)
// Refusals are dropped and counted under DropReason::kRelayRefused and DhtStats::relay_refused. All state is
// bounded; timers are engine timers (sans-IO).
#pragma once
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/token_bucket.h"
#include "dht/routing_table.h"
#include "dht/store_rate.h"
#include "engine/engine.h"
#include "storjnet/dht.h"

namespace storjnet::dht {

// relay_reserve answer: the seconds granted (4 bytes, big-endian, 1..3600).
Bytes encode_reservation(uint32_t seconds);
std::optional<uint32_t> decode_reservation(ByteView in);
// A node's relay list (the DHT value): 01 | count (1, at most kMaxListed) | count x (public key (32) | endpoint
// as in punch_codec.h). Contacts' ids are derived from their keys; trailing bytes are refused.
Bytes encode_relay_list(const std::vector<Contact>& relays);
std::optional<std::vector<Contact>> decode_relay_list(ByteView in);
// The DHT key of `id`'s relay list: "storjnet-relay/" + hex(id), its self-named key (dht/value_store.h), so
// replicas keep it for id's owner whoever put under it first.
std::string relay_list_key(const NodeId& id);

class Relay {
 public:
  static constexpr size_t kMaxListed = 8;             // relays in a published list
  static constexpr size_t kMaxCircuits = 4096;        // circuits a relay keeps in all
  static constexpr size_t kMaxCircuitsPerTarget = 64;  // ... towards one reserved node
  // Reservations held at once by nodes of one address block (IPv4 /24, IPv6 /48: one home or one machine's
  // block): fresh keys from one block cannot take every slot. A home's few nodes fit.
  static constexpr size_t kMaxReservationsPerBlock = 8;
  static constexpr size_t kMaxFallbacks = 256;        // targets this node looked up relays for, kept kRetryAfter
  static constexpr Duration kRetryAfter = std::chrono::seconds(30);
  // A target whose list read found none (not published yet: it is still joining, or the read failed) is read
  // again this soon, not only after kRetryAfter.
  static constexpr Duration kEmptyListRetry = std::chrono::seconds(5);
  static constexpr Duration kFallbackAfter = std::chrono::seconds(1);  // after a punch started, unheard
  static constexpr Duration kMaxHold = std::chrono::seconds(1);       // ... plus at most this while held
  static constexpr Duration kHoldCheck = std::chrono::milliseconds(250);
  // A list read after the fallback was due: its relays were just asked as rendezvous (set_on_relays), so the
  // fallback waits while the punch is pending, at most this long after the list came.
  static constexpr Duration kListHold = std::chrono::milliseconds(750);
  static constexpr Duration kPathCheck = std::chrono::milliseconds(1500);  // a relayed path heard nothing by then: next relay
  static constexpr size_t kMaxUsed = 1024;            // relays this node sent through (accepted for deliveries)

  // Puts `value` at `key` (signed by this node); `done(ok)` once stored or failed.
  using Publish = std::function<void(const std::string& key, Bytes value, std::function<void(bool)> done)>;
  // Reads the value `owner` signed at `key` (nullopt: none found), with the key that signed it.
  using Fetch =
      std::function<void(const std::string& key, const NodeId& owner, std::function<void(std::optional<OwnedValue>)>)>;

  // `reachable`: whether dial-back found this node reachable (it relays then, and reserves nothing).
  // `cfg` is not copied: it must outlive this object.
  Relay(Engine& engine, RoutingTable& table, const DhtConfig& cfg, std::function<bool()> reachable, Publish publish,
        Fetch fetch);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // The initiator's fallback: a punch to `target` started (its relay list is read now, and used after
  // kFallbackAfter unless `target` was heard from directly by then).
  void punch_started(const Contact& target);
  // A node no lookup found (no answer named it): reads its relay list and, when the list is signed by the key
  // `id` derives from and names a relay we can send to, sets a relayed path to it as the fallback does (the
  // next listed relay after kPathCheck with nothing heard). cb gets the node's contact (its key, the relay's
  // endpoint: the engine wraps whatever it sends to that key for the relay), else nullopt: no valid list, no
  // usable relay, or kMaxFallbacks targets already. One read per target per kRetryAfter; cb may run at once.
  void reach(const NodeId& id, std::function<void(std::optional<Contact>)> cb);
  // While hold(target) is true, a fallback that is due waits (checked every kHoldCheck, at most kMaxHold
  // more): the punch has rendezvous still to ask, or asked them lately (Punch::pending).
  void set_hold(std::function<bool(const NodeId&)> hold) { hold_ = std::move(hold); }
  // Families (docs/protocol.md 5.3, "Families"). While `needs_dual()` (a single-family node in a network with
  // nodes of the other family), this node keeps reservations even when reachable, with relays that have an
  // address of the other family (`other_address(id)`: a relay's address of the family its entry lacks), and
  // lists each relay once per address. A fallback uses the first listed relay of a family it sends on.
  void set_families(std::function<bool()> needs_dual, std::function<std::optional<Endpoint>(const NodeId&)> other_address) {
    needs_dual_ = std::move(needs_dual);
    other_address_ = std::move(other_address);
  }
  // `open()`: this node's route out has a public address (no NAT in front of it). It then relays even while
  // dial-back has not found it reachable: in a small network every helper is a peer it talked to lately, so
  // no probe comes unsolicited (docs/protocol.md 5.3, "Who relays").
  void set_open(std::function<bool()> open) { open_ = std::move(open); }
  // B's relays are rendezvous for a punch to B (docs/protocol.md 5.2, "Who is the rendezvous"): `f` gets a
  // started punch's target and its listed relays once the list is read (again at a later punch to the same
  // target while the list is kept, kRetryAfter).
  void set_on_relays(std::function<void(const NodeId&, const std::vector<Contact>&)> f) { on_relays_ = std::move(f); }
  // A relayed path this node set (a fallback, or reach()) carried the target's datagrams by kPathCheck: `f`
  // gets the target (its key, the relay's endpoint), to make the path direct (src/dht/birthday.h).
  void set_on_path(std::function<void(const Contact&)> f) { on_path_ = std::move(f); }
  // The node holding a live reservation with us as `id`, when we heard from it within `within` (its renewals,
  // every keepalive_interval, keep its NAT mapping towards us open): as a rendezvous we can introduce it.
  std::optional<Contact> reserved(const NodeId& id, Duration within) const;
  // Every authenticated direct message's sender (the DHT's on_contact): ends a waiting fallback to it, and
  // moves a reservation it holds with us to the address it was heard from.
  void heard(const Contact& c);
  // Renews and completes this node's reservations now (also run every keepalive_interval).
  void maintain();
  // The relays this node holds reservations with.
  std::vector<Contact> relays() const;
  size_t reservations_served() const { return served_.size(); }
  size_t circuits() const { return circuit_count_; }
  void fill(DhtStats& s) const;

 private:
  struct Reservation {  // served (relay side)
    Contact holder;
    TimePoint until{};
    TimePoint heard{};  // its last renewal, or last datagram heard directly (heard())
  };
  struct Held {  // ours (NATed side)
    Contact relay;
    TimePoint until{};
  };
  struct Fallback {  // initiator side
    Contact target;
    TimePoint started{};
    std::optional<std::vector<Contact>> relays;  // B's list, once read
    std::vector<PublicKey> tried;                // relays used for B, in order (the last one is in use)
    TimePoint listed{};                          // when the list was read
    bool due = false, done = false;
  };
  struct Circuit {  // initiator -> reserved target
    Contact initiator;
    NodeId target;
    TimePoint last{};
    TokenBucket bytes{};
  };
  void on_reserve(const IncomingRequest& q, const Reply& r);
  void on_forward(const IncomingRequest& q);
  void on_deliver(const IncomingRequest& q);
  void reserve_with(const Contact& relay);
  void top_up(bool dual_needed);  // asks the next candidates until relay_reservations are held or asked
  void fall_back(Fallback& f);
  bool use_next_relay(Fallback& f);   // a listed relay not tried yet, at random; false when none is left
  void check_path(const NodeId& id);  // kPathCheck after a relay was chosen: nothing heard through it, the next
  void fallback_due(const NodeId& id);  // kFallbackAfter after the start, then every kHoldCheck while held
  void publish_list();
  // `id`'s relay list from a fetched value: nullopt when there is none, when another key signed it (anyone can
  // put under the key's name), or when it does not decode (refused).
  std::optional<std::vector<Contact>> read_list(const NodeId& id, const std::optional<OwnedValue>& v);
  Fallback* new_fallback(const Contact& target);
  bool current(const Fallback& f, TimePoint now) const;  // kept: no new read of the target's list  // nullptr when kMaxFallbacks live ones are kept
  bool pay(TokenBucket& b, double rate, double burst, size_t bytes, TimePoint now);
  Circuit* open_circuit(const Contact& initiator, Reservation& target, TimePoint now);
  void expire(TimePoint now);
  void refuse();
  void schedule_maintain();  // maintain() again in keepalive_interval (15 s when keepalives are off)

  Engine& engine_;
  RoutingTable& table_;
  const DhtConfig& cfg_;  // the owner's (not a copy: 344 bytes a node)
  std::function<bool()> reachable_, open_;
  Publish publish_;
  Fetch fetch_;
  std::function<bool(const NodeId&)> hold_;
  std::function<void(const NodeId&, const std::vector<Contact>&)> on_relays_;
  std::function<void(const Contact&)> on_path_;
  std::function<bool()> needs_dual_;
  std::function<std::optional<Endpoint>(const NodeId&)> other_address_;
  // Relay side.
  std::unordered_map<NodeId, Reservation> served_;
  std::unordered_map<NodeId, std::unordered_map<NodeId, Circuit>> circuits_by_target_;  // target -> initiator -> circuit
  size_t circuit_count_ = 0;
  StoreRate reserve_rate_;
  TokenBucket total_{};
  // NATed side.
  std::unordered_map<NodeId, Held> held_;
  std::unordered_map<NodeId, TimePoint> asking_;   // reservations requested, not answered yet
  std::unordered_map<NodeId, TimePoint> refused_;  // relays that refused or timed out (not asked for a while)
  std::optional<std::vector<NodeId>> published_{std::in_place};  // relay ids last published; nullopt: unknown (a put failed)
  // Initiator side.
  std::unordered_map<NodeId, Fallback> fallbacks_;
  std::unordered_map<PublicKey, TimePoint, KeyedHash> used_;  // relays we sent through
  TimerId maintain_timer_;
  uint64_t reservations_granted_ = 0, reservations_made_ = 0, reservations_renewed_ = 0, renewals_unanswered_ = 0, paths_switched_ = 0, forwarded_ = 0, forwarded_bytes_ = 0, delivered_ = 0,
           refused_count_ = 0, fallbacks_started_ = 0, fallbacks_found_ = 0, publishes_ = 0;
  Engine::Scope scope_;
};

}  // namespace storjnet::dht
