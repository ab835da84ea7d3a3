// dht_codec_fuzz: every DHT body decoder on arbitrary bytes. Anything that decodes must re-encode and decode
// to the same thing (contacts keep their key-derived ids; values keep their bytes, versions, owners and
// signatures; find_node requests keep their target and flags, and answers their contacts and verdict;
// dial-back self-check asks, probe-fors, probes, verdict requests and verdicts). Decoding never verifies:
// verify_value must reject anything not signed (it must not crash).
#include "fuzz_check.h"
#include <cstdio>
#include <cstdlib>

#include "dht/codec.h"
#include "dht/signed_value.h"
#include "storjnet/dht.h"

using namespace storjnet;
using namespace storjnet::dht;


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  if (auto id = decode_id_request(in)) FUZZ_CHECK(*decode_id_request(encode_id_request(*id)) == *id);
  if (auto q = decode_find_node_request(in)) {
    auto again = decode_find_node_request(encode_find_node_request(*q));
    FUZZ_CHECK(again && again->target == q->target && again->placement == q->placement &&
               again->verdict == q->verdict && again->marks == q->marks);
  }
  if (auto a = decode_find_node_answer(in)) {
    FUZZ_CHECK(a->contacts.size() <= kMaxContactsPerResponse);
    FUZZ_CHECK(!a->verdict || *a->verdict <= DialBackVerdict::kUnknown);
    // Marks come only with a verdict, and only for contacts kept.
    FUZZ_CHECK(!a->unconfirmed ||
               (a->verdict && (a->contacts.size() >= 32 || *a->unconfirmed >> a->contacts.size() == 0)));
    auto again = decode_find_node_answer(encode_find_node_answer(*a));
    FUZZ_CHECK(again && again->contacts == a->contacts && again->verdict == a->verdict &&
               again->unconfirmed == a->unconfirmed);
  }
  if (auto cs = decode_contacts(in)) {
    FUZZ_CHECK(cs->size() <= kMaxContactsPerResponse);
    for (auto& c : *cs) {
      FUZZ_CHECK(c.id == Identity::id_of(c.key) && c.endpoint.port != 0);
      // At most one address per family: a second address is of the other family, usable.
      FUZZ_CHECK(c.alt.family == Endpoint::Family::kNone ||
                 (c.alt.family != c.endpoint.family && c.alt.port != 0 && !c.alt.is_unspecified()));
    }
    auto again = decode_contacts(encode_contacts(*cs));
    FUZZ_CHECK(again && *again == *cs);
  }
  NodeId key = dht_key("fuzz");
  if (auto fv = decode_find_value_response(in, key)) {
    auto again = decode_find_value_response(encode_find_value_response(*fv), key);
    FUZZ_CHECK(again && again->value.has_value() == fv->value.has_value());
    if (fv->value) {
      FUZZ_CHECK(dht::same_signed_value(*again->value, *fv->value) && fv->value->value.size() <= kMaxValueSize);
      (void)verify_value(*fv->value, 0x53544a31);
    }
    else FUZZ_CHECK(again->contacts == fv->contacts);
  }
  if (auto st = decode_store(in)) {
    auto again = decode_store(encode_store(*st));
    FUZZ_CHECK(again && again->key == st->key && dht::same_signed_value(*again, *st));
    (void)verify_value(*st, 0x53544a31);
  }
  if (auto q = decode_dial_back_request(in)) {
    auto again = decode_dial_back_request(encode_dial_back_request(*q));
    FUZZ_CHECK(again && again->kind == q->kind);
    FUZZ_CHECK(q->kind >= DialBackKind::kSelfCheck && q->kind <= DialBackKind::kVerdict);
    if (q->kind != DialBackKind::kVerdict) FUZZ_CHECK(again->nonce == q->nonce);
    if (q->kind == DialBackKind::kSelfCheck)  // the address the ask was sent to: usable
      FUZZ_CHECK(again->via == q->via && q->via.port != 0 && !q->via.is_unspecified());
    if (q->kind == DialBackKind::kProbeFor)
      FUZZ_CHECK(again->target == q->target && q->target.id == Identity::id_of(q->target.key) &&
                 q->target.alt.family == Endpoint::Family::kNone);  // a probe-for names one address
  }
  if (auto v = decode_dial_back_verdict(in)) {
    FUZZ_CHECK(*v == DialBackVerdict::kUnreachable || *v == DialBackVerdict::kReachable ||
               *v == DialBackVerdict::kUnknown);
    FUZZ_CHECK(decode_dial_back_verdict(encode_dial_back_verdict(*v)) == v);
  }
  (void)decode_bool(in);
  return 0;
}
