// DHT lookups with their requests held for the test to answer, fail or call slow, one at a time: slow
// candidates (overdue answers), a put's window and seeds, a join's lookup, marks, no node asked twice.
#include <gtest/gtest.h>

#include <unordered_map>

#include "dht/lookup.h"
#include "dht_test_util.h"

using namespace storjnet;
using namespace storjnet::dht;
using namespace storjnet::test;

namespace {
// A request the lookup made, held for the test to answer (or call slow) when it likes.
struct Asked {
  Contact to;
  QueryDone done;
  QuerySlow slow;
};
QueryFn recorder(std::vector<Asked>& queue) {
  return [&queue](const Contact& to, QueryDone done, QuerySlow slow) {
    queue.push_back({to, std::move(done), std::move(slow)});
  };
}

// A lookup over 400 fake nodes (k 8, alpha 3, one path), its requests held for the test to answer: a put's
// (path_answers 2, placement) or a plain one. Not to be moved once started (the query function holds `queue`).
struct HeldLookup {
  std::vector<Contact> nodes;
  NodeId target;
  std::vector<Contact> want;  // the nodes by distance to the target
  std::vector<Asked> queue;
  std::optional<LookupResult> result;

  explicit HeldLookup(const std::string& key) : target(dht_key(key)) {
    for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
    want = by_distance(nodes, target);
  }
  void start(std::vector<Contact> seeds, bool put = true) {
    LookupParams p{nodes[399].id, target, false, false, 8, 3, 1, {}};
    p.path_answers = put ? 2 : 0;
    p.placement = put;
    Lookup::start(p, std::move(seeds), recorder(queue), [] { return TimePoint(0); },
                  [this](LookupResult r) { result = r; });
  }
  bool asked(const Contact& c) const {
    return std::any_of(queue.begin(), queue.end(), [&](const Asked& a) { return a.to.id == c.id; });
  }
  // c's request, out of the queue. Never asked: the test fails here, and the empty request it gets throws when
  // answered (no end() read).
  Asked take(const Contact& c) {
    auto it = std::find_if(queue.begin(), queue.end(), [&](const Asked& a) { return a.to.id == c.id; });
    if (it == queue.end()) {
      ADD_FAILURE() << "not asked: " << c.id.hex();
      return Asked{};
    }
    Asked a = std::move(*it);
    queue.erase(it);
    return a;
  }
};
}  // namespace

TEST(Lookup, ASlowCandidateFreesItsPathsSlotAndItsLateAnswerStillCounts) {
  // alpha 1 on one path: a candidate whose request went unanswered for one attempt's time (slow) no longer holds
  // the path's one slot, so the next candidate is asked; its answer, coming late, is used as any other.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 8, 8, 9);
  NodeId target = dht_key("slow");
  auto want = by_distance(nodes, target);
  std::vector<Asked> queue;
  QueryFn query = recorder(queue);
  std::optional<LookupResult> result;
  LookupParams p{nodes[0].id, target, false, false, 8, 1, 1, {}};
  // The seeds: the 8 nodes closest to the target but the first, which the seeds' answers name.
  std::vector<Contact> seeds(want.begin() + 1, want.begin() + 9);
  Lookup::start(p, seeds, query, [] { return TimePoint(0); }, [&](LookupResult r) { result = r; });
  ASSERT_EQ(queue.size(), 1u);
  Asked first = std::move(queue.front());
  queue.clear();
  EXPECT_EQ(first.to.id, want[1].id);
  first.slow();
  ASSERT_EQ(queue.size(), 1u);  // the next candidate, at once
  EXPECT_EQ(queue.front().to.id, want[2].id);
  first.slow();                 // a second notice changes nothing
  EXPECT_EQ(queue.size(), 1u);
  size_t max_in_flight = 0;
  while (!queue.empty()) {
    max_in_flight = std::max(max_in_flight, queue.size());
    Asked a = std::move(queue.front());
    queue.erase(queue.begin());
    a.done(QueryResponse{knows[a.to.id], std::nullopt});
  }
  EXPECT_LE(max_in_flight, 1u);  // the slow one aside, alpha still holds
  EXPECT_FALSE(result);          // it waits for the slow candidate: one of the closest
  first.done(QueryResponse{knows[first.to.id], std::nullopt});
  ASSERT_TRUE(result);
  ASSERT_EQ(result->closest.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(result->closest[i].id, want[i].id) << i;
  EXPECT_EQ(result->failed, 0u);
}

TEST(Lookup, ASlowCandidateWidensAPutsPathWhichEndsWithoutIt) {
  // A put's lookup (path_answers = 2) asks past its 2 closest only for failures, and for slow ones: the third
  // closest is asked as soon as one of the two is slow, and the path ends once the other two answered, without
  // waiting out the slow one's timeout (a dead node among every put's closest would cost each put a timeout).
  // The slow one stays a placement candidate in its place (not failed: a store to it that gets no answer passes its
  // turn on), and the result names it slow.
  HeldLookup l("slow put");
  const auto& want = l.want;
  auto& result = l.result;
  l.start({want[10]});
  auto take = [&](const Contact& c) { return l.take(c); };
  auto asked = [&](const Contact& c) { return l.asked(c); };
  take(want[10]).done(QueryResponse{{want[0], want[1], want[2], want[3]}, std::nullopt});
  ASSERT_TRUE(asked(want[0]) && asked(want[1]));
  EXPECT_FALSE(asked(want[2]));
  Asked first = take(want[0]);
  first.slow();
  EXPECT_TRUE(asked(want[2]));  // at once, not after the slow one's timeout
  EXPECT_FALSE(asked(want[3]));
  take(want[1]).done(QueryResponse{});
  EXPECT_FALSE(result);  // want[2] took the slow one's place among the 2 closest: waited for
  take(want[2]).done(QueryResponse{});
  ASSERT_TRUE(result);
  EXPECT_FALSE(asked(want[3]));
  EXPECT_EQ(result->failed, 0u);
  ASSERT_EQ(result->placement.size(), 5u);  // want[0..3] (want[3] named, never asked), then want[10], the seed
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(result->placement[i].id, want[i].id) << i;
  EXPECT_EQ(result->placement[4].id, want[10].id);
  EXPECT_EQ(result->slow, std::vector<NodeId>{want[0].id});
  first.done(std::nullopt);  // its failure after the end changes nothing
  EXPECT_EQ(result->failed, 0u);
}

TEST(Lookup, APutsLookupWithNoAnswerYetWaitsForItsSlowSeeds) {
  // Every seed goes slow before any answers (our own link may be the slow one): the lookup knows nothing yet but
  // our table, so it waits; once one seed answers, the others, still slow, hold it no longer. (One path here; with
  // several, an answer on any path lets every path's slow candidates go.)
  HeldLookup l("all slow");
  const auto& want = l.want;
  l.start({want[0], want[1], want[7]});
  ASSERT_EQ(l.queue.size(), 3u);
  Asked a = l.take(want[0]), b = l.take(want[1]), c = l.take(want[7]);
  a.slow();
  b.slow();
  c.slow();
  EXPECT_FALSE(l.result);
  EXPECT_TRUE(l.queue.empty());  // nothing else known to ask
  b.done(QueryResponse{});
  ASSERT_TRUE(l.result);
  EXPECT_EQ(l.result->slow.size(), 2u);
  ASSERT_EQ(l.result->placement.size(), 3u);
  EXPECT_EQ(l.result->placement[0].id, want[0].id);  // slow ones keep their place by distance
}

TEST(Lookup, NoNodeIsAskedTwiceEvenWhenItsEntryWasDroppedForCloserNewcomers) {
  // A path keeps its 3k closest; a closer newcomer pushes its farthest out, answered or failed ones too. When a
  // later answer names a pushed-out node again, it must not be asked again: a dead node named by every answer
  // would otherwise cost a request (and a timeout) each time. Here every request goes slow and then answers,
  // synchronously, from inside the query function (so each notice asks the next candidates at once and the paths
  // fill early, k = 4: 12 a path); a fifth of the nodes are dead. Before the fix, seed 2 asked one node twice.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 8, 8, 9);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    NodeId target = dht_key("asked once " + std::to_string(seed));
    std::unordered_map<NodeId, int> asks;
    int finished = 0;
    QueryFn query = [&](const Contact& to, QueryDone done, QuerySlow slow) {
      ++asks[to.id];
      slow();
      if (to.id.bytes()[0] % 5 == 0) return done(std::nullopt);
      done(QueryResponse{knows[to.id], std::nullopt});
    };
    LookupParams p{nodes[seed].id, target, false, false, 4, 3, 3, {}};
    Lookup::start(p, knows[nodes[seed].id], query, [] { return TimePoint(0); }, [&](LookupResult) { ++finished; });
    EXPECT_EQ(finished, 1);
    for (auto& [id, n] : asks) EXPECT_EQ(n, 1) << "seed " << seed << ": " << id.hex() << " asked " << n << " times";
  }
}

TEST(Lookup, APutsLookupPlacesOnContactsMarkedUnconfirmedButAsksThemOnlyWhenNamedUnmarked) {
  // A put's find_node answers mark the contacts their answerer has not confirmed (a NATed node would only time
  // out): the lookup places on them but does not ask them, so its path asks its 2 closest other candidates. A later
  // answer that names one unmarked makes it worth asking again: a liar that marks the honest nodes near the key
  // still has them placed on, and has them asked once an honest answer names them.
  HeldLookup l("marked");
  const auto& want = l.want;
  auto& result = l.result;
  l.start({want[10]});
  auto asked = [&](const Contact& c) { return l.asked(c); };
  auto answer = [&](const Contact& c, QueryResponse r) { l.take(c).done(std::move(r)); };
  QueryResponse named{{want[0], want[1], want[2], want[3]}, std::nullopt};
  named.unconfirmed = 0b0101;  // want[0] and want[2]
  answer(want[10], named);
  EXPECT_FALSE(asked(want[0]));
  EXPECT_TRUE(asked(want[1]));
  EXPECT_FALSE(asked(want[2]));
  EXPECT_TRUE(asked(want[3]));  // the path's 2 closest it may ask: want[1] and want[3]
  answer(want[3], QueryResponse{});
  QueryResponse unmarked{{want[2]}, std::nullopt};  // want[1] has confirmed want[2]: worth asking
  answer(want[1], unmarked);
  EXPECT_TRUE(asked(want[2]));
  EXPECT_FALSE(asked(want[0]));
  EXPECT_FALSE(result);
  answer(want[2], QueryResponse{});
  ASSERT_TRUE(result);
  EXPECT_FALSE(asked(want[0]));  // never asked, yet placed first
  ASSERT_GE(result->placement.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(result->placement[i].id, want[i].id) << i;
  EXPECT_EQ(result->failed, 0u);
}

TEST(Lookup, ASlowSeedNoLongerHoldsAPutWithinOrBeyondItsPathsWindow) {
  // A put's path asks all of its seeds and waits for them (colluders nearest the key among them must not end it
  // alone), but a seed that goes slow (our table holds it, we cannot reach it now: dead, or a NATed contact whose
  // mapping lapsed) holds the put no longer, within the path's window or beyond it; its late answer still counts.
  for (bool within : {false, true}) {
    SCOPED_TRACE(within ? "slow seed within the window" : "slow seed beyond the window");
    HeldLookup l("slow seed");
    const auto& want = l.want;
    auto& result = l.result;
    // The window: the path's 2 closest (want[0], want[1]); want[7] beyond it, and its going slow or failing
    // widens nothing (only a candidate within the window does: want[1] going slow widens it to want[7]).
    l.start({want[0], want[1], want[7]});
    ASSERT_EQ(l.queue.size(), 3u);  // every seed at once
    Asked slow = l.take(within ? want[1] : want[7]);
    slow.slow();
    if (within) {
      // want[0] names want[2]: nearer than want[7], it takes the slow seed's place in the widened window.
      l.take(want[0]).done(QueryResponse{{want[2]}, std::nullopt});
      EXPECT_TRUE(l.asked(want[2]));
      l.take(want[7]).done(QueryResponse{});
      EXPECT_FALSE(result);
      l.take(want[2]).done(QueryResponse{});
    } else {
      l.take(want[0]).done(QueryResponse{});
      EXPECT_FALSE(result);  // want[1], a seed within the window, is still out
      l.take(want[1]).done(QueryResponse{});
    }
    ASSERT_TRUE(result);
    EXPECT_EQ(result->failed, 0u);
    slow.done(QueryResponse{});  // a late answer after the end changes nothing
  }

  // Only a put's lookup lets its slow candidates go: a plain one waits for its k closest.
  HeldLookup plain("slow seed, not a put");
  plain.start({plain.want[0], plain.want[1]}, false);
  Asked held = plain.take(plain.want[1]);
  held.slow();
  while (!plain.queue.empty()) {
    Asked a = std::move(plain.queue.front());
    plain.queue.erase(plain.queue.begin());
    a.done(QueryResponse{});
  }
  EXPECT_FALSE(plain.result);
  held.done(QueryResponse{});
  EXPECT_TRUE(plain.result);
}

TEST(Lookup, AValueLookupEndsWhenOnlySlowRequestsAreLeftAndOthersWaitForThem) {
  // One path, k 8: the 8 closest are asked; one goes slow (a dead holder). Once every other answered and nothing
  // is left to ask, a value lookup that found a value ends without it; one that found none, and a node lookup,
  // still wait for its answer or its failure (a slow node may be the one holder reached).
  enum Case { kValueFound, kNoValue, kNodeLookup };
  for (Case c : {kValueFound, kNoValue, kNodeLookup}) {
    SCOPED_TRACE(c == kValueFound ? "value found" : c == kNoValue ? "no value" : "node lookup");
    HeldLookup l("slow holder");
    LookupParams p{l.nodes[399].id, l.target, c != kNodeLookup, false, 8, 8, 1, {}};
    p.settle_on_agreement = false;  // run to the end: the case where a dead holder held gets
    std::vector<Contact> seeds(l.want.begin(), l.want.begin() + 8);
    Lookup::start(p, seeds, recorder(l.queue), [] { return TimePoint(0); }, [&](LookupResult r) { l.result = r; });
    ASSERT_EQ(l.queue.size(), 8u);
    Asked slow = l.take(l.want[3]);
    slow.slow();
    QueryResponse holder;
    if (c == kValueFound) holder.value = StoredValue{l.target, Bytes{1}, 1};
    l.take(l.want[0]).done(holder);
    while (!l.queue.empty()) {
      Asked a = std::move(l.queue.front());
      l.queue.erase(l.queue.begin());
      a.done(QueryResponse{});
    }
    EXPECT_EQ(l.result.has_value(), c == kValueFound);
    if (l.result) {
      EXPECT_EQ(l.result->closest.size(), 7u);  // the 7 that answered
      EXPECT_EQ(l.result->values.size(), 1u);
    }
    slow.done(std::nullopt);
    EXPECT_TRUE(l.result);
  }
}

TEST(Lookup, MarksServeAPutOnlyAndAFailureBeyondTheWindowWidensNothing) {
  // A lookup that places nothing (a join's, a refresh's, find_contact's) asks the contacts an answer marked:
  // marks are for a put, and a liar that marks the target must not keep a lookup from asking it.
  HeldLookup plain("not a put");
  plain.start({plain.want[10]}, false);
  QueryResponse marked{{plain.want[0], plain.want[1]}, std::nullopt};
  marked.unconfirmed = 0b11;
  plain.take(plain.want[10]).done(marked);
  EXPECT_TRUE(plain.asked(plain.want[0]) && plain.asked(plain.want[1]));

  // A put's seed beyond the window that fails asks no one more; one within it does.
  HeldLookup l("failed seed");
  l.start({l.want[0], l.want[1], l.want[7]});
  l.take(l.want[7]).done(std::nullopt);
  EXPECT_TRUE(l.queue.size() == 2 && !l.result);  // nothing new asked
  l.take(l.want[1]).done(QueryResponse{{l.want[3]}, std::nullopt});
  EXPECT_FALSE(l.asked(l.want[3]));  // third of the path now, outside its window of 2 (want[0] still out)
  l.take(l.want[0]).done(std::nullopt);  // within the window: widens it by one
  EXPECT_TRUE(l.asked(l.want[3]));
  l.take(l.want[3]).done(QueryResponse{});
  ASSERT_TRUE(l.result);
  EXPECT_EQ(l.result->failed, 2u);
}

TEST(Lookup, AJoinsLookupLetsASlowCandidateGoOnceItHasAnAnswerAndAsksTheNextInItsPlace) {
  // release_slow (a join's look at its own id): one path, k 8, alpha 8, ten seeds. A slow candidate among the 8
  // closest is waited for while no answer came (our own link may be the slow one); after the first answer it is let
  // go: the ninth closest is asked in its place and the lookup ends without it. A slow one that answers before the
  // end counts as any other.
  HeldLookup l("slow at a join");
  LookupParams p{l.nodes[399].id, l.target, false, false, 8, 8, 1, {}};
  p.release_slow = true;
  std::vector<Contact> seeds(l.want.begin(), l.want.begin() + 10);
  Lookup::start(p, seeds, recorder(l.queue), [] { return TimePoint(0); }, [&](LookupResult r) { l.result = r; });
  ASSERT_EQ(l.queue.size(), 8u);
  Asked dead = l.take(l.want[3]), late = l.take(l.want[5]);
  dead.slow();
  late.slow();
  EXPECT_FALSE(l.asked(l.want[8]));  // no answer yet: still waited for
  l.take(l.want[0]).done(QueryResponse{});
  EXPECT_TRUE(l.asked(l.want[8]) && l.asked(l.want[9]));  // in the places of the two slow ones
  late.done(QueryResponse{});  // late, but before the end
  while (!l.queue.empty()) {
    Asked a = std::move(l.queue.front());
    l.queue.erase(l.queue.begin());
    a.done(QueryResponse{});
  }
  ASSERT_TRUE(l.result);
  std::vector<NodeId> got;
  for (auto& c : l.result->closest) got.push_back(c.id);
  std::vector<NodeId> expect;
  for (size_t i : {0, 1, 2, 4, 5, 6, 7, 8}) expect.push_back(l.want[i].id);
  EXPECT_EQ(got, expect);
  EXPECT_EQ(l.result->failed, 0u);
  dead.done(QueryResponse{});  // after the end: changes nothing
  EXPECT_EQ(l.result->closest.size(), 8u);
}

TEST(Lookup, SeedsThatAlreadyAnsweredAreNotAskedAgainAndWhatTheyNamedIs) {
  // LookupParams::answered (a join's probes of its saved contacts): the two closest already answered, naming the
  // 6th and 7th closest. They are answered candidates from the start, never asked; what they named is asked as if
  // the lookup had heard it, at depth 2; they count in the result.
  HeldLookup l("answered already");
  LookupParams p{l.nodes[399].id, l.target, false, false, 8, 3, 1, {}};
  p.answered = {{l.want[0], {l.want[5], l.want[6]}}, {l.want[1], {}}};
  std::vector<Contact> seeds{l.want[0], l.want[1], l.want[2]};  // the table holds the answered ones too
  Lookup::start(p, seeds, recorder(l.queue), [] { return TimePoint(0); }, [&](LookupResult r) { l.result = r; });
  ASSERT_EQ(l.queue.size(), 3u);
  EXPECT_FALSE(l.asked(l.want[0]) || l.asked(l.want[1]));
  EXPECT_TRUE(l.asked(l.want[2]) && l.asked(l.want[5]) && l.asked(l.want[6]));
  while (!l.queue.empty()) {
    Asked a = std::move(l.queue.front());
    l.queue.erase(l.queue.begin());
    EXPECT_NE(a.to.id, l.want[0].id);
    EXPECT_NE(a.to.id, l.want[1].id);
    a.done(QueryResponse{});
  }
  ASSERT_TRUE(l.result);
  std::vector<NodeId> got;
  for (auto& c : l.result->closest) got.push_back(c.id);
  std::vector<NodeId> expect;
  for (size_t i : {0, 1, 2, 5, 6}) expect.push_back(l.want[i].id);
  EXPECT_EQ(got, expect);
  EXPECT_EQ(l.result->stats.rpcs, 3);
  EXPECT_EQ(l.result->stats.rounds, 2);  // want[5] and want[6] were named by depth-1 answers

  // One answered that an answered one before it named: it keeps that depth (2), and what it named is one deeper.
  HeldLookup m("answered, named before");
  LookupParams q{m.nodes[399].id, m.target, false, false, 8, 3, 1, {}};
  q.answered = {{m.want[3], {m.want[0]}}, {m.want[0], {m.want[7]}}};
  Lookup::start(q, {}, recorder(m.queue), [] { return TimePoint(0); }, [&](LookupResult r) { m.result = r; });
  ASSERT_EQ(m.queue.size(), 1u);
  EXPECT_TRUE(m.asked(m.want[7]));
  m.take(m.want[7]).done(QueryResponse{});
  ASSERT_TRUE(m.result);
  EXPECT_EQ(m.result->stats.rpcs, 1);
  EXPECT_EQ(m.result->stats.rounds, 3);
}
