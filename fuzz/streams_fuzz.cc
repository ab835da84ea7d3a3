// streams_fuzz: arbitrary bytes against the stream RPC body decoders and the receive buffer.
//
// The input is first tried as each body kind; then it drives a RecvBuffer as a sequence of
// (offset, length, read size) operations checked against a reference copy of the stream.
// Invariants: no crash or sanitizer report; decoded bodies re-encode identically; the buffer never holds
// data beyond its window nor more than max_ahead chunks ahead of a gap, its charge covers what it holds, grows
// by at most max_charge(len) per add and is zero when empty, and what it returns is exactly the reference
// stream's bytes in order.
#include "fuzz_check.h"
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>

#include "streams/codec.h"
#include "streams/recv_buffer.h"

using namespace storjnet;


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  Bytes raw(in.begin(), in.end());
  if (auto o = streams::decode_open(in)) FUZZ_CHECK(streams::encode_open(*o) == raw);
  if (auto d = streams::decode_data(in)) FUZZ_CHECK(streams::encode_data(d->id, d->offset, d->data) == raw);
  if (auto a = streams::decode_ack(in)) FUZZ_CHECK(streams::encode_ack(*a) == raw);
  if (auto c = streams::decode_close(in)) FUZZ_CHECK(streams::encode_close(*c) == raw);
  if (auto w = streams::decode_window(in)) FUZZ_CHECK(streams::encode_window(*w) == raw);
  if (auto s = streams::decode_window_size(in)) FUZZ_CHECK(streams::encode_window_size(*s) == raw);

  // The stream's true content: byte i is (i * 7) & 0xff.
  FuzzedDataProvider fdp(data, size);
  const size_t window = fdp.ConsumeIntegralInRange<size_t>(1, 4096);
  const size_t min_charge = fdp.ConsumeIntegralInRange<size_t>(0, 256);
  const size_t max_ahead = fdp.ConsumeIntegralInRange<size_t>(0, 16);
  streams::RecvBuffer rb(window, min_charge, max_ahead);
  uint64_t consumed = 0;
  while (fdp.remaining_bytes() > 0) {
    uint64_t off = fdp.ConsumeIntegralInRange<uint64_t>(0, consumed + window + 64);
    size_t len = fdp.ConsumeIntegralInRange<size_t>(0, 512);
    Bytes chunk(len);
    for (size_t i = 0; i < len; ++i) chunk[i] = static_cast<uint8_t>((off + i) * 7);
    size_t charged = rb.charged();
    auto r = rb.add(off, chunk);
    FUZZ_CHECK(rb.charged() <= charged + rb.max_charge(len));
    if (r != streams::RecvBuffer::Add::kOk) FUZZ_CHECK(rb.charged() == charged);
    if (len > 0 && off + len > rb.limit()) FUZZ_CHECK(r == streams::RecvBuffer::Add::kBeyondWindow);
    if (len == 0 || off + len <= rb.received()) FUZZ_CHECK(r == streams::RecvBuffer::Add::kOk);
    FUZZ_CHECK(rb.unread() <= window && rb.ahead_bytes() <= window);
    FUZZ_CHECK(rb.received() <= rb.limit());
    FUZZ_CHECK(rb.ahead_chunks() <= max_ahead);
    FUZZ_CHECK(rb.charged() >= rb.unread() + rb.ahead_bytes());
    FUZZ_CHECK((rb.charged() == 0) == (rb.unread() == 0 && rb.ahead_chunks() == 0) || min_charge == 0);
    if (fdp.ConsumeBool()) {
      std::optional<size_t> max;
      if (fdp.ConsumeBool()) max = fdp.ConsumeIntegralInRange<size_t>(0, 1024);
      Bytes got = rb.read(max);
      FUZZ_CHECK(!max || got.size() <= *max);
      for (size_t i = 0; i < got.size(); ++i) FUZZ_CHECK(got[i] == static_cast<uint8_t>((consumed + i) * 7));
      consumed += got.size();
      FUZZ_CHECK(rb.read_offset() == consumed);
    }
  }
  return 0;
}
