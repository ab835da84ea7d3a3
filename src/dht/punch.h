// Punch: UDP hole punching through a common neighbour, and NAT keepalives (docs/protocol.md 5.2).
//
// Three roles, one method (kademlia_punch, bodies in punch_codec.h):
// - Initiator A: when a request of a service (messages, streams, pubsub: method >= 16) to B goes unanswered
//   once (the engine's on_unanswered hook), A asks up to kAsks rendezvous R at once: the nodes closest to B
//   that answered A's latest lookup of B (noted by the DHT, kept kNeighbourhoodLife), else the routing-table
//   contacts closest to B (confirmed and recently heard first) while a lookup of B runs (the resolving
//   lookup of find_contact, which hands out B's contact before it ends, or the punch's own), whose closest
//   nodes not yet asked are asked in turn (B keeps its mappings open towards the nodes closest to it: those a
//   lookup finds, more often than A's own table), and so are B's relays once the relay fallback has read B's
//   relay list (note_relays: B renews its reservations with them, so they hear B even where B's neighbours, a
//   lookup's rendezvous, never did). It sends HOLE datagrams to B's endpoints
//   (as R reports it and as A knew it), and the request's own retransmissions follow through the hole. The
//   punch succeeds when B is heard from within kWindow (then B is remembered as reached by a punch, and B's
//   address is challenged unless that datagram proved it: docs/protocol.md 5.2, "Address proof").
// - Rendezvous R: serves an ASK only from an asker whose address is proven (else it challenges and drops, so
//   the retransmission is served), within a per-asker and a total rate, and only for a target it heard from
//   within punch_live (or one at the asker's IP address: "Same router" below), or one holding a reservation
//   with R that R heard from within punch_live (set_reserved); it sends B an INTRO carrying A's key and A's
//   address as R saw it, and answers A with B's address as R sees it.
// - Target B: follows an INTRO (from any authenticated peer, within the same rates) by sending kHoles HOLE
//   datagrams to that one address, kHoleGap apart; at most kMaxHoles introductions served at once, at
//   most kTargetBurst (then kTargetRate a second) per target IP address, and one at a time per initiator
//   (the other rendezvous' INTROs for the same punch are duplicates). Excess and duplicates are dropped,
//   counted under DropReason::kPunchRefused.
// Same router (docs/protocol.md 5.2, "Same router"): a router that does not hairpin drops what a host sends to
// its own public address, so a punch between two hosts behind it fails. The rendezvous tells the initiator,
// in its ASK reply, when it sees it at the target's public IP address; the initiator then sends that
// rendezvous one more ASK carrying its own LAN address (Environment::lan_endpoint), which the rendezvous passes
// on in an INTRO only to a target at the asker's public IP address (never to anyone else). The target sends
// kHoles HOLEs to that LAN address, only when it has a LAN address of its own in the same network (IPv4 /16,
// IPv6 /64), at most kLanBurst such introductions then kLanRate a second in all; the rest is refused and
// counted (punch_lan_refused). The initiator hears the target from its LAN address and uses it from then
// on, as after any punch (the peer is remembered as reached over the LAN: lan_path()).
// Keepalive: while dial-back has not found this node reachable, or a NAT that translates its address keeps the
// mapping that makes it reachable (a NAT forgets an idle one), every keepalive_interval it sends one
// KEEPALIVE to the keepalive_peers contacts closest to its own id, and to the keepalive_peers closest
// confirmed ones (the two lists mostly overlap): a lookup of its id ends at one or the other, so they are
// the rendezvous others pick for it, and the datagrams keep its NAT mappings towards them open.
// All state is bounded; timers are engine timers (sans-IO).
#pragma once
#include <functional>
#include <memory>
#include <unordered_map>

#include "common/token_bucket.h"
#include "dht/punch_codec.h"
#include "dht/routing_table.h"
#include "dht/store_rate.h"
#include "engine/engine.h"
#include "storjnet/dht.h"

namespace storjnet::dht {

class Punch {
 public:
  static constexpr size_t kAsks = 4;            // rendezvous asked per punch, at once
  static constexpr size_t kMaxPunches = 64;     // punches this node started within kRetryAfter
  static constexpr size_t kMaxHoles = 32;       // introductions being served (holes being sent)
  static constexpr int kHoles = 3;              // HOLE datagrams per punch, from each side
  static constexpr Duration kHoleGap = std::chrono::milliseconds(200);
  static constexpr Duration kWindow = std::chrono::seconds(4);       // B heard from this soon: success
  static constexpr Duration kRetryAfter = std::chrono::seconds(10);  // no second punch to B sooner
  static constexpr double kTargetRate = 1;      // introductions followed per target IP address per second
  static constexpr double kTargetBurst = 8;     // (several hosts may share one public address)
  static constexpr size_t kMaxTargets = 4096;   // target addresses tracked (table reset when full)
  static constexpr size_t kMaxPunched = 1024;   // peers remembered as reached through a punch
  static constexpr size_t kMaxNeighbourhoods = 256;  // targets whose lookup result is noted
  static constexpr Duration kNeighbourhoodLife = std::chrono::seconds(60);
  static constexpr double kLanBurst = 4;   // introductions with a LAN address followed, in all, at once
  static constexpr double kLanRate = 0.2;  // ... and then per second

  // A lookup of an id: `done` gets the nodes that answered, closest first (the DHT's lookup).
  using FindClosest = std::function<void(const NodeId&, std::function<void(std::vector<Contact>)> done)>;

  // `no_keepalives`: whether this node needs none now (dial-back found it reachable, and no NAT translates its
  // address: Dht::Impl). `find_closest`: a lookup
  // (may be empty: then the routing table alone names the rendezvous).
  // `cfg` is not copied: it must outlive this object.
  Punch(Engine& engine, RoutingTable& table, const DhtConfig& cfg, std::function<bool()> no_keepalives,
        FindClosest find_closest = {});
  ~Punch();
  Punch(const Punch&) = delete;
  Punch& operator=(const Punch&) = delete;

  // Every authenticated message's sender (the DHT's on_contact).
  void heard(const Contact& c);
  // A lookup of `id` ended with these nodes answering, closest first: the rendezvous to ask if a punch to `id`
  // starts soon (kNeighbourhoodLife), or is waiting for them (expect_neighbourhood): those not asked yet are
  // asked now.
  void note_neighbourhood(const NodeId& id, const std::vector<Contact>& closest);
  // `id`'s relays (its published relay list, read by the relay fallback when the punch started): B renews its
  // reservations with them every keepalive_interval, so they hear from B and B's NAT lets them in. Those a live
  // attempt (B unheard, whatever rendezvous said they introduced us) has not asked are asked now (at most kAsks).
  void note_relays(const NodeId& id, const std::vector<Contact>& relays);
  // As a rendezvous: the contact of a node holding a live reservation with us, heard within the given time
  // (Relay::reserved); a target our routing table lacks, or has not heard from lately, is served through it.
  void set_reserved(std::function<std::optional<Contact>(const NodeId&, Duration)> f) { reserved_ = std::move(f); }
  // A lookup of `id` is running and will note its neighbourhood (within find_timeout): a punch to `id` that
  // starts meanwhile asks the routing table's rendezvous and waits for it, instead of a lookup of its own.
  void expect_neighbourhood(const NodeId& id);
  // Whether a punch to `id` is under way, `id` unheard, with rendezvous still to ask (the lookup expected by
  // expect_neighbourhood has not ended) or asked less than kAskGrace ago.
  bool pending(const NodeId& id) const;
  static constexpr Duration kAskGrace = std::chrono::seconds(1);
  // Whether `id` was last reached through a punch of ours.
  bool punched(const NodeId& id) const { return punched_.count(id) > 0; }
  // Every id punched() is true for.
  std::vector<NodeId> punched_ids() const {
    std::vector<NodeId> out;
    out.reserve(punched_.size());
    for (const auto& [id, p] : punched_) out.push_back(id);
    return out;
  }
  // Whether that punch heard `id` at a LAN address of our own network (same router; its answer to our LAN
  // address, or its own LAN path to us).
  bool lan_path(const NodeId& id) const {
    auto it = punched_.find(id);
    return it != punched_.end() && it->second.lan;
  }
  void fill(DhtStats& s) const;
  // Called when a punch to a target starts: the relay fallback (src/dht/relay.h) gets ready.
  void set_on_started(std::function<void(const Contact&)> f) { on_started_ = std::move(f); }
  // SYNC requests (kademlia_punch kind 05) go to `f` (the upgrade, src/dht/birthday.h); without one, refused.
  void set_on_sync(std::function<void(const IncomingRequest&, const PunchMessage&, const Reply&)> f) {
    on_sync_ = std::move(f);
  }

 private:
  struct Attempt {
    Contact target;
    TimePoint started{};
    bool introduced = false, ok = false, done = false;
    bool lan_asked = false;     // our LAN address went to a rendezvous that sees us at the target's IP
    std::vector<NodeId> asked;  // rendezvous asked so far
    TimePoint last_ask{};
  };
  struct Neighbourhood {
    TimePoint at{};
    std::vector<Contact> closest;  // at most kAsks
    TimePoint expected_until{};    // a lookup will note them before this (expect_neighbourhood)
  };
  void unanswered(const Contact& to, uint8_t method);
  void on_request(const IncomingRequest& q, const Reply& r);
  void serve_ask(const IncomingRequest& q, const PunchMessage& m, const Reply& r);
  void serve_intro(const IncomingRequest& q, const PunchMessage& m);
  void ask_lan(const Contact& target, const Contact& rendezvous);
  void serve_lan_intro(const IncomingRequest& q, const PunchMessage& m);
  void send_holes(const Contact& to, int left, bool served, bool lan = false);
  void served_done(const PublicKey& initiator);
  void on_window_end(const NodeId& target);
  void keepalive();
  std::vector<Contact> keepalive_targets() const;  // the contacts keepalive() sends to
  std::optional<TimePoint> last_seen(const NodeId& id) const;
  std::vector<Contact> rendezvous_for(const Contact& target) const;
  void ask(const Contact& target, const std::vector<Contact>& rendezvous);
  void ask_neighbourhood(const NodeId& target);  // the noted ones a live attempt has not asked yet
  Neighbourhood& neighbourhood(const NodeId& id, TimePoint now);  // made if need be (bounded)
  bool allow_target(const Endpoint& ep, TimePoint now);
  void refuse();

  Engine& engine_;
  RoutingTable& table_;
  const DhtConfig& cfg_;  // the owner's (not a copy: 344 bytes a node)
  std::function<bool()> no_keepalives_;
  FindClosest find_closest_;
  std::function<void(const Contact&)> on_started_;
  std::function<void(const IncomingRequest&, const PunchMessage&, const Reply&)> on_sync_;
  std::function<std::optional<Contact>(const NodeId&, Duration)> reserved_;
  std::unordered_map<NodeId, Neighbourhood> neighbourhoods_;
  StoreRate per_peer_;
  TokenBucket total_{}, own_{};
  std::unordered_map<NodeId, Attempt> attempts_;
  struct Punched {
    TimePoint at{};
    bool lan = false;
  };
  std::unordered_map<NodeId, Punched> punched_;
  TokenBucket lan_{};  // introductions with a LAN address followed (kLanBurst, kLanRate)
  std::unordered_map<Endpoint, TokenBucket> targets_;  // keyed by address with port 0
  std::unordered_map<PublicKey, int, KeyedHash> serving_;  // initiators being sent holes (at most kMaxHoles)
  size_t holes_in_progress_ = 0;
  TimerId keepalive_timer_;
  uint64_t keepalives_sent_ = 0, keepalives_received_ = 0, attempts_started_ = 0, ok_ = 0, failed_ = 0,
           no_rendezvous_ = 0, looked_up_ = 0, asks_sent_ = 0, asks_served_ = 0, intros_served_ = 0, holes_sent_ = 0, refused_ = 0;
  uint64_t lan_asks_sent_ = 0, lan_intros_sent_ = 0, lan_holes_sent_ = 0, lan_refused_ = 0;
  Engine::Scope scope_;  // its timers and RPCs (ended first when it is destroyed)
};

}  // namespace storjnet::dht
