// Inbox: the receiver side of direct messages. Holds what message_list returns (bounded by count and
// bytes, node-wide and per sender and per sender network) and, per sender, the last batch processed so a
// retransmitted or duplicated batch is answered again without being queued twice. Each sender's batches
// are rate-limited (a token bucket per sender id).
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/token_bucket.h"
#include "messages/codec.h"
#include "storjnet/endpoint.h"
#include "storjnet/environment.h"
#include "storjnet/messages.h"
#include "storjnet/node_id.h"

namespace storjnet::messages {

// Why a batch's messages (from the first refused one on) were not queued.
enum class Refusal : uint8_t { kNone, kQueueFull, kSenderQuota, kPrefixQuota, kRateLimited };
// The error text answered for a batch of which nothing was queued.
std::string_view refusal_text(Refusal r);

class Inbox {
 public:
  explicit Inbox(const MessagesConfig& config, size_t max_senders = 65536)
      : cfg_(config), max_senders_(max_senders) {}

  struct Delivery {
    uint32_t accepted = 0;
    Refusal refusal = Refusal::kNone;
  };
  // Processes one batch from `from`, whose datagram came from network `net`; `accepted`: how many of its
  // messages, from the first, are queued (for a duplicate of the last batch: the same answer as the first
  // time; for a stale batch: 0). `refusal`: why the rest were not.
  Delivery deliver(const NodeId& from, const Endpoint::Prefix& net, const Batch& b, TimePoint now);
  // Queues one message sent to ourselves; false when the queue is full.
  bool push_local(const NodeId& self, std::string json);
  std::map<NodeId, std::vector<std::string>> take_all();
  size_t queued() const { return count_; }
  size_t queued_bytes() const { return bytes_; }
  size_t senders() const { return senders_.size(); }
  const MessagesStats& stats() const { return stats_; }

 private:
  struct SenderState {
    uint64_t epoch = 0, batch = 0;
    uint32_t accepted = 0;
    Refusal refusal = Refusal::kNone;
    TimePoint used{};
    TokenBucket notify;  // message_notify rate
  };
  struct Use {
    size_t count = 0, bytes = 0;
  };
  Refusal fits(const Use& sender, const Use& net, size_t n) const;
  bool take_token(SenderState& s, TimePoint now);
  void count_refused(Refusal r, uint64_t n);
  void evict_senders();

  MessagesConfig cfg_;
  size_t max_senders_;
  size_t count_ = 0, bytes_ = 0;
  std::map<NodeId, std::vector<std::string>> queue_;
  std::unordered_map<NodeId, Use> sender_use_;          // what is queued, per sender (emptied by take_all)
  std::unordered_map<Endpoint::Prefix, Use> net_use_;  // the same per sender network
  std::unordered_map<NodeId, SenderState> senders_;
  MessagesStats stats_;
};

}  // namespace storjnet::messages
