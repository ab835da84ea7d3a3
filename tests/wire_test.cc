#include <gtest/gtest.h>

#include <algorithm>
#include <bitset>

#include "crypto/session.h"
#include "engine/timer_queue.h"
#include "sim/rng.h"
#include "wire/datagram.h"
#include "wire/frame.h"
#include "wire/reassembler.h"

using namespace storjnet;
using namespace storjnet::wire;

namespace {
const Endpoint kFrom = Endpoint::v4(0x0a000001u, 4000);

Identity make_identity(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed[0] = n;
  return Identity::from_seed(seed);
}
}  // namespace

TEST(Datagram, HelloRoundTrip) {
  Identity a = make_identity(1);
  Bytes d = encode_hello(7, {a.public_key(), 0x1122334455667788ull});
  EXPECT_EQ(d.size(), kHelloSize);
  auto r = decode(d, 7);
  ASSERT_TRUE(r.datagram);
  auto& h = std::get<Hello>(*r.datagram);
  EXPECT_EQ(h.sender, a.public_key());
  EXPECT_EQ(h.challenge, 0x1122334455667788ull);
  Bytes rep = encode_hello_reply(7, {a.public_key(), 5});
  auto rr = decode(rep, 7);
  ASSERT_TRUE(rr.datagram);
  EXPECT_EQ(std::get<HelloReply>(*rr.datagram).challenge, 5u);
}

TEST(Datagram, SealedRoundTripAndNonceLayout) {
  Identity a = make_identity(1);
  Nonce n = make_nonce(123456789, 0xdeadbeef, 42);
  uint64_t e, s, c;
  split_nonce(n, e, s, c);
  EXPECT_EQ(e, 123456789u);
  EXPECT_EQ(s, 0xdeadbeefu);
  EXPECT_EQ(c, 42u);
  Bytes d;
  encode_sealed_header(9, a.public_key(), n, d);
  d.resize(d.size() + 20, 0xab);
  auto r = decode(d, 9);
  ASSERT_TRUE(r.datagram);
  auto& sd = std::get<Sealed>(*r.datagram);
  EXPECT_EQ(sd.sender, a.public_key());
  EXPECT_EQ(sd.nonce, n);
  EXPECT_EQ(sd.header.size(), kSealedHeaderSize);
  EXPECT_EQ(sd.ciphertext.size(), 20u);
}

TEST(Datagram, RejectsEachKindOfBadInput) {
  Identity a = make_identity(1);
  Bytes hello = encode_hello(7, {a.public_key(), 1});
  auto reason = [](ByteView d, uint32_t net = 7) { return decode(d, net).drop; };
  EXPECT_EQ(reason(ByteView(hello.data(), 3)), DropReason::kTruncated);
  EXPECT_EQ(reason(ByteView(hello.data(), 100)), DropReason::kTruncated);
  Bytes big(1281, 1);
  EXPECT_EQ(reason(big), DropReason::kOversized);
  EXPECT_EQ(reason(hello, 8), DropReason::kWrongNetwork);
  Bytes other_version = hello;
  other_version[0] = kVersion + 1;
  EXPECT_EQ(reason(other_version), DropReason::kBadVersion);
  Bytes kind = hello;
  kind[1] = 99;
  EXPECT_EQ(reason(kind), DropReason::kBadKind);
  Bytes sealed;
  encode_sealed_header(7, a.public_key(), make_nonce(1, 2, 3), sealed);
  sealed.resize(sealed.size() + kTagSize);  // no plaintext byte at all
  EXPECT_EQ(reason(sealed), DropReason::kTruncated);
}

TEST(Frame, PaddedCarriesOneMessageInAFullPlaintextAndRefusesBadPadding) {
  Bytes m(40, 9);
  Bytes f = encode_padded(m);
  EXPECT_EQ(f.size(), kMaxSealedPlaintext);
  auto d = decode_frame(f);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->whole());
  EXPECT_TRUE(std::equal(d->body.begin(), d->body.end(), m.begin(), m.end()));
  Bytes bad = f;
  bad.back() = 1;  // padding must be zero
  EXPECT_FALSE(decode_frame(bad));
  bad = f;
  put_u16(bad.data() + 1, static_cast<uint16_t>(kMaxSealedPlaintext));  // length past the end
  EXPECT_FALSE(decode_frame(bad));
  EXPECT_FALSE(decode_frame(Bytes{kFramePadded, 0}));  // short header
  EXPECT_THROW(encode_padded(Bytes(kMaxPadded + 1)), std::length_error);
}

TEST(Frame, WholeAndFragmentsRoundTrip) {
  Bytes small(100, 7);
  auto f = encode_frames(small, 1);
  ASSERT_EQ(f.size(), 1u);
  auto d = decode_frame(f[0]);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, kFrameWhole);
  EXPECT_TRUE(std::equal(d->body.begin(), d->body.end(), small.begin(), small.end()));

  Bytes big(64 * 1024 + 17);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 31);
  auto frames = encode_frames(big, 99);
  EXPECT_EQ(frames.size(), (big.size() + kMaxChunk - 1) / kMaxChunk);
  for (auto& fr : frames) EXPECT_LE(fr.size() + kSealedOverhead, kMaxDatagram);
  Bytes joined;
  for (auto& fr : frames) {
    auto fd = decode_frame(fr);
    ASSERT_TRUE(fd);
    EXPECT_EQ(fd->msg_id, 99u);
    joined.insert(joined.end(), fd->body.begin(), fd->body.end());
  }
  EXPECT_EQ(joined, big);
  EXPECT_THROW(encode_frames(Bytes(kMaxMessage + 1), 1), std::length_error);
}

TEST(Frame, RejectsMalformed) {
  EXPECT_FALSE(decode_frame({}));
  uint8_t bad_type[] = {9, 1, 2};
  EXPECT_FALSE(decode_frame(bad_type));
  uint8_t short_frag[] = {2, 0, 0, 0, 1, 0, 0};
  EXPECT_FALSE(decode_frame(short_frag));
  uint8_t idx_ge_count[] = {2, 0, 0, 0, 1, 0, 5, 0, 5, 0xaa};
  EXPECT_FALSE(decode_frame(idx_ge_count));
  uint8_t zero_count[] = {2, 0, 0, 0, 1, 0, 0, 0, 0, 0xaa};
  EXPECT_FALSE(decode_frame(zero_count));
}

TEST(SessionCrypto, BothEndsDeriveTheSameKeyAndTamperingFails) {
  Identity a = make_identity(1), b = make_identity(2), c = make_identity(3);
  crypto::SessionKey ab, ba, ac;
  ASSERT_TRUE(crypto::derive_session_key(a, b.public_key(), ab));
  ASSERT_TRUE(crypto::derive_session_key(b, a.public_key(), ba));
  ASSERT_TRUE(crypto::derive_session_key(a, c.public_key(), ac));
  EXPECT_EQ(ab, ba);
  EXPECT_NE(ab, ac);
  crypto::SessionKey self;
  EXPECT_FALSE(crypto::derive_session_key(a, a.public_key(), self));
  PublicKey garbage;
  garbage.fill(0xff);
  EXPECT_FALSE(crypto::derive_session_key(a, garbage, self));

  Nonce n = make_nonce(1, 2, 3);
  Bytes ad = {1, 2, 3}, plain = {10, 20, 30, 40};
  Bytes sealed = ad;
  crypto::seal(ab, n, ad, plain, sealed);
  ByteView cipher(sealed.data() + ad.size(), sealed.size() - ad.size());
  Bytes out;
  ASSERT_TRUE(crypto::open(ba, n, ad, cipher, out));
  EXPECT_EQ(out, plain);
  Bytes flipped(cipher.begin(), cipher.end());
  flipped[0] ^= 1;
  EXPECT_FALSE(crypto::open(ba, n, ad, flipped, out));
  Bytes ad2 = {1, 2, 4};
  EXPECT_FALSE(crypto::open(ba, n, ad2, cipher, out));
  EXPECT_FALSE(crypto::open(ac, n, ad, cipher, out));
}

TEST(ReplayWindow, AcceptsOnceWithinWindowAndOrdersEpochs) {
  using V = crypto::ReplayWindow::Verdict;
  crypto::ReplayWindow w;
  EXPECT_EQ(w.check(10, 1, 5), V::kFresh);
  w.accept(10, 1, 5);
  EXPECT_EQ(w.check(10, 1, 5), V::kReplay);
  EXPECT_EQ(w.check(10, 1, 3), V::kFresh);  // reordered, older but in window
  w.accept(10, 1, 3);
  EXPECT_EQ(w.check(10, 1, 3), V::kReplay);
  w.accept(10, 1, 600);
  EXPECT_EQ(w.check(10, 1, 50), V::kReplay);  // fell out of the 512 window
  EXPECT_EQ(w.check(10, 1, 599), V::kFresh);
  EXPECT_EQ(w.check(10, 1, 100), V::kFresh);
  EXPECT_EQ(w.check(10, 2, 500), V::kStale);  // same epoch, other salt
  EXPECT_EQ(w.check(9, 1, 500), V::kStale);   // older session
  EXPECT_EQ(w.check(11, 7, 0), V::kFresh);    // sender restarted
  w.accept(11, 7, 0);
  EXPECT_EQ(w.check(10, 1, 601), V::kStale);
}

namespace {
// The replay window as one 512-bit bitmap (the implementation before the far bits were allocated lazily):
// the reference the compact window must agree with on every verdict.
struct ReferenceWindow {
  using V = crypto::ReplayWindow::Verdict;
  bool has = false;
  uint64_t epoch = 0, salt = 0, top = 0;
  std::bitset<512> seen;
  V check(uint64_t e, uint64_t s, uint64_t c) const {
    if (!has || e > epoch) return V::kFresh;
    if (e < epoch || s != salt) return V::kStale;
    if (c > top) return V::kFresh;
    uint64_t back = top - c;
    return back >= 512 || seen[back] ? V::kReplay : V::kFresh;
  }
  void accept(uint64_t e, uint64_t s, uint64_t c) {
    if (!has || e > epoch) {
      has = true, epoch = e, salt = s, top = c;
      seen.reset();
      seen.set(0);
    } else if (c > top) {
      if (c - top >= 512) seen.reset();
      else seen <<= (c - top);
      top = c;
      seen.set(0);
    } else {
      seen.set(top - c);
    }
  }
};
}  // namespace

TEST(ReplayWindow, TheCompactWindowGivesTheVerdictsOfAFullBitmap) {
  sim::Rng rng(11);
  size_t allocated = 0;
  for (int run = 0; run < 200; ++run) {
    crypto::ReplayWindow w;
    ReferenceWindow ref;
    uint64_t epoch = 1, salt = 7, next = 0;
    for (int i = 0; i < 3000; ++i) {
      uint64_t r = rng.below(100);
      if (r < 2) {  // shrink and restore (a dormant session revived)
        auto f = w.floor();
        w = crypto::ReplayWindow::from_floor(f);
        ref.seen.set();
        continue;
      }
      if (r < 3) {  // the sender's new session
        ++epoch, salt = rng.next(), next = 0;
      }
      if (r < 5) w = crypto::ReplayWindow(w);  // copies keep every bit
      // Mostly in order, sometimes reordered by up to 700, sometimes a jump ahead.
      uint64_t c = next;
      uint64_t kind = rng.below(10);
      if (kind < 6) c = next++;
      else if (kind < 9) c = next > 0 ? next - 1 - rng.below(std::min<uint64_t>(next, 700)) : 0;
      else c = next += rng.below(600), next++;
      uint64_t e = rng.below(50) == 0 && epoch > 1 ? epoch - 1 : epoch;
      uint64_t s = rng.below(80) == 0 ? salt + 1 : salt;
      auto v = ref.check(e, s, c);
      ASSERT_EQ(w.check(e, s, c), v) << "run " << run << " step " << i;
      if (v == ReferenceWindow::V::kFresh) {
        w.accept(e, s, c);
        ref.accept(e, s, c);
      }
      allocated += w.heap_bytes() > 0;
    }
  }
  EXPECT_GT(allocated, 0u);  // the far bits were exercised
  crypto::ReplayWindow small;
  for (uint64_t c = 0; c < 64; ++c) small.accept(1, 1, c);
  EXPECT_EQ(small.heap_bytes(), 0u);  // 64 datagrams in order fit the near bits
  small.accept(1, 1, 64);
  EXPECT_GT(small.heap_bytes(), 0u);
}

TEST(Reassembler, ReorderingLossAndDuplicates) {
  Reassembler r;
  DropCounters drops;
  NodeId peer = NodeId::hash_of(as_bytes("peer"));
  Bytes msg(10000);
  for (size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<uint8_t>(i);
  auto frames = encode_frames(msg, 5);
  std::vector<Frame> fs;
  for (auto& f : frames) fs.push_back(*decode_frame(f));
  sim::Rng rng(3);
  std::vector<size_t> order(fs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  Bytes out;
  TimePoint t{0};
  // All but the last (in shuffled order), each twice: incomplete, duplicates ignored.
  for (size_t k = 0; k + 1 < order.size(); ++k) {
    auto& f = fs[order[k]];
    EXPECT_EQ(r.add(peer, kFrom, f.msg_id, f.index, f.count, f.body, t, out, drops), Reassembler::Result::kIncomplete);
    EXPECT_EQ(r.add(peer, kFrom, f.msg_id, f.index, f.count, f.body, t, out, drops), Reassembler::Result::kDuplicate);
  }
  auto& last = fs[order.back()];
  ASSERT_EQ(r.add(peer, kFrom, last.msg_id, last.index, last.count, last.body, t, out, drops), Reassembler::Result::kComplete);
  EXPECT_EQ(out, msg);
  EXPECT_EQ(r.bytes_in_use(), 0u);
  EXPECT_TRUE(r.empty());

  // A lost fragment: the partial message expires after the timeout and frees its memory.
  for (size_t k = 1; k < fs.size(); ++k)
    r.add(peer, kFrom, 6, fs[k].index, fs[k].count, fs[k].body, t, out, drops);
  EXPECT_GT(r.bytes_in_use(), 0u);
  EXPECT_EQ(r.expire(t + 1s), 0u);
  EXPECT_EQ(r.expire(t + 6s), 1u);
  EXPECT_EQ(r.bytes_in_use(), 0u);
}

TEST(Reassembler, EnforcesPerPeerTotalAndMessageBounds) {
  constexpr size_t C = kMaxChunk;
  ReassemblyLimits lim;
  lim.max_message = 5 * C + 100;
  lim.max_per_peer = 8 * C;
  lim.max_total = 12 * C;
  Reassembler r(lim);
  DropCounters drops;
  Bytes chunk(C, 1), tail(200, 2), out;
  NodeId a = NodeId::hash_of(as_bytes("a")), b = NodeId::hash_of(as_bytes("b"));
  TimePoint t{0};
  auto add = [&](const NodeId& p, uint32_t m, uint16_t i, uint16_t n, ByteView c) {
    return r.add(p, kFrom, m, i, n, c, t, out, drops);
  };
  // Message bound: a count that cannot fit is refused at its first fragment; a last fragment that makes the
  // message too large is refused and the partial dropped.
  EXPECT_EQ(add(a, 1, 0, 10, chunk), Reassembler::Result::kOverLimit);
  for (uint16_t i = 0; i < 5; ++i) EXPECT_EQ(add(a, 2, i, 6, chunk), Reassembler::Result::kIncomplete);
  EXPECT_EQ(add(a, 2, 5, 6, tail), Reassembler::Result::kOverLimit);
  EXPECT_EQ(r.bytes_in_use(), 0u);
  // Per-peer bound across messages.
  for (uint32_t m = 10; m < 18; ++m) EXPECT_EQ(add(a, m, 0, 2, chunk), Reassembler::Result::kIncomplete);
  EXPECT_EQ(add(a, 18, 0, 2, chunk), Reassembler::Result::kOverLimit);
  // Total bound: peer b, in a's network, gets the remaining 4 chunks only (nothing is evicted for it).
  for (uint32_t m = 0; m < 4; ++m) EXPECT_EQ(add(b, m, 0, 2, chunk), Reassembler::Result::kIncomplete);
  EXPECT_EQ(add(b, 9, 0, 2, chunk), Reassembler::Result::kOverLimit);
  EXPECT_LE(r.bytes_in_use(), lim.max_total);
  EXPECT_EQ(drops.get(DropReason::kReassemblyEvicted), 0u);
  // Inconsistent fragment count drops the partial.
  EXPECT_EQ(add(b, 0, 1, 3, chunk), Reassembler::Result::kInvalid);
  EXPECT_EQ(add(b, 77, 3, 2, chunk), Reassembler::Result::kInvalid);
}

TEST(TimerQueue, RunsInDeadlineOrderAndCancels) {
  TimerQueue q;
  std::vector<int> ran;
  q.schedule(TimePoint(30), [&] { ran.push_back(3); });
  auto t1 = q.schedule(TimePoint(10), [&] { ran.push_back(1); });
  q.schedule(TimePoint(20), [&] { ran.push_back(2); });
  auto t4 = q.schedule(TimePoint(20), [&] { ran.push_back(4); });
  q.cancel(t4);
  EXPECT_FALSE(t4);
  EXPECT_EQ(q.next_deadline(), TimePoint(10));
  EXPECT_EQ(q.run_due(TimePoint(25)), 2u);
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
  q.cancel(t1);  // already ran: no-op
  q.schedule(TimePoint(5), [&] { ran.push_back(5); });
  q.run_due(TimePoint(100));
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 5, 3}));
  EXPECT_EQ(q.next_deadline(), TimerQueue::kNever);
}
