// Reassembly budgets under attack: fragment shape, per-network (prefix) bounds and fair eviction when the
// node-wide bound is full (src/wire/reassembler.h).
#include <gtest/gtest.h>

#include <string>

#include "wire/frame.h"
#include "wire/reassembler.h"

using namespace storjnet;
using namespace storjnet::wire;

namespace {

constexpr size_t C = kMaxChunk;

NodeId key(const std::string& name) { return NodeId::hash_of(as_bytes(name)); }
Endpoint host(uint32_t net24, uint8_t host_byte) { return Endpoint::v4(net24 << 8 | host_byte, 4000); }

// Sends a whole message from (peer, from) fragment by fragment; true when it completed intact.
bool deliver(Reassembler& r, const NodeId& peer, const Endpoint& from, uint32_t msg_id, size_t size,
             DropCounters& drops) {
  Bytes msg(size);
  for (size_t i = 0; i < size; ++i) msg[i] = static_cast<uint8_t>(i * 7);
  Bytes out;
  Reassembler::Result last = Reassembler::Result::kInvalid;
  for (auto& f : encode_frames(msg, msg_id)) {
    auto fr = *decode_frame(f);
    last = r.add(peer, from, fr.msg_id, fr.index, fr.count, fr.body, TimePoint{0}, out, drops);
    if (last != Reassembler::Result::kIncomplete) break;
  }
  return last == Reassembler::Result::kComplete && out == msg;
}

}  // namespace

TEST(ReassemblyBudget, EveryFragmentButTheLastMustBeFullSize) {
  Reassembler r;
  DropCounters drops;
  Bytes out, full(C, 1), short_chunk(C - 1, 1);
  NodeId p = key("p");
  Endpoint from = host(0x0a0101, 1);
  EXPECT_EQ(r.add(p, from, 1, 0, 3, short_chunk, {}, out, drops), Reassembler::Result::kShortFragment);
  EXPECT_EQ(r.bytes_in_use(), 0u);
  // A short fragment in the middle also drops what its message held.
  EXPECT_EQ(r.add(p, from, 2, 0, 3, full, {}, out, drops), Reassembler::Result::kIncomplete);
  EXPECT_EQ(r.add(p, from, 2, 1, 3, short_chunk, {}, out, drops), Reassembler::Result::kShortFragment);
  EXPECT_EQ(r.bytes_in_use(), 0u);
  // The last fragment may be short (one byte here).
  EXPECT_EQ(r.add(p, from, 3, 0, 2, full, {}, out, drops), Reassembler::Result::kIncomplete);
  EXPECT_EQ(r.add(p, from, 3, 1, 2, ByteView(full).first(1), {}, out, drops), Reassembler::Result::kComplete);
  EXPECT_EQ(out.size(), C + 1);
}

TEST(ReassemblyBudget, ManyKeysFromOneNetworkHoldAtMostItsShare) {
  ReassemblyLimits lim;
  lim.max_per_peer = 32 * C;
  lim.max_per_prefix = 16 * C;
  lim.max_total = 64 * C;
  Reassembler r(lim);
  DropCounters drops;
  Bytes out, chunk(C, 9);
  const uint32_t net = 0xc63364;  // 198.51.100.0/24
  size_t refused = 0;
  // 1,000 fresh keys from one /24 each start a 100-fragment message.
  for (int k = 0; k < 1000; ++k) {
    auto res = r.add(key("sybil" + std::to_string(k)), host(net, uint8_t(k)), 1, 0, 100, chunk, {}, out, drops);
    refused += res == Reassembler::Result::kOverLimit;
  }
  EXPECT_EQ(r.prefix_bytes(host(net, 0).prefix()), 16 * C);
  EXPECT_EQ(refused, 1000u - 16);
  // Honest senders from other networks still get whole messages through.
  for (uint32_t h = 1; h <= 5; ++h)
    EXPECT_TRUE(deliver(r, key("honest" + std::to_string(h)), host(0xcb0071 + h, 5), 7, 12 * 1024, drops));
  EXPECT_EQ(drops.get(DropReason::kReassemblyEvicted), 0u);
}

TEST(ReassemblyBudget, FullNodeEvictsFromTheLargestNetworkNotFromEveryone) {
  ReassemblyLimits lim;
  lim.max_per_peer = 12 * C;
  lim.max_per_prefix = 40 * C;
  lim.max_total = 64 * C;
  Reassembler r(lim);
  DropCounters drops;
  Bytes out, chunk(C, 9);
  const Endpoint a1 = host(0xc63364, 1), a2 = host(0xc63365, 1);
  auto sybil = [&, k = 0](const Endpoint& net) mutable {
    Endpoint from = net;
    from.addr[3] = static_cast<uint8_t>(k);
    return r.add(key("sybil" + std::to_string(k++)), from, 1, 0, 100, chunk, {}, out, drops);
  };
  // An attacker's first /24 takes what its prefix bound allows of the empty node...
  for (int i = 0; i < 64; ++i) sybil(a1);
  EXPECT_EQ(r.prefix_bytes(a1.prefix()), 40 * C);
  // ...its second /24 fills the node and takes room from the first until both hold about the same.
  for (int i = 0; i < 64; ++i) sybil(a2);
  EXPECT_EQ(r.bytes_in_use(), 64 * C);
  EXPECT_GE(r.prefix_bytes(a1.prefix()), 31 * C);
  EXPECT_GE(r.prefix_bytes(a2.prefix()), 31 * C);
  EXPECT_GT(drops.get(DropReason::kReassemblyEvicted), 0u);
  // A network holding the most is refused instead of evicting others.
  EXPECT_EQ(sybil(a1), Reassembler::Result::kOverLimit);
  EXPECT_EQ(sybil(a2), Reassembler::Result::kOverLimit);
  // One key flooding from a third network is held to its per-peer bound.
  NodeId flooder = key("flooder");
  for (uint32_t m = 0; m < 100; ++m) r.add(flooder, host(0x0a0203, 1), m, 0, 2, chunk, {}, out, drops);
  EXPECT_EQ(r.peer_bytes(flooder), 12 * C);
  // An honest sender from a fourth network completes a 10-fragment message: room is made by evicting the
  // attacker's partial messages (counted), and the total bound holds throughout.
  uint64_t evicted_before = drops.get(DropReason::kReassemblyEvicted);
  EXPECT_TRUE(deliver(r, key("honest"), host(0xcb0071, 5), 42, 10 * C, drops));
  EXPECT_GE(drops.get(DropReason::kReassemblyEvicted), evicted_before + 10);
  EXPECT_LE(r.bytes_in_use(), lim.max_total);
  // Everything expires and the accounting returns to zero.
  r.expire(TimePoint{0} + lim.timeout);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.bytes_in_use(), 0u);
  EXPECT_EQ(r.prefix_bytes(a1.prefix()), 0u);
}
