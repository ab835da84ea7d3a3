// The simulator's byte connections: a ConnProvider for the streams' TCP fast path (docs/protocol.md 7.6)
// in virtual time, between simulated nodes, under the network's rules (ConnModel in storjnet/simulator.h).
//
// Conns holds both ends of every connection and turns ConnProvider calls into timed events (connection
// set-up, segments, acknowledgements that reopen the sender's window, FIN, reset) that the simulator puts on
// its one event queue (ConnHost::schedule) and hands back by token (fire), so a run stays a pure function of
// its seed; every delivery, open and close is folded into the simulator's trace hash (ConnHost::trace).
// Ends are kept in an ordered map and random draws come from Conns' own generator, seeded by the simulator.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "storjnet/conn_provider.h"
#include "storjnet/simulator.h"
#include "sim/rng.h"

namespace storjnet::sim {

constexpr uint32_t kStranger = 0xffffffffu;  // the node of an end that Simulator::inject_conn drives

// What the connections need of the simulator.
class ConnHost {
 public:
  virtual ~ConnHost() = default;
  virtual TimePoint now() const = 0;
  virtual bool alive(uint32_t node) const = 0;
  virtual ConnListener* listener(uint32_t node) const = 0;  // nullptr: the node takes no connections
  // The node a connection from `from` to `to` lands on (open network, or the same home), and the address
  // it sees as the remote (a NATed opener's router); nullopt when there is no route.
  virtual std::optional<std::pair<uint32_t, Endpoint>> route(uint32_t from, const Endpoint& to) const = 0;
  virtual bool cut(uint32_t a, uint32_t b) const = 0;  // partitioned apart
  virtual Duration latency(uint32_t a, uint32_t b) const = 0;  // the pair's base one-way latency
  virtual const LinkModel& link() const = 0;
  virtual void schedule(TimePoint at, uint64_t token) = 0;
  virtual void trace(uint64_t what, ByteView bytes) = 0;
  virtual SimStats& stats() = 0;
};

class Conns {
 public:
  Conns(ConnHost& host, const ConnModel& model, uint64_t seed) : host_(host), model_(model), rng_(seed) {}

  // Node n's ConnProvider calls.
  uint64_t connect(uint32_t n, const Endpoint& to);
  void send(uint32_t n, uint64_t id, Bytes bytes);
  size_t queued(uint32_t n, uint64_t id) const;
  void close(uint32_t n, uint64_t id);

  void fire(uint64_t token);  // a scheduled event is due
  // Node n's process is gone (after a restart destroyed it): its remaining ends vanish without a word.
  void forget(uint32_t n);
  size_t reset(uint32_t n);  // Simulator::reset_conns
  size_t count(uint32_t n) const;
  void refuse(uint32_t n, bool r);
  uint64_t inject(const Endpoint& from, uint32_t to, Bytes data, Duration delay);

 private:
  struct End {
    uint32_t node = 0;
    uint64_t peer = 0;  // the other end's id, once the acceptor took the connection
    uint32_t peer_node = 0;
    bool inbound = false, open = false;
    bool broken = false;       // reset: nothing more goes out or comes in; the reset event is on its way
    bool paused = false;       // not reading: this end's own send queue passed high_water
    bool fin_pending = false;  // the peer's FIN arrived behind bytes not yet read
    Endpoint remote;           // the opener's address (an outbound end: where it connected to)
    Duration latency{};        // one-way, to the peer
    std::deque<Bytes> queue;   // written, not yet on the wire (conn_queued)
    size_t queued = 0;
    size_t in_flight = 0;      // sent and not yet read by the peer (at most window)
    TimePoint wire_free{}, last_arrival{};  // this direction's link: busy until; last segment's arrival
    std::deque<Bytes> inbox;   // arrived while not reading
  };
  enum class Kind : uint8_t { kSyn, kSynAck, kFail, kSegment, kAck, kFin, kReset, kResume };
  struct Event {
    Event(Kind k, uint64_t e, uint64_t f, uint32_t nd, size_t bytes_read = 0, Bytes data = {})
        : kind(k), end(e), from(f), node(nd), n(bytes_read), bytes(std::move(data)) {}
    Kind kind;
    uint64_t end;       // the end it happens to
    uint64_t from = 0;  // kSyn: the opener's end; kSegment: the sender's end
    uint32_t node = 0;  // the node `end` lives on (kept: the end may be gone when the event is due)
    size_t n = 0;       // kAck: bytes read
    Bytes bytes;        // kSegment
    Endpoint remote{};  // kSyn: the address the acceptor sees
  };

  void at(TimePoint t, Event ev);
  End* find(uint64_t id);
  bool usable(uint32_t node) const { return node == kStranger || host_.alive(node); }
  ConnListener* listener_of(uint32_t node) const { return node == kStranger ? nullptr : host_.listener(node); }
  void pump(uint64_t id);               // moves queued bytes onto the wire while the window allows
  void deliver(uint64_t id);            // hands arrived bytes to the listener while reading
  void on_syn(const Event& ev);
  void on_syn_ack(uint64_t id);
  void on_segment(Event& ev);
  void on_fin(uint64_t id);
  void closed(uint64_t id);             // the end learns its connection is over
  void reset_pair(uint64_t id, TimePoint when);  // both ends learn at `when` (counted once)
  Duration jitter();

  ConnHost& host_;
  ConnModel model_;
  Rng rng_;
  uint64_t next_id_ = 1, next_token_ = 1;
  std::map<uint64_t, End> ends_;                   // ordered: reset() and forget() walk it
  std::unordered_map<uint64_t, Event> pending_;    // by token (only looked up, never walked)
  std::set<uint32_t> refusing_;
};

}  // namespace storjnet::sim
