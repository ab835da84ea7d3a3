#include "dht/store_run.h"

namespace storjnet::dht {

std::shared_ptr<StoreRun> StoreRun::make(StoreFn store, size_t want, std::function<void(size_t)> first_ack,
                                         std::function<void(StoreTally)> all_done) {
  std::shared_ptr<StoreRun> run(new StoreRun());
  run->store_ = std::move(store);
  run->want_ = want;
  run->first_ack_ = std::move(first_ack);
  run->all_done_ = std::move(all_done);
  return run;
}

void StoreRun::early(const Contact& c) {
  if (placed_ || early_ >= want_ || sent_.count(c.id)) return;
  ++early_;
  send(c, false);
}

void StoreRun::send(const Contact& c, bool counted) {
  sent_[c.id].counted = counted;
  if (counted) ++left_;
  store_(c, [self = shared_from_this(), id = c.id](StoreAnswer a) { self->on_answer(id, a); });
}

void StoreRun::place(std::vector<Contact> targets) {
  if (placed_) return;
  placed_ = true;
  targets_ = std::move(targets);
  ++left_;  // held while the first stores go out: one answered at once ends nothing early
  size_t n = std::min(want_, targets_.size());
  for (size_t i = 0; i < n; ++i) take_next();
  release();
}

void StoreRun::take_next() {
  while (next_ < targets_.size()) {
    const Contact& c = targets_[next_++];
    auto s = sent_.find(c.id);
    if (s != sent_.end() && s->second.counted) continue;
    return take(c);
  }
}

void StoreRun::take(const Contact& c) {
  auto it = sent_.find(c.id);
  if (it == sent_.end()) return send(c, true);
  if (it->second.counted) return;
  it->second.counted = true;
  ++left_;
  if (it->second.answer) {
    auto a = *it->second.answer;
    on_answer(c.id, a);
  }
}

void StoreRun::on_answer(const NodeId& id, StoreAnswer a) {
  auto it = sent_.find(id);
  if (it == sent_.end()) return;
  it->second.answer = a;
  if (!it->second.counted) return;
  if (a) ++(*a ? tally_.acks : tally_.refused);
  if (tally_.acks > 0 && !told_) {
    told_ = true;
    if (first_ack_) first_ack_(tally_.acks);
  }
  if (!a) take_next();  // no answer: the turn passes on (an early store there is adopted)
  release();
}

void StoreRun::release() {
  if (--left_ == 0 && placed_ && !done_) {
    done_ = true;
    if (all_done_) all_done_(tally_);
  }
}

}  // namespace storjnet::dht
