// StoreRun: one value's stores on a lookup's placement, as a state machine over a store function.
//
// place(targets) stores on the first `want` of targets (closest first). A store that gets no answer (a timeout,
// an error reply, an undecodable answer) passes its turn on to the next target not yet tried; a `false` answer
// (the node holds another owner's or a newer value) is not replaced.
// early(c), before place(), stores at once on a node the lookup has already found near the key (its answer ended
// its path's search there), so stores ride with the lookup's last round. Puts no longer use it: a colluder told the
// value early squats the key's honest neighbourhood first (docs/protocol.md 10.8). An
// early store counts only if place() makes its node a target (by rank, or by a passed turn); its answer, however
// early it came, is then taken as that target's. Early stores are bounded by `want`; one whose node place()
// does not choose is wasted (the node keeps the value, as an extra holder) and never counted.
// first_ack(acks) runs once, at the first counted acknowledgement; all_done(tally) once, after every counted
// store answered or passed its turn on (at once when there is no target). Re-entrancy: the store function may
// answer before it returns; state is consistent then.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "storjnet/contact.h"

namespace storjnet::dht {

struct StoreTally {
  size_t acks = 0, refused = 0;  // true answers; false answers (another owner's or a newer value held)
};
using StoreAnswer = std::optional<bool>;  // true: stored; false: refused; nullopt: no answer
using StoreFn = std::function<void(const Contact& to, std::function<void(StoreAnswer)> done)>;

class StoreRun : public std::enable_shared_from_this<StoreRun> {
 public:
  static std::shared_ptr<StoreRun> make(StoreFn store, size_t want, std::function<void(size_t)> first_ack,
                                        std::function<void(StoreTally)> all_done);
  void early(const Contact& c);
  void place(std::vector<Contact> targets);
  size_t early_stores() const { return early_; }

 private:
  struct Sent {
    std::optional<StoreAnswer> answer;  // set once the store answered (or gave up)
    bool counted = false;               // a target of place(): its answer counts
  };
  StoreRun() = default;
  void send(const Contact& c, bool counted);
  void take(const Contact& c);  // makes c a counted target: its store's answer, now or later, is used
  void take_next();  // the next target not yet counted
  void on_answer(const NodeId& id, StoreAnswer a);
  void release();  // a counted store ended; all_done once none is left

  StoreFn store_;
  size_t want_ = 0;
  std::function<void(size_t)> first_ack_;
  std::function<void(StoreTally)> all_done_;
  std::unordered_map<NodeId, Sent> sent_;
  std::vector<Contact> targets_;
  size_t next_ = 0;   // the next target a passed turn goes to
  size_t left_ = 0;   // counted stores not answered yet (+1 while place() runs)
  size_t early_ = 0;
  bool placed_ = false, told_ = false, done_ = false;
  StoreTally tally_;
};

}  // namespace storjnet::dht
