// DialBack: who strangers can reach (docs/protocol.md 5.1). Each node learns its own reachability by a
// self-check; verifiers ask a new contact for its verdict.
//
// Four roles, one RPC (kademlia_dial_back, sub-kinds 2 to 5):
// - Self-check (node S, per address family it sends on): S asks a helper H1 (a routing-table contact of that family,
//   confirmed ones first, at random) to have it probed by a stranger. S has just sent to H1, so H1's own probe would
//   come in as an answer; H1 asks up to kStrangers of its contacts H2 at once (not S, not at S's IP address nor at the
//   one S reached H1 at) to probe S at the address the ask came from. S answers the probe and decides alone, by
//   RecentSends (it sent nothing to the probe's source IP within RecentSends::kWindow before it arrived), whether it
//   came in unsolicited: then it crossed any NAT in front of S, and S is reachable over that family for kReachableFor.
//   Up to kHelpers asks a round, one after another, until a probe comes in unsolicited. The first round runs as soon as
//   S has kMinContacts entries, one with an address of the family (polled from kFirstSelfCheck, and looked at whenever
//   an entry is added), then again when the proof is kReprove old (every kReachableFor / 2), and, while unproven, after
//   kRetryMin backing off to kRetryMax (a round whose probes all came in solicited first again after kQuickRetry,
//   unless translated()). Asks and probe-fors are no RTT samples (their answers wait on a third node).
// - Helpers H1 and H2: serve only askers whose address is proven (else they challenge it and drop the
//   request, so the retransmission is served), at most `rate` requests/s per asker and `total_rate` in all,
//   kMaxProbes probes in flight, each nonce once (a retransmission of a request being served is dropped). H1
//   names only the asker's own address to H2: an asker gets itself probed, no one else. A helper behind a NAT
//   it has not proven crossable (behind_closed_nat) answers "not probed" at once and sends nothing.
// - Probed node S: answers only a probe carrying the nonce of its own self-check ask in flight.
// - Verifier V: a contact S new in its routing table (or an unconfirmed entry due for a re-check) is asked for
//   its verdict kFirstVerdict later, over the family V holds it at; "reachable" confirms the entry; "unknown"
//   (no self-check round finished yet) is asked again after kUnknownRetry, 2x and 4x that; "unreachable", an
//   error (an older node)
//   or no answer leaves it unconfirmed. At most kMaxChecks at a time. Answered at most `rate` a second per
//   asker (burst 2x) and kVerdictRate in all; to unproven addresses too (the answer is no larger than the
//   request: the engine's AddressGuard bounds what a forged source gets).
// S's word is all V ever had about S (a probed node could always claim unsolicited): a liar gets itself
// confirmed, as before. Refusals are counted under DropReason::kDhtDialBackRefused. All state is bounded.
#pragma once
#include <functional>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/token_bucket.h"
#include "dht/codec.h"
#include "dht/routing_table.h"
#include "dht/store_rate.h"
#include "engine/engine.h"
#include "storjnet/dht.h"

namespace storjnet::dht {

class DialBack {
 public:
  static constexpr size_t kHelpers = 3;          // H1s asked per self-check round, one after another
  static constexpr size_t kStrangers = 3;        // H2s an H1 asks at once to probe the asker
  static constexpr size_t kMinContacts = 3;      // routing-table entries before the first self-check
  static constexpr size_t kMaxChecks = 512;      // verdict checks in flight or waiting to ask (verifier)
  static constexpr size_t kMaxProbes = 128;      // probe-fors and probes in flight (helper)
  static constexpr size_t kUnknownRetries = 3;   // an "unknown" verdict is asked again this often
  static constexpr double kVerdictRate = 200;    // verdicts answered per second in all (burst the same)
  static constexpr Duration kReachableFor = std::chrono::hours(1);  // reachable(): an unsolicited probe this recent
  static constexpr Duration kReprove = kReachableFor / 2;           // next self-check after a proof
  static constexpr Duration kFirstSelfCheck = std::chrono::seconds(2);  // after start; then polled ...
  static constexpr Duration kWaitForContacts = std::chrono::seconds(5);  // ... until kMinContacts
  static constexpr Duration kRetryMin = std::chrono::seconds(30);   // unproven: next round, doubling ...
  static constexpr Duration kRetryMax = std::chrono::minutes(10);   // ... up to this
  // A round whose probes all came in solicited told nothing (S had talked to those strangers lately, as in its
  // join): the next comes kQuickRetry later, at most kMaxQuick times in a row.
  static constexpr Duration kQuickRetry = std::chrono::seconds(3);
  static constexpr size_t kMaxQuick = 4;
  static constexpr Duration kFirstVerdict = std::chrono::seconds(3);  // after the entry enters: a newcomer's
                                                                     // first self-check round is over by then
  static constexpr Duration kUnknownRetry = std::chrono::seconds(5);  // then twice that, and twice again

  DialBack(Engine& engine, RoutingTable& table, const DhtConfig& cfg);
  ~DialBack();
  DialBack(const DialBack&) = delete;
  DialBack& operator=(const DialBack&) = delete;

  // Verifier: asks `s` for its verdict unless disabled, already checking it, or kMaxChecks are in flight.
  void check(const Contact& s);
  // Whether an unsolicited probe over family f reached this node within kReachableFor, or every routing-table
  // entry is on a loopback address (a network on one host: nothing NATs there).
  bool reachable(Endpoint::Family f) const;
  // reachable(judged_family(the families this node sends on)), over IPv4 when it has IPv4; or reachable over
  // its other family when the judged one has no private address (no NAT in front of it, lan_endpoint).
  bool reachable() const;
  // Whether this node's route out over its judged family has a public address (Environment::lan_endpoint is
  // none: no NAT in front of it).
  bool open() const;
  // NatView's view of this node's public address over a family (none before its first verdict): with the
  // LAN address, it tells whether a NAT translates this node's traffic (translated()).
  void set_public_address(std::function<std::optional<Endpoint>(Endpoint::Family)> f) {
    public_address_ = std::move(f);
  }
  // What this node answers a verdict request that came over family f.
  DialBackVerdict verdict(Endpoint::Family f) const;
  // S's verdict as its answer to one of our find_nodes carried it (kFindNodeVerdict), `s` as we asked it:
  // the same word a verdict request would get, so "reachable" confirms S's entry at that address now, and the
  // ask its entry scheduled is not sent. Other verdicts change nothing (the scheduled ask asks again later).
  void heard_verdict(const Contact& s, DialBackVerdict v);
  // Adds the counters and reachable to `s`.
  void fill(DhtStats& s) const;
  // Whether a NAT translates this node's traffic over f: it sends from a private address (lan_endpoint) and
  // the network sees it at another IP address (set_public_address).
  bool translated(Endpoint::Family f) const;

 private:
  struct Round;
  struct SelfCheck {         // per family
    bool asking = false;     // an ask in flight: its nonce is the one a probe must carry
    bool concluded = false;  // a round has finished
    bool reached = false;    // this round: an unsolicited probe came in
    bool solicited = false;  // this round: a probe came in, but from an address S had sent to lately
    size_t quick = 0;        // ambiguous rounds retried at kQuickRetry in a row
    DialBackNonce nonce{};
    Duration retry = kRetryMin;
    size_t rounds = 0;       // started
    uint64_t epoch = 0;      // of the one scheduled self_check that may run (others are void)
  };
  void on_request(const IncomingRequest& q, const Reply& r);
  void serve_self_check(const IncomingRequest& q, const DialBackRequest& ask, const Reply& r);
  void serve_probe_for(const IncomingRequest& q, const DialBackRequest& req, const Reply& r);
  void answer_probe(const IncomingRequest& q, const DialBackRequest& probe, const Reply& r);
  void answer_verdict(const IncomingRequest& q, const Reply& r);
  bool helper_admits(const IncomingRequest& q, const DialBackRequest& req, const Reply& r);
  // Starts a round over family f unless one runs; without helpers yet, polls again kWaitForContacts later
  // (`early`: a call on an entry's arrival, which polls nothing).
  void self_check(Endpoint::Family f, bool early = false);
  void schedule_self_check(Endpoint::Family f, Duration after);
  void ask_helper(std::shared_ptr<Round> round);
  void end_round(Endpoint::Family f, bool proven);
  void ask_verdict(const Contact& s, size_t attempt);
  void done_checking(const NodeId& id);  // a verdict check ended
  // A "reachable" verdict: confirms S's entry if it still holds the address S was asked at (true if newly).
  bool confirm_as_asked(const Contact& s);
  std::vector<Contact> pick_helpers(Endpoint::Family f);
  std::vector<Contact> pick_strangers(const Contact& s, const Endpoint& via);  // up to kStrangers H2s
  void refuse();
  bool loopback_only() const;
  // translated(f), and no unsolicited probe proved this node reachable over f: it serves no self-check.
  bool behind_closed_nat(Endpoint::Family f) const;
  // Over family f behind_closed_nat: answers "not probed" (counted) and returns true.
  bool declined(Endpoint::Family f, const Reply& r);

  Engine& engine_;
  RoutingTable& table_;
  bool enabled_;
  Duration rpc_timeout_;
  int rpc_attempts_;
  double total_rate_;
  StoreRate per_asker_, verdicts_per_asker_;
  TokenBucket total_{}, verdicts_{};
  std::unordered_set<NodeId> checking_;
  size_t probes_ = 0;
  std::set<DialBackNonce> serving_;  // nonces of the probe-fors and probes in flight (at most kMaxProbes)
  SelfCheck self_[2];                       // IPv4, IPv6
  std::optional<TimePoint> reached_at_[2];  // IPv4, IPv6
  uint64_t self_checks_ = 0, self_checks_ok_ = 0, asks_sent_ = 0, asks_served_ = 0, asks_refused_ = 0,
           probes_answered_ = 0, confirmed_ = 0, verdicts_asked_ = 0, verdicts_answered_ = 0, verdicts_heard_ = 0;
  uint64_t asks_declined_ = 0;  // self-check asks and probe-fors answered false: behind_closed_nat
  std::function<std::optional<Endpoint>(Endpoint::Family)> public_address_;
  Engine::Scope scope_;  // its RPCs and timers (ended first when it is destroyed)
};

}  // namespace storjnet::dht
