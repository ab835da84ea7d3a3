#include "messages/inbox.h"

#include <algorithm>

namespace storjnet::messages {

uint32_t Inbox::deliver(const NodeId& from, const Batch& b, TimePoint now) {
  auto it = senders_.find(from);
  if (it == senders_.end()) {
    if (senders_.size() >= max_senders_) evict_senders();
    it = senders_.emplace(from, SenderState{b.epoch, 0, 0, now}).first;
  }
  SenderState& s = it->second;
  s.used = now;
  if (b.epoch < s.epoch) return 0;  // an earlier incarnation of the sender: nobody waits for this answer
  if (b.epoch > s.epoch) s = SenderState{b.epoch, 0, 0, now};
  if (b.batch < s.batch) return 0;  // an old retransmission; the sender moved on
  if (b.batch == s.batch) return s.accepted;
  uint32_t n = 0;
  std::vector<std::string>* q = nullptr;
  for (std::string_view m : b.messages) {
    if (!fits(m.size())) break;
    ++n;
    // A sender that skips our JSON check only loses its own message; it still counts, keeping the
    // "first n queued" answer exact.
    if (!valid_message(m)) continue;
    if (!q) q = &queue_[from];
    q->emplace_back(m);
    ++count_;
    bytes_ += m.size();
  }
  s.batch = b.batch;
  s.accepted = n;
  return n;
}

bool Inbox::push_local(const NodeId& self, std::string json) {
  if (!fits(json.size())) return false;
  bytes_ += json.size();
  ++count_;
  queue_[self].push_back(std::move(json));
  return true;
}

std::map<NodeId, std::vector<std::string>> Inbox::take_all() {
  std::map<NodeId, std::vector<std::string>> out;
  out.swap(queue_);
  count_ = bytes_ = 0;
  return out;
}

void Inbox::evict_senders() {
  // Forget the least recently heard eighth. A forgotten sender's next batch is taken as new.
  std::vector<TimePoint> ages;
  ages.reserve(senders_.size());
  for (auto& [id, s] : senders_) ages.push_back(s.used);
  size_t n = std::max<size_t>(1, ages.size() / 8);
  std::nth_element(ages.begin(), ages.begin() + (n - 1), ages.end());
  TimePoint cutoff = ages[n - 1];
  for (auto it = senders_.begin(); it != senders_.end() && n > 0;) {
    if (it->second.used <= cutoff) {
      it = senders_.erase(it);
      --n;
    } else {
      ++it;
    }
  }
}

}  // namespace storjnet::messages
