// Lookup: one Kademlia iterative lookup over d disjoint paths (S/Kademlia), as a state machine over a
// query function.
//
// The routing table's closest contacts are dealt round-robin to `paths` paths. Each path keeps at most
// alpha queries in flight, always to its closest not-yet-queried candidates, and finishes when its k
// closest non-failed candidates have all answered (a put's lookup: its path_answers closest, and its seeds, see
// below). A contact belongs to the first path that learned it: the others never query it, so a liar that
// answers only with its friends captures at most the paths that reached it, and an honest path still converges
// on the true closest nodes.
// Value lookups never stop at the first value: every answering node's (already verified) value is
// collected, for the caller to choose by owner and version. They stop early only when a majority of the
// paths gave a value (or every path did, or ran out of candidates) and all values agree
// (settle_on_agreement); one disagreeing answer makes every path run to its end. With stop_on_target, the
// lookup ends once the target answered (on_named tells the first answer naming it). Rounds: an RPC to a
// contact learned from a depth-d answer has depth d+1; rounds is the deepest RPC sent. Re-entrancy: the query
// function may answer synchronously; state is consistent then.
// Slow candidates: the query function may tell, before its answer, that a request is overdue (unanswered past
// the peer's retransmission timeout, RpcOptions::on_slow). The candidate then stops counting against its path's
// alpha, so the path asks its next candidate instead of waiting out the timeout; its answer, if one comes, is
// used as any other (libtorrent's "short timeout"). A dead or NATed candidate then delays its path by a
// retransmission timeout, not by the whole timeout. A value lookup that found a value and has nothing left to ask
// ends once only slow requests are out, without their answers; a put's lookup (path_answers) waits for no slow
// candidate, seed or among its paths' closest, once it has an answer, nor does a join's (release_slow).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/dht.h"
#include "storjnet/dht_storage.h"

namespace storjnet::dht {

struct QueryResponse {
  std::vector<Contact> contacts;
  std::optional<StoredValue> value;
  // Bit i: the answerer marked contacts[i] as not confirmed reachable by its dial-back (a put's find_node with
  // kFindNodeMarks). Such a contact is a candidate for placement but is not asked, unless an answer names it
  // unmarked or it is a seed: a NATed node would only cost the path its timeout (docs/protocol.md 5, "Placement").
  uint32_t unconfirmed = 0;
};
using QueryDone = std::function<void(std::optional<QueryResponse>)>;
using QuerySlow = std::function<void()>;  // at most once, before done: the answer is overdue
using QueryFn = std::function<void(const Contact& to, QueryDone done, QuerySlow slow)>;

struct FoundValue {
  Contact from;
  StoredValue value;
};

struct LookupResult {
  std::vector<Contact> closest;        // answered over all paths, closest first, at most k
  std::vector<FoundValue> values;      // value lookups: every value returned (at most one per node)
  std::optional<Contact> cache_target; // value lookups: closest answered node that returned no value
  std::optional<Contact> target;       // the target node itself, when it answered
  std::optional<Contact> target_named; // the target as the first answer naming it gave it (answered or not)
  // With LookupParams::placement: every candidate that did not fail (answered, asked, or only named),
  // closest first (at most the 3k a path keeps, per path): where a put stores (the first k), and the
  // replacements for those that fail.
  std::vector<Contact> placement;
  std::vector<NodeId> slow;            // with placement: candidates still slow at the end (placed on; likely dead)
  std::vector<NodeId> lost;            // with placement: candidates that failed (left out of it)
  size_t failed = 0;                   // queried candidates that did not answer
  LookupStats stats;
};

struct LookupParams {
  NodeId self, target;
  bool want_value = false;
  bool stop_on_target = false;
  size_t k = 20, alpha = 3;
  size_t paths = 1;  // d disjoint paths
  // Asked first whatever their distance: vantage points on the far side of the id space, so a refresh can
  // learn a region that no contact near the target knows (see Dht::Impl::refresh_bucket).
  std::vector<Contact> must_query;
  // Value lookups: finish as soon as a majority of the paths (2 of 3) gave a value, or every path gave one or
  // has nothing left to ask, provided all values received agree (same owner, version and signature); a path
  // stops asking once it gave a value. Any disagreement resumes every path, run to its end (k closest
  // answered) for the caller to vote.
  bool settle_on_agreement = true;
  // Value lookups: a value settles its path (and counts towards settling the lookup) only when the node that
  // gave it is within this XOR distance of the target, where the key's holders are; a value from farther away
  // is still collected (and a disagreeing one still makes every path run to its end), but its path goes on.
  // So colluding nodes met on the way cannot end a get with their value. nullopt: any node settles.
  std::optional<NodeId> settle_within = std::nullopt;
  // Value lookups: agreeing values a path needs (from distinct nodes within settle_within) before it counts as
  // valued and stops asking; with 2, one colluding node met first on a path does not end it.
  size_t settle_values = 1;
  // How many of its closest candidates that did not fail a path needs answered before it finishes (0: k),
  // plus one for each of the path's candidates that failed or is slow while among them (at most k). Fewer asks
  // less, and with placement answers (find_node's kFindNodePlacement) the closest node's answer already names the
  // target's true neighbourhood (a put, docs/protocol.md 5). A path also asks every one of its seeds (at once,
  // outside alpha) and ends only once they answered, failed or went slow: colluders nearest the target among the
  // seeds would otherwise end every path on their answers, which name only each other (docs/protocol.md 10.8).
  // A slow candidate, seed or not, holds its path no longer once the lookup has an answer (one within the window
  // widens it, so the next candidate takes its place); its late answer still counts while the lookup runs.
  // Candidates an answer marked unconfirmed (QueryResponse::unconfirmed) are placed on, not asked (with
  // placement only).
  size_t path_answers = 0;
  // A plain lookup that lets its slow candidates go as a put's does (a join's look at its own id: a dead node's
  // late answer would only add what the join's refreshes learn anyway). Once the lookup has an answer, a slow
  // candidate holds no place among its path's k closest (the next candidate is asked instead) and the lookup ends
  // without its answer; a late answer still counts while the lookup runs. Put lookups (path_answers) always do.
  bool release_slow = false;
  // Checked before each step: true ends the lookup at once (a refresh whose bucket filled meanwhile).
  std::function<bool()> enough = {};
  // Fill LookupResult::placement.
  bool placement = false;
  // Called once, with the target as the first answer that names it gave it (target_named), while the lookup
  // goes on: a caller that wants the contact soon (find_contact) need not wait for the end.
  std::function<void(const Contact&)> on_named = {};
  // Seeds that have already answered this lookup's question, with the contacts they named (a join's probes,
  // Dht::bootstrap): each is an answered candidate of depth 1 (or of the depth and path of the one before it that
  // named it), not asked again, and what it named are candidates one deeper on its path, as if the lookup had
  // asked it. For a lookup whose target is not among them (a join's of its own id): they do not set `target`,
  // `target_named` or call on_named.
  std::vector<std::pair<Contact, std::vector<Contact>>> answered = {};
};

class Lookup : public std::enable_shared_from_this<Lookup> {
 public:
  static void start(LookupParams params, std::vector<Contact> seeds, QueryFn query, std::function<TimePoint()> now,
                    std::function<void(LookupResult)> done);

 private:
  enum class State : uint8_t { kNew, kInFlight, kSlow, kAnswered, kFailed };  // kSlow: in flight, off alpha
  struct Candidate {  // 96 bytes
    Contact contact;
    State state = State::kNew;
    uint8_t path = 0;    // paths are at most kMaxPaths
    uint16_t depth = 1;  // saturates
    bool store_only = false;  // named only as unconfirmed (QueryResponse::unconfirmed): placed on, never asked
    bool widened = false;     // counted in path_widened_
  };
  static constexpr size_t kMaxPaths = 255;

  Lookup() = default;
  void add(const Contact& c, uint16_t depth, size_t path, bool store_only = false);
  void ask(const NodeId& dist, const Contact& contact);
  void step();
  void on_answer(const NodeId& distance, std::optional<QueryResponse> r);
  void on_slow(const NodeId& distance);
  size_t window(size_t path) const;                 // how many of its closest candidates a path waits for
  bool within_window(const NodeId& dist, size_t path) const;  // the candidate is among them
  bool settled(const std::vector<bool>& active) const;
  void finish();

  LookupParams p_;
  QueryFn query_;
  std::function<TimePoint()> now_;
  std::function<void(LookupResult)> done_;
  // All paths' candidates, sorted by XOR distance to the target: one flat block, not a node per candidate, so a
  // lookup leaves no scattered holes in the heap when it ends. It starts with room for the seeds and grows as
  // answers name more, doubling but never past the most it can hold (3k a path, and the vantage points): most
  // lookups (a refresh whose bucket filled, a get that settled) end well short of that, and room for 3k made at
  // the start (9.6 KiB a path) was the largest part of the heap's peak when a thousand nodes joined at once
  // (bench/README.md, "dht: signatures verified once per process ..."). An entry is 116 bytes: its distance
  // (kept, not recomputed, for the binary searches) and its candidate.
  using Entry = std::pair<NodeId, Candidate>;
  std::vector<Entry> shortlist_;
  size_t position(const NodeId& dist) const;              // where `dist` is, or would go, in shortlist_
  std::vector<Entry>::iterator find(const NodeId& dist);  // shortlist_.end() when absent
  void make_room();                                       // before an insert into shortlist_: capacity for one more
  std::vector<size_t> path_size_;          // candidates per path (bounded to path_bound() each)
  // Distances of asked candidates (answered or failed) that a closer newcomer pushed out of a full path, sorted: a
  // later answer naming one again does not bring it back, so no node is asked twice (at most one entry per request).
  std::vector<NodeId> dropped_asked_;
  size_t path_bound() const { return 3 * p_.k; }  // candidates a path keeps: its 3k closest
  std::vector<size_t> path_in_flight_;  // kInFlight candidates of the path (alpha bounds these)
  std::vector<size_t> path_slow_;       // kSlow candidates of the path
  size_t slow_out() const {             // kSlow candidates of every path
    size_t n = 0;
    for (size_t s : path_slow_) n += s;
    return n;
  }
  // Candidates of the path that failed or are slow and were within its window then (path_answers widens by these):
  // one beyond it (a seed asked only as a seed, or one closer newcomers pushed out) widens nothing.
  std::vector<size_t> path_widened_;
  std::vector<size_t> path_values_;  // values the path got that may settle it (see settle_within)
  bool valued(size_t path) const { return path_values_[path] >= p_.settle_values; }
  // release_slow (a plain lookup): a slow candidate passed over once the lookup has an answer.
  bool let_go(const Candidate& c) const {
    return p_.release_slow && !p_.path_answers && c.state == State::kSlow && answered_ > 0;
  }
  bool disagree_ = false;          // two values received differ
  size_t in_flight_ = 0;
  // Answers received, and seeds that came answered (LookupParams::answered); a put's or release_slow lookup lets
  // slow candidates go after the first.
  size_t answered_ = 0;
  bool finished_ = false;
  TimePoint started_{};
  LookupResult result_;
};

}  // namespace storjnet::dht
