// StoreRun: one value's stores on a lookup's placement, as a state machine over a store function.
//
// place(targets) stores on the first `want` of targets (closest first), all at once; a put calls it only once
// its lookup ended, so no node learns the value before the others (docs/protocol.md 5 and 10.8). A store that
// gets no answer (a timeout, an error reply, an undecodable answer) passes its turn on to the next target not
// yet tried; a `false` answer (the node holds another owner's or a newer value) is not replaced. A target
// listed twice is stored on once.
// first_ack(acks) runs once, at the first acknowledgement; all_done(tally) once, after every store answered or
// passed its turn on (at once when there is no target). Re-entrancy: the store function may answer before it
// returns; state is consistent then.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "storjnet/contact.h"

namespace storjnet::dht {

struct StoreTally {
  size_t acks = 0, refused = 0;  // true answers; false answers (another owner's or a newer value held)
  std::vector<NodeId> missed;    // targets whose store got no answer (a timeout, an error reply): turns passed on
};
using StoreAnswer = std::optional<bool>;  // true: stored; false: refused; nullopt: no answer
using StoreFn = std::function<void(const Contact& to, std::function<void(StoreAnswer)> done)>;

class StoreRun : public std::enable_shared_from_this<StoreRun> {
 public:
  static std::shared_ptr<StoreRun> make(StoreFn store, size_t want, std::function<void(size_t)> first_ack,
                                        std::function<void(StoreTally)> all_done);
  void place(std::vector<Contact> targets);

 private:
  StoreRun() = default;
  void take_next();  // stores on the next target not yet tried
  void on_answer(const NodeId& to, StoreAnswer a);
  void release();  // a store ended; all_done once none is left

  StoreFn store_;
  size_t want_ = 0;
  std::function<void(size_t)> first_ack_;
  std::function<void(StoreTally)> all_done_;
  std::unordered_set<NodeId> sent_;
  std::vector<Contact> targets_;
  size_t next_ = 0;   // the next target a passed turn goes to
  size_t left_ = 0;   // stores not answered yet (+1 while place() runs)
  bool placed_ = false, told_ = false, done_ = false;
  StoreTally tally_;
};

}  // namespace storjnet::dht
