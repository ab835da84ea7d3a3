// Streams in the chaos run (src/sim/chaos.h): byte streams between random live nodes, over the simulated
// TCP fast path where it connects (ConnModel) and over datagrams where it does not or after a connection
// reset, with the "no stream corruption" invariant checked throughout.
//
// A stream's bytes are a function of its id and offset, so the reader checks every byte it reads without a
// copy of what was sent. The writer writes one piece at a time (at most writable(), so never short unless
// the stream fails), at most `per_tick` bytes a tick (an application streaming, so a stream outlives the
// fast path's set-up and takes it), and closes once everything was acknowledged. Invariants (a breach is a violation):
//  - the reader reads exactly the bytes sent, in order: never another byte, never past the end;
//  - a reader that lives reads every byte its node acknowledged (a write completes once the peer holds the
//    bytes, and the reader drains on on_readable);
//  - at the end, with everything healed, no stream whose two nodes lived through it is still waiting for an
//    answer (open, write or close).
// Callbacks that a killed node's Streams answers when the node is destroyed (restart, or the end of the run)
// are void: each carries its node's incarnation, and end() voids them all.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storjnet/simulator.h"
#include "storjnet/streams.h"

namespace storjnet::sim {

struct ChaosStreamsReport {
  uint64_t streams = 0, opened = 0, completed = 0, failed = 0;
  uint64_t fast = 0;                   // streams seen on the fast path at some tick
  uint64_t bytes_acked = 0, bytes_read = 0;
  uint64_t lost_with_node = 0;         // streams whose writer or reader died meanwhile
};

class ChaosStreams {
 public:
  ChaosStreams(Simulator& sim, size_t per_tick, std::function<void(std::string)> violation)
      : sim_(sim), per_tick_(per_tick), violation_(std::move(violation)), gen_(sim.size(), 0) {}

  void on_node(size_t i);  // node i (re)started: read the streams peers open to it
  void on_kill(size_t i);  // node i died: its callbacks are void from now on
  void start(size_t from, size_t to, size_t bytes);
  void tick();             // writers get their next tick's bytes; notes which streams are on the fast path
  void check(bool final);  // invariants; `final`: everything healed and settled
  void end();              // before the simulator goes: every callback is void
  const ChaosStreamsReport& report() const { return report_; }

 private:
  struct Writer {
    size_t from = 0, to = 0, size = 0;
    uint64_t from_gen = 0, to_gen = 0;
    std::optional<StreamId> id;
    size_t acked = 0;
    size_t budget = 0;    // bytes it may still write this tick
    bool starved = false; // waits for the next tick
    bool waiting = true;  // an open, write or close is unanswered (or the next tick)
    bool failed = false, completed = false, fast = false;
  };
  struct Reader {
    size_t node = 0;
    uint64_t gen = 0;
    size_t read = 0;
    bool corrupt = false, closed = false;
  };

  bool stale(size_t node, uint64_t gen) const { return over_ || gen_[node] != gen; }
  void write_more(size_t w, bool woken = false);
  void read_more(const StreamId& id);
  void finish(size_t w, bool ok);
  void violation(const std::string& s) { violation_(s); }

  Simulator& sim_;
  size_t per_tick_;
  std::function<void(std::string)> violation_;
  std::vector<uint64_t> gen_;            // incarnation of each node, as far as streams are concerned
  std::vector<Writer> writers_;
  std::map<StreamId, Reader> readers_;   // by id: a reader may hear of its stream before the opener does
  ChaosStreamsReport report_;
  bool over_ = false;
};

}  // namespace storjnet::sim
