// messages_fuzz: arbitrary bytes against the message_notify decoders (batch body and ack) and the receiver's
// Inbox.
//
// Invariants: no crash or sanitizer report; a decoded batch re-encodes to the same bytes' meaning (same
// epoch, batch and messages); the inbox never holds more than its bounds (node, sender, network); a
// repeated batch queues nothing.
#include "fuzz_check.h"
#include <cstdio>
#include <cstdlib>

#include "messages/codec.h"
#include "messages/inbox.h"

using namespace storjnet;


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  (void)messages::decode_ack(in);
  auto b = messages::decode_batch(in);
  if (!b) return 0;
  FUZZ_CHECK(!b->messages.empty() && b->messages.size() <= messages::kMaxBatchMessages);
  std::vector<std::string> copies(b->messages.begin(), b->messages.end());
  std::vector<const std::string*> ptrs;
  for (auto& c : copies) ptrs.push_back(&c);
  Bytes encoded = messages::encode_batch(b->epoch, b->batch, ptrs);  // the decoded views point into it
  auto again = messages::decode_batch(encoded);
  FUZZ_CHECK(again && again->epoch == b->epoch && again->batch == b->batch && again->messages == b->messages);

  MessagesConfig cfg;
  cfg.max_queue = 16;
  cfg.max_queue_bytes = 4096;
  cfg.max_queue_per_sender = 8;
  cfg.max_queue_bytes_per_sender = 2048;
  cfg.max_queue_per_prefix = 12;
  cfg.max_queue_bytes_per_prefix = 3072;
  messages::Inbox inbox(cfg, 4);
  NodeId from = NodeId::hash_of(in.first(std::min<size_t>(size, 4)));
  Endpoint::Prefix net = Endpoint::v4(0x0a000001u, 1).prefix();
  auto d = inbox.deliver(from, net, *b, TimePoint{});
  uint32_t n = d.accepted;
  FUZZ_CHECK(n <= b->messages.size());
  // Short only for a reason (or batch 0, which a fresh sender state takes as already answered).
  FUZZ_CHECK(n == b->messages.size() || d.refusal != messages::Refusal::kNone || b->batch == 0);
  FUZZ_CHECK(inbox.queued() <= 8 && inbox.queued_bytes() <= 2048);
  size_t before = inbox.queued();
  FUZZ_CHECK(inbox.deliver(from, net, *b, TimePoint{}).accepted == n);  // a duplicate is answered the same
  FUZZ_CHECK(inbox.queued() == before);                                  // and queues nothing
  // Another sender of the same network gets at most what the network's share has left.
  NodeId other = NodeId::hash_of(as_bytes("other"));
  inbox.deliver(other, net, *b, TimePoint{});
  FUZZ_CHECK(inbox.queued() <= 12 && inbox.queued_bytes() <= 3072);
  auto all = inbox.take_all();
  FUZZ_CHECK(inbox.queued() == 0);
  for (auto& [id, v] : all)
    for (auto& m : v) FUZZ_CHECK(messages::valid_message(m));
  return 0;
}
