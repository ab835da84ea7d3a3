// NewcomerCheck: a request proves its sender's key, not that the sender answers at its source address (a
// forged source, or a node that only sends). Such a newcomer is pinged before it enters the routing table and
// is handed out to others, as BitTorrent's DHT keeps only nodes that answered; the answer reaches the table
// through the engine's contact hook (answered).
//
// With DhtConfig::newcomer_wait > 0 our answer to its request carries an address challenge
// (Engine::prove_on_answer): its echo, one datagram, proves the address within a round trip, and the engine's
// contact hook then takes it in. The ping waits for that, and for our own lookups: a node that asks us is
// usually one they query within moments (it is in the neighbourhood we look up), and its answer proves it
// too. When the wait ends, a newcomer already in the table is dropped, one whose address another exchange
// proved is admitted (`admit`, as if it had answered), and only the rest are pinged. A newcomer whose bucket
// holds fewer than k/2 contacts waits only one request attempt's time for its echo (and is pinged at once when
// no challenge could go with the answer): the table needs it now (a join, a small network), and a wait there
// would leave the join's lookups a thin table to refresh from. The full wait is for this node's own lookups:
// while none runs (`busy` false) a newcomer waits only kIdleRoundTrips round trips (Engine::round_trip; at
// most newcomer_wait), time for its echo and the exchanges that follow its request to prove it; when the last
// lookup ends (`lookups_ended`) every newcomer still waiting is settled at once.
// Only newcomers the table could use (room in their bucket, or a quiet entry to challenge) are queued, at
// most kMax at a time (waiting or pinged); the rest are not checked.
#pragma once
#include <deque>
#include <functional>
#include <unordered_set>

#include "dht/routing_table.h"
#include "engine/engine.h"
#include "storjnet/dht.h"

namespace storjnet::dht {

class NewcomerCheck {
 public:
  static constexpr size_t kMax = 256;
  static constexpr int kIdleRoundTrips = 4;

  using Admit = std::function<void(const Contact&)>;
  using Busy = std::function<bool()>;  // whether a lookup of this node runs
  NewcomerCheck(Engine& engine, RoutingTable& table, const DhtConfig& cfg, Admit admit, Busy busy);
  ~NewcomerCheck();
  NewcomerCheck(const NewcomerCheck&) = delete;
  NewcomerCheck& operator=(const NewcomerCheck&) = delete;

  // Queues `c` (a request sender the table does not hold, address unproven) unless the table has no use for it.
  void check(const Contact& c);
  // The node's last running lookup ended: settles every waiting newcomer now (admitted, dropped or pinged).
  void lookups_ended();
  uint64_t pings() const { return pings_; }
  uint64_t spared() const { return spared_; }  // pings a wait made unnecessary (an echo, a lookup's answer)
  uint64_t asked() const { return asked_; }    // newcomers whose answer carried an address challenge

 private:
  bool wanted(const Contact& c) const;  // not in the table, and its bucket could take it
  bool hungry(const Contact& c) const;  // its bucket holds fewer than k/2: no wait
  void flush(bool all = false);  // settles the newcomers whose wait is over (all: every one)
  void ping(const Contact& c);

  Engine& engine_;
  RoutingTable& table_;
  Admit admit_;
  Busy busy_;
  size_t k_;
  Duration wait_, quiet_after_, rpc_timeout_;
  int rpc_attempts_;
  struct Waiting {
    Contact contact;
    TimePoint due;
  };
  std::deque<Waiting> waiting_;
  std::unordered_set<NodeId> held_;  // waiting or being pinged
  TimerId timer_;
  uint64_t pings_ = 0, spared_ = 0, asked_ = 0;
  Engine::Scope scope_;  // its pings and timer (ended first when it is destroyed)
};

}  // namespace storjnet::dht
