// dht_codec_fuzz: every DHT body decoder on arbitrary bytes. Anything that decodes must re-encode and decode
// to the same thing (contacts keep their key-derived ids; values keep their bytes, versions, owners and
// signatures; find_node requests keep their target and placement flag; dial-back asks, probes and testimonies). Decoding never verifies: verify_value must reject anything not signed (it must not crash).
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
    FUZZ_CHECK(again && again->target == q->target && again->placement == q->placement);
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
    FUZZ_CHECK(again && again->probe == q->probe && again->nonce == q->nonce);
    if (!q->probe)
      FUZZ_CHECK(again->target == q->target && q->target.id == Identity::id_of(q->target.key) &&
                 q->target.alt.family == Endpoint::Family::kNone);  // an ask names one address
  }
  if (auto a = decode_dial_back_answer(in)) {
    auto again = decode_dial_back_answer(encode_dial_back_answer(*a));
    FUZZ_CHECK(again && again->reached == a->reached);
    if (a->reached) FUZZ_CHECK(again->unsolicited == a->unsolicited && again->signature == a->signature);
    // Decoding never verifies: an unsigned testimony must fail the check (it must not crash).
    DialBackNonce nonce{};
    PublicKey helper{};
    if (a->reached) {
      Bytes signed_bytes = testimony_signing_bytes(0x53544a31, nonce, helper, Endpoint::Family::kV4, a->unsolicited);
      (void)Identity::verify(helper, signed_bytes, a->signature);
    }
  }
  (void)decode_bool(in);
  return 0;
}
