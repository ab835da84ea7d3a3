// Lookup: one Kademlia iterative lookup, as a state machine over a query function.
//
// Starts from the routing table's closest contacts; keeps at most alpha queries in flight, always to the
// closest not-yet-queried candidates; finishes when the k closest non-failed candidates have all answered
// (or, for a value lookup, as soon as a value arrives; with stop_on_target, once the target answered).
// Rounds: an RPC to a contact learned from a depth-d answer has depth d+1; rounds is the deepest RPC sent.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/dht.h"
#include "storjnet/dht_storage.h"

namespace storjnet::dht {

struct QueryResponse {
  std::vector<Contact> contacts;
  std::optional<StoredValue> value;
};
using QueryDone = std::function<void(std::optional<QueryResponse>)>;
using QueryFn = std::function<void(const Contact& to, QueryDone done)>;

struct LookupResult {
  std::vector<Contact> closest;        // answered, closest first, at most k
  std::optional<StoredValue> value;    // value lookups: what was found
  std::optional<Contact> cache_target; // value lookups: closest answered node that lacked the value
  std::optional<Contact> target;       // the target node itself, when it answered
  LookupStats stats;
};

struct LookupParams {
  NodeId self, target;
  bool want_value = false;
  bool stop_on_target = false;
  size_t k = 20, alpha = 3;
  // Asked first whatever their distance: vantage points on the far side of the id space, so a refresh can
  // learn a region that no contact near the target knows (see Dht::Impl::refresh_bucket).
  std::vector<Contact> must_query;
};

class Lookup : public std::enable_shared_from_this<Lookup> {
 public:
  static void start(LookupParams params, std::vector<Contact> seeds, QueryFn query, std::function<TimePoint()> now,
                    std::function<void(LookupResult)> done);

 private:
  enum class State { kNew, kInFlight, kAnswered, kFailed };
  struct Candidate {
    Contact contact;
    State state = State::kNew;
    int depth = 1;
  };

  Lookup() = default;
  void add(const Contact& c, int depth);
  void ask(const NodeId& dist, const Contact& contact);
  void step();
  void on_answer(const NodeId& distance, std::optional<QueryResponse> r);
  void finish();

  LookupParams p_;
  QueryFn query_;
  std::function<TimePoint()> now_;
  std::function<void(LookupResult)> done_;
  std::map<NodeId, Candidate> shortlist_;  // by XOR distance to the target
  NodeId value_from_;  // distance key of the candidate that returned the value
  size_t in_flight_ = 0;
  bool finished_ = false;
  TimePoint started_{};
  LookupResult result_;
};

}  // namespace storjnet::dht
