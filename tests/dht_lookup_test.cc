// DHT lookups in isolation, over fake networks: the k closest, disjoint paths, a put's placement, a get's
// settling, liars and colluders, re-entrancy. Slow and held requests: dht_lookup_slow_test.cc.
#include <gtest/gtest.h>

#include <unordered_set>

#include "dht/codec.h"
#include "dht/lookup.h"
#include "dht_test_util.h"

using namespace storjnet;
using namespace storjnet::dht;
using namespace storjnet::test;

TEST(Lookup, FindsTheKClosestOverAFakeNetworkAndCountsRounds) {
  // 400 nodes; each knows the 8 nodes closest to it plus 8 random ones: a lookup must converge.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 8, 8, 9);
  NodeId target = dht_key("target");
  auto want = by_distance(nodes, target);
  std::vector<std::pair<Contact, QueryDone>> queue;
  QueryFn query = [&](const Contact& to, QueryDone done, QuerySlow) { queue.emplace_back(to, std::move(done)); };
  std::optional<LookupResult> result;
  LookupParams p{nodes[0].id, target, false, false, 8, 3, 1, {}};
  Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult r) { result = r; });
  size_t max_in_flight = 0;
  while (!queue.empty()) {
    max_in_flight = std::max(max_in_flight, queue.size());
    auto [to, done] = std::move(queue.front());
    queue.erase(queue.begin());
    if (to.id == want[3].id) {
      done(std::nullopt);  // one of the closest is down
      continue;
    }
    done(QueryResponse{knows[to.id], std::nullopt});
  }
  ASSERT_TRUE(result);
  EXPECT_LE(max_in_flight, 3u);
  ASSERT_EQ(result->closest.size(), 8u);
  std::vector<NodeId> expect;
  for (auto& c : want)
    if (c.id != want[3].id && c.id != nodes[0].id && expect.size() < 8) expect.push_back(c.id);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(result->closest[i].id, expect[i]);
  EXPECT_GE(result->stats.rounds, 2);
  EXPECT_GE(result->stats.rpcs, 8);
}

TEST(Lookup, APutsLookupEndsOnceEachPathsClosestAnsweredAndPlacesOnTheNamed) {
  // path_answers = 2 over 3 paths: a path ends once its 2 closest candidates that did not fail answered;
  // placement holds every candidate that did not fail, answered or only named, closest first. Answers to
  // requests still out when it ends (farther candidates) come to a finished lookup and change nothing.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 12, 8, 9);
  NodeId target = dht_key("placed");
  auto want = by_distance(nodes, target);
  auto run = [&](size_t path_answers) {
    std::vector<std::pair<Contact, QueryDone>> queue;
    QueryFn query = [&](const Contact& to, QueryDone done, QuerySlow) { queue.emplace_back(to, std::move(done)); };
    std::optional<LookupResult> result;
    LookupParams p{nodes[0].id, target, false, false, 8, 3, 3, {}};
    p.path_answers = path_answers;
    p.placement = true;
    Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult r) { result = r; });
    size_t after_end = 0;
    while (!queue.empty()) {
      auto [to, done] = std::move(queue.front());
      queue.erase(queue.begin());
      after_end += result.has_value();
      if (to.id == want[1].id) {
        done(std::nullopt);  // one of the closest is down
        continue;
      }
      done(QueryResponse{knows[to.id], std::nullopt});
    }
    EXPECT_TRUE(result);
    if (result) result->stats.rpcs -= after_end;
    return result.value_or(LookupResult{});
  };
  LookupResult full = run(0);
  LookupResult put = run(2);
  std::vector<NodeId> expect;
  for (auto& c : want)
    if (c.id != want[1].id && c.id != nodes[0].id && expect.size() < 8) expect.push_back(c.id);
  ASSERT_GE(put.placement.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(put.placement[i].id, expect[i]) << i;
  for (auto& c : put.placement) EXPECT_NE(c.id, want[1].id);  // it failed: never placed on
  // Cheaper though it asks all 20 of its seeds (k = 8 here; a Dht's put starts from k seeds).
  EXPECT_LT(put.stats.rpcs, full.stats.rpcs) << put.stats.rpcs << " vs " << full.stats.rpcs;
  EXPECT_TRUE(full.placement.size() >= 8 && full.placement[0].id == expect[0]);
}

TEST(Lookup, TellsTheFirstAnswerNamingTheTargetOnceAndGoesOnToTheEnd) {
  // The target is a node that answers no one (behind a NAT): on_named hands out its contact as soon as an
  // answer names it, once, and the lookup still runs to its k closest (the neighbourhood a punch asks).
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 8, 8, 9);
  const Contact silent = nodes[200];
  std::vector<std::pair<Contact, QueryDone>> queue;
  QueryFn query = [&](const Contact& to, QueryDone done, QuerySlow) { queue.emplace_back(to, std::move(done)); };
  std::optional<LookupResult> result;
  std::vector<Contact> named;
  size_t answered = 0, answered_when_named = 0;
  LookupParams p{nodes[0].id, silent.id, false, true, 8, 3, 1, {}};
  p.on_named = [&](const Contact& c) {
    named.push_back(c);
    answered_when_named = answered;
    EXPECT_FALSE(result) << "named after the end";
  };
  Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult r) { result = r; });
  while (!queue.empty()) {
    auto [to, done] = std::move(queue.front());
    queue.erase(queue.begin());
    if (to.id == silent.id) {
      done(std::nullopt);
      continue;
    }
    ++answered;
    done(QueryResponse{knows[to.id], std::nullopt});
  }
  ASSERT_TRUE(result);
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].id, silent.id);
  EXPECT_FALSE(result->target);  // it never answered
  ASSERT_TRUE(result->target_named);
  EXPECT_EQ(result->target_named->id, silent.id);
  EXPECT_GT(answered, answered_when_named);  // the lookup went on after naming it
  EXPECT_EQ(result->closest.size(), 8u);
}

namespace {
// Runs a lookup for `target` from `seeds` over a fake network: queries answered in FIFO order by `answer`. Those
// to a node `late` names go slow at once and are answered only after every other one; the lookup must have ended
// by then (the result is what it had).
LookupResult run_lookup(const LookupParams& p, const std::vector<Contact>& seeds,
                        const std::function<QueryResponse(const Contact&)>& answer,
                        const std::function<bool(const Contact&)>& late = {}) {
  std::vector<std::pair<Contact, QueryDone>> queue, held;
  QueryFn query = [&](const Contact& to, QueryDone done, QuerySlow slow) {
    if (!late || !late(to)) {
      queue.emplace_back(to, std::move(done));
      return;
    }
    held.emplace_back(to, std::move(done));
    slow();
  };
  std::optional<LookupResult> result;
  Lookup::start(p, seeds, query, [] { return TimePoint(0); }, [&](LookupResult r) { result = r; });
  while (!queue.empty()) {
    auto [to, done] = std::move(queue.front());
    queue.erase(queue.begin());
    done(answer(to));
  }
  EXPECT_TRUE(result);  // ended without the late answers
  for (auto& [to, done] : held) done(answer(to));
  return result.value_or(LookupResult{});
}
}  // namespace

TEST(Lookup, DisjointPathsSurviveLiarsThatAnswerOnlyWithEachOther) {
  // Eclipse: 30 liars whose ids are the closest of 3,000 to the target (as if ground there) answer every
  // query with each other and never with a value. 300 honest nodes know only honest nodes; the 8 honest
  // nodes closest to the target hold the value. The searcher's seeds: one liar, two honest nodes.
  NodeId target = dht_key("eclipsed");
  std::vector<Contact> all;
  for (uint32_t i = 0; i < 3000; ++i) all.push_back(contact_n(1000 + i));
  std::sort(all.begin(), all.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  std::vector<Contact> liars(all.begin(), all.begin() + 30), honest(all.begin() + 30, all.begin() + 330);
  std::unordered_set<NodeId> is_liar, holder;
  for (auto& l : liars) is_liar.insert(l.id);
  for (size_t i = 0; i < 8; ++i) holder.insert(honest[i].id);
  auto knows = fake_tables(honest, 8, 8, 3);
  StoredValue v = value_of("eclipsed", Bytes{1, 2, 3}, 5, identity_n(10));
  auto answer = [&](const Contact& to) {
    QueryResponse r;
    if (is_liar.count(to.id)) r.contacts.assign(liars.begin(), liars.begin() + 8);
    else if (holder.count(to.id)) r.value = v;
    else r.contacts = knows[to.id];
    return r;
  };
  // Seeds far from the target: the honest ones are the farthest honest nodes.
  std::vector<Contact> seeds = {liars[29], honest[299], honest[298]};
  LookupParams one{contact_n(1).id, target, true, false, 8, 3, 1, {}};
  auto captured = run_lookup(one, seeds, answer);
  EXPECT_TRUE(captured.values.empty());  // one path: the liars' closeness wins it
  LookupParams three = one;
  three.paths = 3;
  three.settle_on_agreement = false;  // collect every value (settling: the next test)
  auto res = run_lookup(three, seeds, answer);
  EXPECT_GE(res.values.size(), 4u);  // two honest paths each reach the holders
  for (auto& f : res.values) EXPECT_TRUE(holder.count(f.from.id));
  // Disjoint: no node was asked twice, and in-flight per path stays within alpha (checked by the rpcs bound).
  EXPECT_LE(res.stats.rpcs, static_cast<int>(3 * 3 * 8 * 4));
}

TEST(Lookup, APutsLookupAsksPastTheColludersNearestToItsSeedsAndPlacesOnHonestHolders) {
  // A put's lookup (path_answers = 2, 3 paths) whose 6 seeds nearest the key are colluders (ids ground near the
  // key, as the 4 colluders closest to it are): each path's 2 closest are liars that name only each other. The
  // paths still ask their farther, honest seeds, whose answers name the key's honest neighbourhood; so the k = 8
  // closest placed hold the 4 honest nodes among the key's true 8 closest, not only colluders. Colluders that
  // answer late (slow at once, their answers after every honest one) gain nothing by it: the paths go on without
  // them, and the colluders nearest the key, which only they name, are never met.
  NodeId target = dht_key("placed among liars");
  std::vector<Contact> all;
  for (uint32_t i = 0; i < 3000; ++i) all.push_back(contact_n(20000 + i));
  std::sort(all.begin(), all.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  std::vector<Contact> liars(all.begin(), all.begin() + 4), honest(all.begin() + 4, all.begin() + 40);
  liars.insert(liars.end(), all.begin() + 40, all.begin() + 46);  // near the key, nearer than any honest seed
  honest.insert(honest.end(), all.begin() + 46, all.begin() + 400);
  std::unordered_set<NodeId> is_liar;
  for (auto& l : liars) is_liar.insert(l.id);
  auto knows = fake_tables(honest, 8, 8, 3);
  auto answer = [&](const Contact& to) {
    QueryResponse r;
    r.contacts = is_liar.count(to.id) ? liars : knows[to.id];
    return r;
  };
  // Our table's closest to the key, closest first (dealt to the paths in turn): the 6 colluders, then honest
  // nodes well away from the key.
  std::vector<Contact> seeds(liars.begin() + 4, liars.end());
  for (size_t i = 60; i < 120; i += 10) seeds.push_back(honest[i]);
  LookupParams p{contact_n(1).id, target, false, false, 8, 3, 3, {}};
  p.path_answers = 2;
  p.placement = true;
  for (bool late : {false, true}) {
    SCOPED_TRACE(late ? "colluders answer late" : "colluders answer at once");
    std::function<bool(const Contact&)> liar;
    if (late) liar = [&](const Contact& c) { return is_liar.count(c.id) > 0; };
    LookupResult res = run_lookup(p, seeds, answer, liar);
    if (late) {  // ended on the honest answers alone: every colluder asked (the 6 seeds) was still slow
      std::vector<NodeId> asked_liars;
      for (auto it = liars.begin() + 4; it != liars.end(); ++it) asked_liars.push_back(it->id);
      std::sort(res.slow.begin(), res.slow.end());
      std::sort(asked_liars.begin(), asked_liars.end());
      EXPECT_EQ(res.slow, asked_liars);
    }
    ASSERT_GE(res.placement.size(), 8u);
    size_t honest_placed = 0;
    for (size_t i = 0; i < 8; ++i) honest_placed += !is_liar.count(res.placement[i].id);
    EXPECT_EQ(honest_placed, late ? 8u : 4u);  // late, the colluders they would have named are never met
    for (size_t i = 0; i < 4; ++i)
      EXPECT_NE(std::find_if(res.placement.begin(), res.placement.begin() + 8,
                             [&](const Contact& c) { return c.id == honest[i].id; }),
                res.placement.begin() + 8)
          << "the honest node " << i << " closest to the key is not placed on";
  }
}

TEST(Lookup, AValueLookupSettlesWhenItsPathsAgreeAndRunsToTheEndWhenOneAnswerDisagrees) {
  // 300 nodes, each knowing its 8 closest and 8 random others; the 8 closest to the key hold its value.
  NodeId target = dht_key("settle");
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 300; ++i) nodes.push_back(contact_n(5000 + i));
  std::sort(nodes.begin(), nodes.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  sim::Rng rng(4);
  std::unordered_map<NodeId, std::vector<Contact>> knows;
  for (auto& n : nodes) {
    auto sorted = nodes;
    std::sort(sorted.begin(), sorted.end(), [&](auto& a, auto& b) { return closer(n.id, a.id, b.id); });
    std::vector<Contact> k(sorted.begin() + 1, sorted.begin() + 9);
    for (int r = 0; r < 8; ++r) k.push_back(nodes[rng.below(nodes.size())]);
    knows[n.id] = k;
  }
  Identity owner = identity_n(10);
  StoredValue v = value_of("settle", Bytes{1}, 5, owner), stale = value_of("settle", Bytes{0}, 4, owner);
  std::unordered_set<NodeId> liars;  // answer with the owner's older value (a replayed, validly signed version)
  auto answer = [&](const Contact& to) {
    QueryResponse r;
    bool holds = false;
    for (size_t i = 0; i < 8; ++i) holds = holds || nodes[i].id == to.id;
    if (liars.count(to.id)) r.value = stale;
    else if (holds) r.value = v;
    else r.contacts = knows[to.id];
    return r;
  };
  std::vector<Contact> seeds = {nodes[299], nodes[298], nodes[297], nodes[296], nodes[295], nodes[294]};
  LookupParams p{contact_n(1).id, target, true, false, 8, 3, 3, {}};
  auto full_params = p;
  full_params.settle_on_agreement = false;
  auto full = run_lookup(full_params, seeds, answer);
  auto settled = run_lookup(p, seeds, answer);
  ASSERT_FALSE(settled.values.empty());
  for (auto& f : settled.values) EXPECT_TRUE(same_signed_value(f.value, v));
  EXPECT_LT(settled.stats.rpcs, full.stats.rpcs);  // agreeing paths stop at their first value
  EXPECT_GT(full.values.size(), settled.values.size());
  // One holder at a time replays an older version. Either the paths settle before reaching it (all they saw
  // agrees), or they see it, disagree, and every path runs to its end so the caller sees both versions.
  size_t contested = 0;
  for (size_t liar = 0; liar < 8; ++liar) {
    liars = {nodes[liar].id};
    auto res = run_lookup(p, seeds, answer);
    bool saw_stale = false, saw_new = false;
    for (auto& f : res.values) {
      saw_stale = saw_stale || same_signed_value(f.value, stale);
      saw_new = saw_new || same_signed_value(f.value, v);
    }
    if (!saw_stale) continue;
    ++contested;
    EXPECT_TRUE(saw_new) << "liar " << liar;
    EXPECT_EQ(res.values.size(), full.values.size()) << "liar " << liar;
    EXPECT_EQ(res.stats.rpcs, full.stats.rpcs) << "liar " << liar;
  }
  EXPECT_GT(contested, 0u);
}

TEST(Lookup, CollidersMetOnTheWayDoNotSettleAGet) {
  // 300 nodes; the 8 closest to the key hold the owner's value. 30 colluders scattered far from the key (every
  // ninth node from the 30th on) answer every query with their own, validly signed value for the key. Seeds:
  // one colluder and one far honest node per path, so every path meets a colluder at once.
  NodeId target = dht_key("colluded");
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 300; ++i) nodes.push_back(contact_n(7000 + i));
  std::sort(nodes.begin(), nodes.end(), [&](auto& a, auto& b) { return closer(target, a.id, b.id); });
  sim::Rng rng(5);
  std::unordered_map<NodeId, std::vector<Contact>> knows;
  for (auto& n : nodes) {
    auto sorted = nodes;
    std::sort(sorted.begin(), sorted.end(), [&](auto& a, auto& b) { return closer(n.id, a.id, b.id); });
    std::vector<Contact> k(sorted.begin() + 1, sorted.begin() + 9);
    for (int r = 0; r < 8; ++r) k.push_back(nodes[rng.below(nodes.size())]);
    knows[n.id] = k;
  }
  std::unordered_set<NodeId> colluders;
  std::vector<Contact> seeds;
  for (size_t i = 30; i < 300; i += 9) {
    colluders.insert(nodes[i].id);
    if (seeds.size() < 3) seeds.push_back(nodes[i]);
  }
  for (size_t i = 297; i < 300; ++i) seeds.push_back(nodes[i]);  // dealt round-robin: one of each per path
  StoredValue honest = value_of("colluded", Bytes{1}, 5, identity_n(10));
  StoredValue forged = value_of("colluded", Bytes{2}, 6, identity_n(11));
  auto answer = [&](const Contact& to) {
    QueryResponse r;
    bool holds = false;
    for (size_t i = 0; i < 8; ++i) holds = holds || nodes[i].id == to.id;
    if (colluders.count(to.id)) r.value = forged;
    else if (holds) r.value = honest;
    else r.contacts = knows[to.id];
    return r;
  };
  auto saw = [](const LookupResult& res, const StoredValue& v) {
    return std::any_of(res.values.begin(), res.values.end(), [&](auto& f) { return same_signed_value(f.value, v); });
  };
  LookupParams p{contact_n(1).id, target, true, false, 8, 3, 3, {}};
  auto naive = run_lookup(p, seeds, answer);
  EXPECT_TRUE(saw(naive, forged));
  EXPECT_FALSE(saw(naive, honest));  // the colluders' first values settled it: no vote possible
  p.settle_within = nodes[7].id ^ target;  // where the holders are
  p.settle_values = 2;
  auto guarded = run_lookup(p, seeds, answer);
  EXPECT_TRUE(saw(guarded, honest));  // the paths went on to the holders, so the caller sees both and votes
  EXPECT_TRUE(saw(guarded, forged));
}

TEST(Lookup, EnoughEndsItBeforeTheNextRequestAndAnswersStillDueChangeNothing) {
  // A refresh's `enough` (its bucket filled) is checked before every step: once true, the lookup ends at once,
  // sends nothing more, and the answers still due reach a finished lookup. Checked at the start too.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 400; ++i) nodes.push_back(contact_n(i));
  auto knows = fake_tables(nodes, 8, 8, 9);
  NodeId target = dht_key("refresh");
  size_t answered = 0, asked = 0;
  std::vector<std::pair<Contact, QueryDone>> queue;
  QueryFn query = [&](const Contact& to, QueryDone done, QuerySlow) {
    ++asked;
    queue.emplace_back(to, std::move(done));
  };
  int finished = 0;
  std::optional<LookupResult> result;
  LookupParams p{nodes[0].id, target, false, false, 8, 3, 1, {}};
  p.enough = [&] { return answered >= 4; };
  Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult r) {
    ++finished;
    result = std::move(r);
  });
  size_t asked_at_end = 0;
  while (!queue.empty()) {
    auto [to, done] = std::move(queue.front());
    queue.erase(queue.begin());
    ++answered;
    done(QueryResponse{knows[to.id], std::nullopt});
    if (finished && !asked_at_end) asked_at_end = asked;
  }
  ASSERT_EQ(finished, 1);
  EXPECT_EQ(asked, asked_at_end) << "a request went out after enough";
  EXPECT_LE(asked, 4u + 3u);  // the 4 answers, plus at most alpha in flight when the 4th came
  EXPECT_EQ(result->closest.size(), 4u);

  // Already enough when it starts: no request at all.
  asked = 0;
  finished = 0;
  p.enough = [] { return true; };
  Lookup::start(p, knows[nodes[0].id], query, [] { return TimePoint(0); }, [&](LookupResult) { ++finished; });
  EXPECT_EQ(finished, 1);
  EXPECT_EQ(asked, 0u);
}

TEST(Lookup, ReentrantAnswersFinishExactlyOnce) {
  // The query function answers synchronously (a failure, then contacts): the state machine must not
  // re-enter itself into a double finish or a use after free.
  std::vector<Contact> nodes;
  for (uint32_t i = 0; i < 50; ++i) nodes.push_back(contact_n(i));
  int finished = 0, asked = 0;
  QueryFn query = [&](const Contact&, QueryDone done, QuerySlow) {
    if (++asked % 3 == 0) return done(std::nullopt);
    done(QueryResponse{{nodes[static_cast<size_t>(asked) % nodes.size()]}, std::nullopt});
  };
  LookupParams p{nodes[0].id, dht_key("x"), false, false, 8, 3, 3, {}};
  Lookup::start(p, {nodes[1], nodes[2], nodes[3], nodes[4]}, query, [] { return TimePoint(0); },
                [&](LookupResult) { ++finished; });
  EXPECT_EQ(finished, 1);
}
