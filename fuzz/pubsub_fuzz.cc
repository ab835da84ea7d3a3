// pubsub_fuzz: arbitrary bytes against the quasar_update and quasar_notify body decoders.
// Invariants: no crash or sanitizer report; a decoded filter has exactly the configured size and depth; a
// decoded event respects the topic, event, TTL and publishers bounds; decode(encode(x)) == x.
#include "fuzz_check.h"
#include <cstdint>
#include <cstdlib>

#include "pubsub/wire.h"
#include "storjnet/pubsub.h"

using namespace storjnet;
using namespace storjnet::pubsub;


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  WireLimits lim;
  lim.filter_bits = 512;  // small, so random inputs can hit the right size
  lim.filter_hashes = 2;
  lim.depth = 2;
  lim.max_ttl = 16;
  lim.max_publishers = 4;

  (void)peek_update_kind(in);
  FilterBody f;
  if (decode_filter(in, lim, f) == DecodeStatus::kOk) {
    FUZZ_CHECK(f.levels.size() == lim.depth);
    for (const auto& l : f.levels) FUZZ_CHECK(l.bits() == 512 && l.hashes() == 2);
    FilterBody g;
    FUZZ_CHECK(decode_filter(encode_filter(f), lim, g) == DecodeStatus::kOk && g.levels == f.levels);
  }
  RegisterBody r;
  if (decode_register(in, r) == DecodeStatus::kOk) {
    RegisterBody s;
    FUZZ_CHECK(decode_register(encode_register(r), s) == DecodeStatus::kOk);
    FUZZ_CHECK(s.topic_key == r.topic_key && s.hops == r.hops && s.subscribe == r.subscribe);
    FUZZ_CHECK(s.subscriber == r.subscriber && s.endpoint == r.endpoint && s.issued_us == r.issued_us &&
               s.signature == r.signature && s.holders == r.holders);
    FUZZ_CHECK(s.holders.size() <= kMaxRegisterHolders);
    FUZZ_CHECK(!s.endpoint || (s.endpoint->valid() && !s.endpoint->is_unspecified()));
    (void)register_statement(0x53544a31, s);
  }
  NotifyBody n;
  if (decode_notify(in, lim, n) == DecodeStatus::kOk) {
    FUZZ_CHECK(!n.topic.empty() && n.topic.size() <= kMaxTopic && n.event.size() <= kMaxEventJson);
    const size_t cap = n.kind == NotifyKind::kHolder  ? lim.max_holder_list
                       : n.kind == NotifyKind::kServe ? kMaxRegisterHolders
                                                      : lim.max_publishers;
    FUZZ_CHECK(n.ttl <= lim.max_ttl && n.publishers.size() <= cap);
    NotifyBody m;
    FUZZ_CHECK(decode_notify(encode_notify(n), lim, m) == DecodeStatus::kOk);
    FUZZ_CHECK(m.id == n.id && m.topic == n.topic && m.event == n.event && m.ttl == n.ttl &&
               m.publishers == n.publishers);
  }
  return 0;
}
