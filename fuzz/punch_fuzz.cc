// punch_fuzz: the kademlia_punch body decoders (src/dht/punch_codec.h: bodies with their LAN field, the ASK
// reply) on arbitrary bytes. Anything that decodes must re-encode to the same bytes (the formats have one
// encoding) and decode to the same thing.
#include "fuzz_check.h"

#include <algorithm>

#include "dht/punch_codec.h"

using namespace storjnet;
using namespace storjnet::dht;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  if (auto m = decode_punch(in)) {
    Bytes again = encode_punch(*m);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin(), in.end()));
    FUZZ_CHECK(decode_punch(again) == m);
    if (m->kind == PunchKind::kIntro) FUZZ_CHECK(m->endpoint.valid() && !m->endpoint.is_unspecified());
    // SYNC: an endpoint for an independent mapping, an address (port 0) for a dependent one, none otherwise.
    if (m->kind == PunchKind::kSync)
      FUZZ_CHECK(m->mapping <= 2 && (m->mapping == 0) == (m->endpoint.family == Endpoint::Family::kNone) &&
                 (m->mapping != 1 || m->endpoint.port != 0) && (m->mapping != 2 || m->endpoint.port == 0));
    // A LAN address, when there is one, is private and not loopback, and only on ASK and INTRO.
    if (m->lan.family != Endpoint::Family::kNone)
      FUZZ_CHECK(lan_address(m->lan) && (m->kind == PunchKind::kAsk || m->kind == PunchKind::kIntro));
  }
  if (auto ep = decode_punch_endpoint(in)) {
    Bytes again = encode_punch_endpoint(*ep);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin(), in.end()));
    FUZZ_CHECK(ep->port != 0);
  }
  if (auto a = decode_punch_answer(in)) {
    Bytes again = encode_punch_answer(*a);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin(), in.end()));
    FUZZ_CHECK(decode_punch_answer(again) == a);
  }
  return 0;
}
