// Inbox: the receiver side of direct messages. Holds what message_list returns (bounded by count and
// bytes) and, per sender, the last batch processed so a retransmitted or duplicated batch is answered
// again without being queued twice.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "messages/codec.h"
#include "storjnet/environment.h"
#include "storjnet/node_id.h"

namespace storjnet::messages {

class Inbox {
 public:
  Inbox(size_t max_queue, size_t max_bytes, size_t max_senders = 65536)
      : max_queue_(max_queue), max_bytes_(max_bytes), max_senders_(max_senders) {}

  // Processes one batch from `from`; returns how many of its messages, from the first, are queued (for a
  // duplicate of the last batch: the same answer as the first time; for a stale batch: 0).
  uint32_t deliver(const NodeId& from, const Batch& b, TimePoint now);
  // Queues one message sent to ourselves; false when the queue is full.
  bool push_local(const NodeId& self, std::string json);
  std::map<NodeId, std::vector<std::string>> take_all();
  size_t queued() const { return count_; }
  size_t queued_bytes() const { return bytes_; }
  size_t senders() const { return senders_.size(); }

 private:
  struct SenderState {
    uint64_t epoch = 0, batch = 0;
    uint32_t accepted = 0;
    TimePoint used{};
  };
  bool fits(size_t n) const { return count_ < max_queue_ && bytes_ + n <= max_bytes_; }
  void evict_senders();

  size_t max_queue_, max_bytes_, max_senders_;
  size_t count_ = 0, bytes_ = 0;
  std::map<NodeId, std::vector<std::string>> queue_;
  std::unordered_map<NodeId, SenderState> senders_;
};

}  // namespace storjnet::messages
