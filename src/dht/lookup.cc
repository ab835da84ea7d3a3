#include "dht/lookup.h"

namespace storjnet::dht {

void Lookup::start(LookupParams params, std::vector<Contact> seeds, QueryFn query, std::function<TimePoint()> now,
                   std::function<void(LookupResult)> done) {
  std::shared_ptr<Lookup> l(new Lookup());
  l->p_ = params;
  l->query_ = std::move(query);
  l->now_ = std::move(now);
  l->done_ = std::move(done);
  l->started_ = l->now_();
  for (auto& c : seeds) l->add(c, 1);
  // Vantage points: asked at once, tracked outside the distance-ordered shortlist.
  for (auto& c : l->p_.must_query) {
    NodeId d = c.id ^ l->p_.target;
    if (c.id == l->p_.self || l->shortlist_.count(d)) continue;
    l->shortlist_.emplace(d, Candidate{c, State::kInFlight, 1});
    l->result_.stats.rounds = std::max(l->result_.stats.rounds, 1);
    l->ask(d, c);
  }
  l->step();
}

void Lookup::add(const Contact& c, int depth) {
  if (c.id == p_.self) return;
  NodeId d = c.id ^ p_.target;
  if (shortlist_.count(d)) return;
  // Bounded: keep the 3k closest; a farther newcomer is not worth remembering.
  size_t cap = 3 * p_.k;
  if (shortlist_.size() >= cap) {
    auto last = std::prev(shortlist_.end());
    if (!(d < last->first)) return;
    if (last->second.state == State::kInFlight) return;  // keep what we are waiting for
    shortlist_.erase(last);
  }
  shortlist_.emplace(d, Candidate{c, State::kNew, depth});
}

void Lookup::step() {
  if (finished_) return;
  size_t considered = 0;
  bool pending_new = false;
  std::vector<std::pair<NodeId, Contact>> to_send;
  for (auto& [dist, cand] : shortlist_) {
    if (cand.state == State::kFailed) continue;
    if (considered++ >= p_.k) break;
    if (cand.state != State::kNew) continue;
    pending_new = true;
    if (in_flight_ + to_send.size() >= p_.alpha) break;
    cand.state = State::kInFlight;
    to_send.emplace_back(dist, cand.contact);
    result_.stats.rounds = std::max(result_.stats.rounds, cand.depth);
  }
  if (to_send.empty() && in_flight_ == 0 && !pending_new) return finish();
  for (auto& [dist, contact] : to_send) {
    ask(dist, contact);
    if (finished_) return;
  }
}

void Lookup::ask(const NodeId& dist, const Contact& contact) {
  ++in_flight_;
  ++result_.stats.rpcs;
  query_(contact, [self = shared_from_this(), dist](std::optional<QueryResponse> r) { self->on_answer(dist, std::move(r)); });
}

void Lookup::on_answer(const NodeId& dist, std::optional<QueryResponse> r) {
  --in_flight_;
  if (finished_) return;
  auto it = shortlist_.find(dist);
  if (it == shortlist_.end()) return step();
  Candidate& cand = it->second;
  if (!r) {
    cand.state = State::kFailed;
    return step();
  }
  cand.state = State::kAnswered;
  if (cand.contact.id == p_.target) {
    result_.target = cand.contact;
    if (p_.stop_on_target) return finish();
  }
  if (p_.want_value && r->value) {
    result_.value = std::move(r->value);
    value_from_ = dist;
    return finish();
  }
  int depth = cand.depth + 1;
  for (auto& c : r->contacts) add(c, depth);
  step();
}

void Lookup::finish() {
  if (finished_) return;
  finished_ = true;
  for (auto& [dist, cand] : shortlist_) {
    if (cand.state != State::kAnswered) continue;
    if (result_.closest.size() < p_.k) result_.closest.push_back(cand.contact);
    if (p_.want_value && result_.value && !result_.cache_target && dist != value_from_)
      result_.cache_target = cand.contact;
  }
  result_.stats.elapsed = now_() - started_;
  auto done = std::move(done_);
  done(std::move(result_));
}

}  // namespace storjnet::dht
