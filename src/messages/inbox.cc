#include "messages/inbox.h"

#include <algorithm>

namespace storjnet::messages {

std::string_view refusal_text(Refusal r) {
  switch (r) {
    case Refusal::kNone: return "";
    case Refusal::kQueueFull: return "inbox full";
    case Refusal::kSenderQuota: return "inbox share of this sender full";
    case Refusal::kPrefixQuota: return "inbox share of this sender's network full";
    case Refusal::kRateLimited: return "rate limited";
  }
  return "";
}

Refusal Inbox::fits(const Use& sender, const Use& net, size_t n) const {
  if (count_ >= cfg_.max_queue || bytes_ + n > cfg_.max_queue_bytes) return Refusal::kQueueFull;
  if (sender.count >= cfg_.max_queue_per_sender || sender.bytes + n > cfg_.max_queue_bytes_per_sender)
    return Refusal::kSenderQuota;
  if (net.count >= cfg_.max_queue_per_prefix || net.bytes + n > cfg_.max_queue_bytes_per_prefix)
    return Refusal::kPrefixQuota;
  return Refusal::kNone;
}

bool Inbox::take_token(SenderState& s, TimePoint now) {
  return s.notify.take(cfg_.notify_rate, cfg_.notify_burst, now);
}

void Inbox::count_refused(Refusal r, uint64_t n) {
  switch (r) {
    case Refusal::kQueueFull: stats_.refused_queue_full += n; break;
    case Refusal::kSenderQuota: stats_.refused_sender_quota += n; break;
    case Refusal::kPrefixQuota: stats_.refused_prefix_quota += n; break;
    case Refusal::kRateLimited: stats_.rate_limited += n; break;
    case Refusal::kNone: break;
  }
}

Inbox::Delivery Inbox::deliver(const NodeId& from, const Endpoint::Prefix& net, const Batch& b, TimePoint now) {
  auto it = senders_.find(from);
  if (it == senders_.end()) {
    if (senders_.size() >= max_senders_) evict_senders();
    SenderState fresh{b.epoch, 0, 0, Refusal::kNone, now, cfg_.notify_burst, now};
    it = senders_.emplace(from, fresh).first;
  }
  SenderState& s = it->second;
  s.used = now;
  if (!take_token(s, now)) {
    count_refused(Refusal::kRateLimited, 1);
    return {0, Refusal::kRateLimited};
  }
  if (b.epoch < s.epoch) return {};  // an earlier incarnation of the sender: nobody waits for this answer
  if (b.epoch > s.epoch) {
    s.epoch = b.epoch;
    s.batch = s.accepted = 0;
    s.refusal = Refusal::kNone;
  }
  if (b.batch < s.batch) return {};  // an old retransmission; the sender moved on
  if (b.batch == s.batch) return {s.accepted, s.refusal};
  // The sender's and its network's use, tracked through the batch and stored back once.
  auto use_of = [](const auto& map, const auto& key) {
    auto u = map.find(key);
    return u == map.end() ? Use{} : u->second;
  };
  Use mine = use_of(sender_use_, from), mine_net = use_of(net_use_, net);
  uint32_t n = 0;
  Refusal refusal = Refusal::kNone;
  std::vector<std::string>* q = nullptr;
  for (std::string_view m : b.messages) {
    if ((refusal = fits(mine, mine_net, m.size())) != Refusal::kNone) break;
    ++n;
    // A sender that skips our JSON check only loses its own message; it is acknowledged (keeping the
    // "first n queued" answer exact) and counted.
    if (!valid_message(m)) {
      ++stats_.invalid_json;
      continue;
    }
    if (!q) q = &queue_[from];
    q->emplace_back(m);
    ++count_, bytes_ += m.size();
    ++mine.count, mine.bytes += m.size();
    ++mine_net.count, mine_net.bytes += m.size();
  }
  if (q) {
    sender_use_[from] = mine;
    net_use_[net] = mine_net;
  }
  count_refused(refusal, b.messages.size() - n);
  s.batch = b.batch;
  s.accepted = n;
  s.refusal = refusal;
  return {n, refusal};
}

bool Inbox::push_local(const NodeId& self, std::string json) {
  if (count_ >= cfg_.max_queue || bytes_ + json.size() > cfg_.max_queue_bytes) return false;
  bytes_ += json.size();
  ++count_;
  queue_[self].push_back(std::move(json));
  return true;
}

std::map<NodeId, std::vector<std::string>> Inbox::take_all() {
  std::map<NodeId, std::vector<std::string>> out;
  out.swap(queue_);
  sender_use_.clear();
  net_use_.clear();
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
