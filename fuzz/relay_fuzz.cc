// relay_fuzz: the relay decoders (src/dht/relay.h, src/engine/message.h) on arbitrary bytes. A relay list or a
// reservation answer that decodes re-encodes to the same bytes (one encoding each); a relay_forward body that
// parses splits into a target id and a datagram of at most wire::kMaxDatagram bytes.
#include "fuzz_check.h"

#include <algorithm>

#include "dht/relay.h"
#include "engine/message.h"
#include "wire/datagram.h"

using namespace storjnet;
using namespace storjnet::dht;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  if (auto list = decode_relay_list(in)) {
    FUZZ_CHECK(list->size() <= Relay::kMaxListed);
    Bytes again = encode_relay_list(*list);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin(), in.end()));
    for (const Contact& c : *list) FUZZ_CHECK(c.endpoint.port != 0 && c.id == Identity::id_of(c.key));
  }
  if (auto secs = decode_reservation(in)) {
    FUZZ_CHECK(*secs >= 1 && *secs <= 3600);
    Bytes again = encode_reservation(*secs);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin(), in.end()));
  }
  if (auto f = msg::parse_relay_forward(in)) {
    FUZZ_CHECK(!f->inner.empty() && f->inner.size() <= wire::kMaxDatagram);
    Bytes again = msg::relay_forward(f->target, f->inner);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin(), in.end()));
  }
  return 0;
}
