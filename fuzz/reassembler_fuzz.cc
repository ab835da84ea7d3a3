// reassembler_fuzz: the input is a sequence of fragment operations from a few peers in two networks
// (prefixes), with time advances and expiry sweeps, against a Reassembler with small limits.
//
// Fragment j of message m from peer p carries bytes all equal to tag(p, m, j), so a completed message can be
// checked: exactly `count` non-empty runs, in index order, each with the right tag.
// Invariants: bytes_in_use() <= max_total; every peer's charge <= max_per_peer, every prefix's <=
// max_per_prefix, and each set of charges sums to bytes_in_use(); a non-last fragment that is not full-size is
// refused; no memory is charged iff no partial message is held; a completed message has the announced
// fragment count, the right content and at most max_message bytes; nothing outlives the timeout.
#include "fuzz_check.h"
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>

#include "wire/frame.h"
#include "wire/reassembler.h"

using namespace storjnet;
using wire::Reassembler;

namespace {


constexpr int kPeers = 4;
constexpr uint32_t kMsgIds = 8;
constexpr uint16_t kMaxCount = 8;

uint8_t tag(int peer, uint32_t msg, uint16_t index) {
  return static_cast<uint8_t>(peer << 6 | msg << 3 | index);
}

// Peers 0 and 1 send from one /24, 2 and 3 from another (any host in it).
Endpoint peer_from(int p, uint8_t host) { return Endpoint::v4((p < 2 ? 0x0a000100u : 0x0a000200u) | host, 9); }

const NodeId& peer_id(int p) {
  static const NodeId ids[kPeers] = {NodeId::hash_of(as_bytes("p0")), NodeId::hash_of(as_bytes("p1")),
                                     NodeId::hash_of(as_bytes("p2")), NodeId::hash_of(as_bytes("p3"))};
  return ids[p];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  wire::ReassemblyLimits lim;
  // Small bounds, chosen by the input within a range, so every bound is hit often.
  constexpr size_t C = wire::kMaxChunk;
  lim.max_message = in.ConsumeIntegralInRange<size_t>(1, 6 * C);
  lim.max_per_peer = in.ConsumeIntegralInRange<size_t>(1, 8 * C);
  lim.max_per_prefix = in.ConsumeIntegralInRange<size_t>(1, 12 * C);
  lim.max_total = in.ConsumeIntegralInRange<size_t>(1, 16 * C);
  lim.timeout = std::chrono::milliseconds(in.ConsumeIntegralInRange<int>(1, 100));
  Reassembler r(lim);
  TimePoint now{0};
  Bytes out;
  DropCounters drops;

  auto check = [&] {
    size_t sum = 0;
    for (int p = 0; p < kPeers; ++p) {
      FUZZ_CHECK(r.peer_bytes(peer_id(p)) <= lim.max_per_peer);
      sum += r.peer_bytes(peer_id(p));
    }
    FUZZ_CHECK(sum == r.bytes_in_use());
    size_t by_prefix = 0;
    for (int p : {0, 2}) {
      FUZZ_CHECK(r.prefix_bytes(peer_from(p, 0).prefix()) <= lim.max_per_prefix);
      by_prefix += r.prefix_bytes(peer_from(p, 0).prefix());
    }
    FUZZ_CHECK(by_prefix == r.bytes_in_use());
    FUZZ_CHECK(r.bytes_in_use() <= lim.max_total);
    FUZZ_CHECK((r.bytes_in_use() == 0) == r.empty());
    FUZZ_CHECK(r.empty() == (r.partial_messages() == 0));
    // Every held fragment is charged at least the floor, so the number of partials is bounded too.
    FUZZ_CHECK(r.partial_messages() * Reassembler::kMinFragmentCharge <= r.bytes_in_use());
  };

  while (in.remaining_bytes() > 0) {
    int op = in.ConsumeIntegralInRange<int>(0, 9);
    if (op <= 6) {  // a fragment
      int p = in.ConsumeIntegralInRange<int>(0, kPeers - 1);
      uint32_t m = in.ConsumeIntegralInRange<uint32_t>(0, kMsgIds - 1);
      uint16_t count = in.ConsumeIntegralInRange<uint16_t>(0, kMaxCount);
      uint16_t index = in.ConsumeIntegralInRange<uint16_t>(0, kMaxCount);
      // Mostly full-size chunks (what a sender must send), sometimes any length up to one byte more.
      size_t len = in.ConsumeBool() ? C : in.ConsumeIntegralInRange<size_t>(0, C + 1);
      uint8_t host = in.ConsumeIntegral<uint8_t>();
      Bytes chunk(len, tag(p, m, index));
      size_t before = r.bytes_in_use();
      uint64_t evicted = drops.get(DropReason::kReassemblyEvicted);
      auto res = r.add(peer_id(p), peer_from(p, host), m, index, count, chunk, now, out, drops);
      switch (res) {
        case Reassembler::Result::kInvalid:
          FUZZ_CHECK(r.bytes_in_use() <= before);
          break;
        case Reassembler::Result::kDuplicate:
          FUZZ_CHECK(r.bytes_in_use() == before);
          break;
        case Reassembler::Result::kIncomplete:
          FUZZ_CHECK(count > 1 && index < count && len > 0 && (index + 1 == count || len == C));
          // Grows by this fragment's charge, less whatever was evicted to make room for it.
          if (drops.get(DropReason::kReassemblyEvicted) == evicted)
            FUZZ_CHECK(r.bytes_in_use() == before + std::max(len, Reassembler::kMinFragmentCharge));
          else
            FUZZ_CHECK(r.bytes_in_use() < before + std::max(len, Reassembler::kMinFragmentCharge));
          break;
        case Reassembler::Result::kOverLimit:
          FUZZ_CHECK(r.bytes_in_use() <= before);
          break;
        case Reassembler::Result::kShortFragment:
          FUZZ_CHECK(index + 1 < count && len != C && r.bytes_in_use() <= before);
          break;
        case Reassembler::Result::kComplete: {
          FUZZ_CHECK(index < count && len > 0);
          FUZZ_CHECK(r.bytes_in_use() < before + std::max(len, Reassembler::kMinFragmentCharge));
          FUZZ_CHECK(!out.empty() && out.size() <= lim.max_message);
          // Runs of tag(p, m, 0), tag(p, m, 1), ... tag(p, m, count - 1), each non-empty.
          size_t pos = 0;
          for (uint16_t j = 0; j < count; ++j) {
            size_t start = pos;
            while (pos < out.size() && out[pos] == tag(p, m, j)) ++pos;
            FUZZ_CHECK(pos > start);
          }
          FUZZ_CHECK(pos == out.size());
          break;
        }
      }
    } else if (op == 7) {  // time passes
      now += std::chrono::milliseconds(in.ConsumeIntegralInRange<int>(0, 60));
    } else if (op == 8) {  // expiry sweep
      size_t held = r.partial_messages();
      size_t dropped = r.expire(now);
      FUZZ_CHECK(dropped <= held && r.partial_messages() == held - dropped);
    } else {  // a sweep a full timeout later frees everything
      now += lim.timeout;
      r.expire(now);
      FUZZ_CHECK(r.empty() && r.bytes_in_use() == 0);
    }
    check();
  }
  r.expire(now + lim.timeout);
  FUZZ_CHECK(r.empty() && r.bytes_in_use() == 0);
  return 0;
}
