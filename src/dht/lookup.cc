#include "dht/lookup.h"

#include <algorithm>

namespace storjnet::dht {

size_t Lookup::position(const NodeId& dist) const {
  auto it = std::lower_bound(shortlist_.begin(), shortlist_.end(), dist,
                             [](const Entry& e, const NodeId& d) { return e.first < d; });
  return static_cast<size_t>(it - shortlist_.begin());
}

std::vector<Lookup::Entry>::iterator Lookup::find(const NodeId& dist) {
  size_t pos = position(dist);
  return pos < shortlist_.size() && shortlist_[pos].first == dist ? shortlist_.begin() + static_cast<ptrdiff_t>(pos)
                                                                  : shortlist_.end();
}

void Lookup::make_room() {
  if (shortlist_.size() < shortlist_.capacity()) return;
  const size_t most = p_.paths * path_bound() + p_.must_query.size();
  shortlist_.reserve(std::max(shortlist_.size() + 1, std::min(2 * shortlist_.size(), most)));
}

void Lookup::start(LookupParams params, std::vector<Contact> seeds, QueryFn query, std::function<TimePoint()> now,
                   std::function<void(LookupResult)> done) {
  std::shared_ptr<Lookup> l(new Lookup());
  l->p_ = std::move(params);
  l->p_.paths = std::clamp<size_t>(l->p_.paths, 1, kMaxPaths);
  l->p_.alpha = std::max<size_t>(l->p_.alpha, 1);
  l->path_size_.assign(l->p_.paths, 0);
  l->path_in_flight_.assign(l->p_.paths, 0);
  l->path_slow_.assign(l->p_.paths, 0);
  l->path_values_.assign(l->p_.paths, 0);
  l->path_widened_.assign(l->p_.paths, 0);
  l->p_.settle_values = std::max<size_t>(l->p_.settle_values, 1);
  l->query_ = std::move(query);
  l->now_ = std::move(now);
  l->done_ = std::move(done);
  l->started_ = l->now_();
  l->shortlist_.reserve(seeds.size() + l->p_.must_query.size());
  size_t next = 0;
  for (auto& [c, named] : l->p_.answered) {
    if (c.id == l->p_.self) continue;
    l->add(c, 1, next++ % l->p_.paths);  // or already there, named by one before it: its path and depth stay
    auto it = l->find(c.id ^ l->p_.target);
    if (it == l->shortlist_.end() || it->second.state != State::kNew) continue;  // answered twice, or no room
    it->second.state = State::kAnswered;
    ++l->answered_;
    const size_t path = it->second.path;
    const auto depth = static_cast<uint16_t>(it->second.depth + 1);
    for (auto& n : named) l->add(n, depth, path);
  }
  l->p_.answered = {};
  for (auto& c : seeds) {
    if (c.id == l->p_.self) continue;
    l->add(c, 1, next++ % l->p_.paths);
  }
  // Vantage points: asked at once, on the paths in turn.
  for (auto& c : l->p_.must_query) {
    NodeId d = c.id ^ l->p_.target;
    size_t pos = l->position(d);
    if (c.id == l->p_.self || (pos < l->shortlist_.size() && l->shortlist_[pos].first == d)) continue;
    size_t path = next++ % l->p_.paths;
    l->make_room();
    l->shortlist_.insert(l->shortlist_.begin() + static_cast<ptrdiff_t>(pos),
                         Entry{d, Candidate{c, State::kInFlight, static_cast<uint8_t>(path), 1}});
    ++l->path_size_[path];
    ++l->path_in_flight_[path];
    l->result_.stats.rounds = std::max(l->result_.stats.rounds, 1);
    ++l->in_flight_;
    l->ask(d, c);
    if (l->finished_) return;
  }
  l->step();
}

void Lookup::add(const Contact& c, uint16_t depth, size_t path, bool store_only) {
  if (c.id == p_.self) return;
  NodeId d = c.id ^ p_.target;
  size_t pos = position(d);
  if (pos < shortlist_.size() && shortlist_[pos].first == d) {  // already some path's: paths stay disjoint
    if (!store_only) shortlist_[pos].second.store_only = false;  // named unmarked: worth asking after all
    return;
  }
  if (std::binary_search(dropped_asked_.begin(), dropped_asked_.end(), d)) return;  // asked once already
  // Bounded: each path keeps its 3k closest; a farther newcomer is not worth remembering.
  if (path_size_[path] >= path_bound()) {
    auto far = shortlist_.end();
    for (auto it = shortlist_.rbegin(); it != shortlist_.rend(); ++it)
      if (it->second.path == path) {
        far = std::prev(it.base());
        break;
      }
    if (far == shortlist_.end() || !(d < far->first) || far->second.state == State::kInFlight ||
        far->second.state == State::kSlow)
      return;
    if (far->second.state != State::kNew)  // answered or failed: remembered, so a later answer naming it is ignored
      dropped_asked_.insert(std::upper_bound(dropped_asked_.begin(), dropped_asked_.end(), far->first), far->first);
    shortlist_.erase(far);  // farther than d, so at pos or after: what comes before pos stays in place
    --path_size_[path];
  }
  make_room();
  shortlist_.insert(shortlist_.begin() + static_cast<ptrdiff_t>(pos),
                    Entry{d, Candidate{c, State::kNew, static_cast<uint8_t>(path), depth, store_only}});
  ++path_size_[path];
}

void Lookup::step() {
  if (finished_) return;
  if (p_.enough && p_.enough()) return finish();
  bool pending_new = false;
  std::vector<std::pair<NodeId, Contact>> to_send;
  std::vector<size_t> considered(p_.paths, 0), sending(p_.paths, 0);
  std::vector<bool> active(p_.paths, false);  // the path still has a candidate to ask or an answer to wait for
  bool near_open = false;  // some path's `want` closest (or seeds) have not all answered or gone slow yet
  for (size_t i = 0; i < p_.paths; ++i) active[i] = path_in_flight_[i] + path_slow_[i] > 0;
  for (auto& [dist, cand] : shortlist_) {
    size_t path = cand.path;
    if (cand.state == State::kFailed || cand.store_only) continue;  // store-only: placement's, not the path's
    if (let_go(cand)) continue;  // release_slow: its place among the path's k closest goes to the next candidate
    // path_answers: a path also asks all of its seeds (our own table's contacts), at once and however far its
    // window reaches: colluders placed nearest the target among them would otherwise end the path alone,
    // naming only each other (docs/protocol.md 10.8).
    const bool seed = p_.path_answers && cand.depth == 1;
    const bool beyond = considered[path]++ >= window(path);
    if (beyond && !seed) continue;
    // A candidate holds its path until it answers, fails, or goes slow (its answer overdue, past its
    // retransmission timeout: an honest node answers in a round trip, and a dead one, or a NATed contact whose
    // mapping lapsed, would hold every put for its whole timeout, one after another). One within the window
    // widened it (on_slow), so the next candidate is asked in its place. Its late answer still counts if it comes.
    // A lookup none of whose requests was answered yet waits for its slow ones too (our own link may be the slow
    // one): it knows nothing of the key's neighbourhood but our own table.
    const bool released = cand.state == State::kSlow && answered_ > 0;
    near_open = near_open || (cand.state != State::kAnswered && !released);
    if (cand.state != State::kNew) continue;
    active[path] = true;
    // A value lookup whose answers all agree asks no further on a path that gave a value (see settled()).
    if (p_.settle_on_agreement && valued(path) && !disagree_) continue;
    pending_new = true;
    if (path_in_flight_[path] + sending[path] >= p_.alpha && !seed) continue;
    cand.state = State::kInFlight;
    ++sending[path];
    to_send.emplace_back(dist, cand.contact);
    result_.stats.rounds = std::max<int>(result_.stats.rounds, cand.depth);
  }
  // A value lookup that found a value also ends once the only requests still out are overdue (slow): a dead
  // holder among a path's k closest would otherwise hold a get that did not settle early for its whole timeout,
  // and the next dead one after it as much again. A late answer is not waited for then; a lookup that found no
  // value yet still waits, as a slow node may be the one holder it reaches (docs/protocol.md 5, "Lookup").
  // So does a release_slow lookup with an answer (its slow candidates were let go above).
  const bool may_end_slow = (p_.want_value && !result_.values.empty()) || (p_.release_slow && answered_ > 0);
  const bool only_slow_out = may_end_slow && in_flight_ == slow_out();
  if (to_send.empty() && !pending_new && (in_flight_ == 0 || only_slow_out)) return finish();
  // path_answers: every path's closest have answered; answers still due from farther candidates are not waited for.
  if (p_.path_answers && !near_open) return finish();
  if (settled(active)) return finish();
  for (size_t i = 0; i < p_.paths; ++i) path_in_flight_[i] += sending[i];
  // Counted before any is asked: an answer given at once (a request refused as overloaded) steps again, and must
  // not take the ones still to be asked for none.
  in_flight_ += to_send.size();
  for (auto& [dist, contact] : to_send) {
    ask(dist, contact);
    if (finished_) return;
  }
}

void Lookup::ask(const NodeId& dist, const Contact& contact) {  // in_flight_ already counts it
  ++result_.stats.rpcs;
  auto self = shared_from_this();
  query_(contact, [self, dist](std::optional<QueryResponse> r) { self->on_answer(dist, std::move(r)); },
         [self, dist] { self->on_slow(dist); });
}

void Lookup::on_slow(const NodeId& dist) {
  if (finished_) return;
  auto it = find(dist);
  if (it == shortlist_.end() || it->second.state != State::kInFlight) return;
  Candidate& cand = it->second;
  cand.state = State::kSlow;
  --path_in_flight_[cand.path];
  ++path_slow_[cand.path];
  if (within_window(dist, cand.path)) {
    cand.widened = true;
    ++path_widened_[cand.path];
  }
  step();
}

void Lookup::on_answer(const NodeId& dist, std::optional<QueryResponse> r) {
  --in_flight_;
  if (finished_) return;
  auto it = find(dist);
  if (it == shortlist_.end()) return step();
  Candidate& cand = it->second;
  --(cand.state == State::kSlow ? path_slow_ : path_in_flight_)[cand.path];
  if (!r) {
    if (!cand.widened && within_window(dist, cand.path)) {  // a slow one that widened it keeps it widened
      cand.widened = true;
      ++path_widened_[cand.path];
    }
    cand.state = State::kFailed;
    ++result_.failed;
    return step();
  }
  if (cand.widened) {  // slow, and it answered after all: the window narrows again
    cand.widened = false;
    --path_widened_[cand.path];
  }
  cand.state = State::kAnswered;
  ++answered_;
  if (cand.contact.id == p_.target) {
    result_.target = cand.contact;
    if (p_.stop_on_target) return finish();
  }
  if (p_.want_value && r->value) {
    const StoredValue& v = *r->value;
    for (auto& f : result_.values)
      if (f.value.owner != v.owner || f.value.version != v.version || f.value.signature != v.signature) disagree_ = true;
    if (!p_.settle_within || (cand.contact.id ^ p_.target) <= *p_.settle_within) ++path_values_[cand.path];
    result_.values.push_back({cand.contact, std::move(*r->value)});
  }
  const uint16_t depth = cand.depth == UINT16_MAX ? cand.depth : static_cast<uint16_t>(cand.depth + 1);
  size_t path = cand.path;
  bool named_now = false;
  for (size_t i = 0; i < r->contacts.size(); ++i) {
    const Contact& c = r->contacts[i];
    if (c.id == p_.target && !result_.target_named) result_.target_named = c, named_now = true;
    // Moves the shortlist (and may drop cand for a closer newcomer): cand not used below.
    add(c, depth, path, p_.placement && i < 32 && (r->unconfirmed >> i & 1));  // marks serve a put only
  }
  if (named_now && p_.on_named) p_.on_named(*result_.target_named);  // may re-enter: state is consistent
  if (finished_) return;
  step();
}

size_t Lookup::window(size_t path) const {
  // path_answers: the window widens by one for each candidate of the path that failed or went slow while within
  // it, so a region of dead or unreachable nodes (a partition) is crossed with more requests in flight, as a full
  // lookup would.
  return p_.path_answers ? std::min(p_.k, p_.path_answers + path_widened_[path]) : p_.k;
}

bool Lookup::within_window(const NodeId& dist, size_t path) const {
  // As step() counts: the path's candidates that did not fail and may be asked, closest first.
  size_t rank = 0;
  for (const auto& [d, cand] : shortlist_) {
    if (d == dist) return rank < window(path);
    if (cand.path == path && cand.state != State::kFailed && !cand.store_only) ++rank;
  }
  return false;
}

bool Lookup::settled(const std::vector<bool>& active) const {
  if (!p_.want_value || !p_.settle_on_agreement || disagree_ || result_.values.empty()) return false;
  size_t settled_paths = 0, open = 0;
  for (size_t i = 0; i < p_.paths; ++i) {
    settled_paths += valued(i);
    open += !valued(i) && active[i];
  }
  // A majority of the paths agree (a path slowed by dead or silent nodes does not hold the get up), or every
  // path that can still answer has.
  return settled_paths >= p_.paths / 2 + 1 || open == 0;
}

void Lookup::finish() {
  if (finished_) return;
  finished_ = true;
  for (auto& [dist, cand] : shortlist_) {
    if (p_.placement && cand.state != State::kFailed) result_.placement.push_back(cand.contact);
    if (p_.placement && cand.state == State::kSlow) result_.slow.push_back(cand.contact.id);
    if (p_.placement && cand.state == State::kFailed) result_.lost.push_back(cand.contact.id);
    if (cand.state != State::kAnswered) continue;
    if (result_.closest.size() < p_.k) result_.closest.push_back(cand.contact);
    if (p_.want_value && !result_.cache_target) {
      bool had = false;
      for (auto& f : result_.values) had = had || f.from.id == cand.contact.id;
      if (!had) result_.cache_target = cand.contact;
    }
  }
  result_.stats.elapsed = now_() - started_;
  auto done = std::move(done_);
  done(std::move(result_));
}

}  // namespace storjnet::dht
