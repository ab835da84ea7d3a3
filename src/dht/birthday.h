// Birthday: makes a working relayed path direct (docs/protocol.md 5.2, "Upgrade"): a simultaneous punch
// coordinated over the relayed path, or, across a symmetric NAT, birthday punching.
// - Start: this node's relay fallback found its relayed path to B working (Relay's on_path hook: only the side
//   that chose the relay starts). It sends B a SYNC request through that path (end-to-end authenticated): the
//   mapping of its NAT (NatView's verdict for the relay's family) and its public endpoint. B answers a SYNC
//   with its own, only when B reaches the asker through a relay itself, then both act (B at once, A when the
//   answer comes) on the two verdicts:
//   - both independent: kHoles HOLEs to the other's public endpoint, kHoleGap apart (a simultaneous open;
//     the first punch may have lost a datagram, and nothing else retries once a relay carries the pair);
//   - this side dependent (a symmetric NAT), the other independent: cfg.birthday_ports fresh ports towards
//     the other's endpoint (Environment::open_fresh_ports, kPortLife); one byte from each with an IP TTL of
//     cfg.birthday_ttl, which maps it at our router and dies before the other's; then from kFirstFullRound a
//     HOLE from each, kRounds rounds kRoundGap apart;
//   - this side independent, the other dependent: from kProbeDelay (the other's ports are mapped by then),
//     cfg.birthday_probes one-byte probes from this node's port to random ports (1024-65535) of the other's
//     address, with an IP TTL of cfg.birthday_ttl (Environment::send_with_ttl), kProbeBatch every kProbeGap:
//     they cross this node's router, whose filter then lets in whatever comes from those ports, and die a few
//     routers later. P fresh ports meet Q probed ports with probability 1 - exp(-P*Q/64512): 98% for 128
//     and 2048.
//   - otherwise (both dependent, a verdict unknown, one public address): nothing; the path stays relayed. When
//     both verdicts are known (both dependent, or one public address), no later try can do better: the attempt
//     is futile (counted as such, not as failed) and not retried.
//   Success: B heard directly within kWindow of the start (the engine ends the relayed path itself): what
//   waits for B goes to the address it was heard from (Engine::redirect), which is challenged. A failed
//   attempt (not a futile one) is tried again kRetryAfter later while the path is still relayed, kMaxTries in
//   all. After the last failed try, or a futile one (also one this node served), no SYNC goes to B for kQuiet
//   (a verdict may change meanwhile: NatView asks again, a node moves); then its next relayed path gets
//   kMaxTries again. A success resets the tries.
// - Budget: SYNCs sent and served, together, at most kBurst then kRate a second for the node; one attempt per
//   peer; kMaxBirthdays birthdays (fresh ports or probes) at a time, each counted kBusy. Excess is refused, counted under
//   DropReason::kPunchRefused. Whatever address a peer claims, the probes never go past the few routers
//   nearest this node, and the fresh ports send only HOLEs (sealed for the peer) to the endpoint it claimed.
// All state is bounded (kMaxAttempts); timers are engine timers (sans-IO).
#pragma once
#include <functional>
#include <unordered_map>

#include "common/token_bucket.h"
#include "dht/nat_view.h"
#include "dht/punch_codec.h"
#include "engine/engine.h"
#include "storjnet/dht.h"

namespace storjnet::dht {

class Birthday {
 public:
  static constexpr int kHoles = 3;
  static constexpr Duration kHoleGap = std::chrono::milliseconds(200);
  static constexpr Duration kFirstFullRound = std::chrono::milliseconds(1500);  // after the TTL-limited one
  static constexpr int kRounds = 6;
  static constexpr Duration kRoundGap = std::chrono::milliseconds(500);
  static constexpr Duration kPortLife = std::chrono::seconds(8);
  static constexpr Duration kProbeDelay = std::chrono::milliseconds(500);  // the other side's ports open first
  static constexpr size_t kProbeBatch = 64;
  static constexpr Duration kProbeGap = std::chrono::milliseconds(10);
  static constexpr Duration kWindow = std::chrono::seconds(6);
  static constexpr Duration kRetryAfter = std::chrono::seconds(10);
  static constexpr int kMaxTries = 3;
  static constexpr Duration kQuiet = std::chrono::minutes(10);  // no SYNC to a peer after its tries ran out
  static constexpr size_t kMaxBirthdays = 4;  // birthdays (ports or probes) in progress at once
  static constexpr Duration kBusy = std::chrono::seconds(5);  // a birthday's ports or probes, at most this long
  static constexpr double kRate = 0.5;
  static constexpr double kBurst = 8;
  static constexpr size_t kMaxAttempts = 256;

  // `view(f)`: this node's NAT mapping over family f (NatView; kUnknown without one).
  // `cfg` is not copied: it must outlive this object.
  Birthday(Engine& engine, const DhtConfig& cfg, std::function<NatView::View(Endpoint::Family)> view);
  ~Birthday();
  Birthday(const Birthday&) = delete;
  Birthday& operator=(const Birthday&) = delete;

  // The relayed path to `peer` (Engine::via) carried its datagrams: the upgrade starts.
  void path_works(const Contact& peer);
  // Every authenticated direct message's sender (the DHT's on_contact).
  void heard(const Contact& c);
  // A SYNC request (kademlia_punch, from Punch's handler).
  void on_sync(const IncomingRequest& q, const PunchMessage& m, const Reply& r);
  // Whether the path to `id` was made direct by an upgrade of ours or theirs (and not relayed since), also
  // before the attempt's window ends.
  bool upgraded(const NodeId& id) const;
  // Every id upgraded() is true for.
  std::vector<NodeId> upgraded_ids() const;
  void fill(DhtStats& s) const;

 private:
  struct Attempt {
    Contact peer;
    TimePoint started{};
    TimePoint quiet_until{};  // no SYNC of ours to it before this (kQuiet)
    int tries = 0;
    bool live = false, ok = false;
    bool futile = false;  // both verdicts known, and nothing can connect them: no retry
  };
  bool upgraded(const Attempt& a) const;
  PunchMessage own_sync(Endpoint::Family f) const;
  void send_sync(const NodeId& id);
  // Acts on the two verdicts; false when both are known and nothing can connect the pair.
  bool act(const Contact& peer, const PunchMessage& theirs, Endpoint::Family f);
  void holes(const Contact& to, int left, bool fanned);
  void probes(const NodeId& id, Endpoint address, size_t left);  // until `id` is heard
  void birthday_started();  // one more in progress, for kBusy
  void window_end(const NodeId& id);
  Attempt* attempt(const Contact& peer);  // made if need be; nullptr when kMaxAttempts are live
  bool allow();
  void refuse();

  Engine& engine_;
  const DhtConfig& cfg_;  // the owner's (not a copy: 344 bytes a node)
  std::function<NatView::View(Endpoint::Family)> view_;
  TokenBucket budget_{};
  size_t birthdays_live_ = 0;
  std::unordered_map<NodeId, Attempt> attempts_;
  uint64_t syncs_sent_ = 0, syncs_served_ = 0, ok_ = 0, failed_ = 0, futile_ = 0, birthdays_ = 0, ports_opened_ = 0,
           probes_sent_ = 0, refused_ = 0;
  Engine::Scope scope_;
};

}  // namespace storjnet::dht
