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
    if (!sent_.insert(c.id).second) continue;
    ++left_;
    return store_(c, [self = shared_from_this(), id = c.id](StoreAnswer a) { self->on_answer(id, a); });
  }
}

void StoreRun::on_answer(const NodeId& to, StoreAnswer a) {
  if (a) ++(*a ? tally_.acks : tally_.refused);
  else tally_.missed.push_back(to);
  if (tally_.acks > 0 && !told_) {
    told_ = true;
    if (first_ack_) first_ack_(tally_.acks);
  }
  if (!a) take_next();  // no answer: the turn passes on
  release();
}

void StoreRun::release() {
  if (--left_ == 0 && !done_) {
    done_ = true;
    if (all_done_) all_done_(tally_);
  }
}

}  // namespace storjnet::dht
