// The per-stream state machine (src/streams/stream_state.h) driven by hand: no engine, no sockets, no
// clock; the test plays both transports and the peer.
#include <gtest/gtest.h>

#include "streams/stream_state.h"

using namespace storjnet;
using namespace storjnet::streams;

namespace {
constexpr size_t kChunk = 32 * 1024;  // a datagram chunk (codec.h kMaxChunk)
constexpr size_t kBig = 128 * 1024;   // a fast-path chunk (Links::kMaxData)
constexpr uint64_t kConn = 7;

Bytes pattern(size_t n, uint64_t from = 0) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((from + i) * 131 + 7);
  return b;
}

// The receiving end: a RecvSide that answers each transmit as the peer would (limit of its ack).
struct Peer {
  RecvSide rx{1 << 20, 0, 64};
  Bytes got;
  uint64_t deliver(const SendSide::Transmit& t) {
    EXPECT_EQ(rx.on_data(t.offset, t.data), RecvSide::Got::kOk);
    return rx.buffer().limit();
  }
  // Gives `tx` this peer's window and writes n bytes into it in chunks of `chunk`; returns them.
  Bytes start(SendSide& tx, size_t n, size_t chunk) {
    tx.raise_limit(rx.buffer().limit());
    Bytes data = pattern(n);
    EXPECT_EQ(tx.write(data, chunk), n);
    return data;
  }
  // Everything read so far, after reading what is buffered now.
  const Bytes& drain() {
    Bytes b = rx.read(std::nullopt);
    got.insert(got.end(), b.begin(), b.end());
    return got;
  }
};

std::vector<uint64_t> offsets(const std::vector<SendSide::Transmit>& ts) {
  std::vector<uint64_t> out;
  for (auto& t : ts) out.push_back(t.offset);
  return out;
}
// Each test's sender and, where it takes part, its peer.
class StreamState : public ::testing::Test {
 protected:
  SendSide tx;
  Peer peer;
};
}  // namespace

TEST_F(StreamState, InOrderDelivery) {
  Bytes data = peer.start(tx, 100 * 1024, kChunk);
  auto ts = tx.poll(kDatagram, 0s, kChunk);
  ASSERT_EQ(offsets(ts), (std::vector<uint64_t>{0, kChunk, 2 * kChunk, 3 * kChunk}));
  EXPECT_EQ(tx.in_flight(), 4u);
  for (auto& t : ts) EXPECT_TRUE(tx.on_ack(kDatagram, t.offset, peer.deliver(t)));
  EXPECT_TRUE(tx.all_acked());
  EXPECT_EQ(tx.acked(), data.size());
  EXPECT_EQ(tx.in_flight(), 0u);
  EXPECT_TRUE(tx.poll(kDatagram, 0s, kChunk).empty());
  EXPECT_EQ(peer.drain(), data);
}

TEST_F(StreamState, RetransmitAfterLoss) {
  Bytes data = peer.start(tx, 3 * kChunk, kChunk);
  auto ts = tx.poll(kDatagram, 0s, kChunk);
  ASSERT_EQ(ts.size(), 3u);
  // The middle chunk is lost; the last arrives ahead of the gap and waits there.
  EXPECT_TRUE(tx.on_ack(kDatagram, 0, peer.deliver(ts[0])));
  EXPECT_TRUE(tx.on_ack(kDatagram, 2 * kChunk, peer.deliver(ts[2])));
  EXPECT_EQ(peer.rx.buffer().received(), kChunk);
  EXPECT_EQ(peer.rx.buffer().ahead_chunks(), 1u);
  EXPECT_EQ(tx.acked(), kChunk);  // writes complete only up to the gap
  EXPECT_TRUE(tx.poll(kDatagram, 0s, kChunk).empty());  // still in flight: nothing new
  EXPECT_TRUE(tx.on_datagram_failed(kChunk, false, 0s));
  EXPECT_FALSE(tx.on_datagram_failed(kChunk, false, 0s));  // once
  // Sent again, and only it (paced since the loss: in smaller chunks, over time).
  std::vector<uint64_t> again;
  for (Duration t = 0s; !tx.all_acked() && t < 10s; t += 10ms)
    for (auto& r : tx.poll(kDatagram, t, kChunk)) {
      again.push_back(r.offset);
      EXPECT_TRUE(tx.on_ack(kDatagram, r.offset, peer.deliver(r), false, t));
    }
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again.front(), kChunk);
  for (uint64_t off : again) EXPECT_TRUE(off >= kChunk && off < 2 * kChunk) << off;
  EXPECT_TRUE(tx.all_acked());
  EXPECT_EQ(peer.drain(), data);
}

TEST_F(StreamState, FastPathDownGoesAgainAsDatagramsCutSmaller) {
  Bytes data = peer.start(tx, 2 * kBig, kBig);
  auto fast = tx.poll(kConn, 0s, kChunk);
  ASSERT_EQ(fast.size(), 2u);
  EXPECT_EQ(fast[0].path, kConn);
  EXPECT_EQ(fast[0].data.size(), kBig);
  EXPECT_EQ(tx.in_flight(), 0u);  // the datagram cap counts datagrams only
  EXPECT_TRUE(tx.on_ack(kConn, 0, peer.deliver(fast[0])));
  tx.on_path_down(kConn);
  // The ack of what the dead connection carried is ignored (the chunk is no longer in flight there).
  EXPECT_FALSE(tx.on_ack(kConn, kBig, peer.rx.buffer().limit()));
  EXPECT_EQ(tx.ignored_acks(), 1u);
  auto dgrams = tx.poll(kDatagram, 0s, kChunk);
  ASSERT_EQ(dgrams.size(), kBig / kChunk);  // re-cut for the datagram path
  for (size_t i = 0; i < dgrams.size(); ++i) {
    EXPECT_EQ(dgrams[i].path, kDatagram);
    EXPECT_EQ(dgrams[i].offset, kBig + i * kChunk);
    EXPECT_EQ(dgrams[i].data.size(), kChunk);
  }
  for (auto& t : dgrams) EXPECT_TRUE(tx.on_ack(kDatagram, t.offset, peer.deliver(t)));
  EXPECT_TRUE(tx.all_acked());
  EXPECT_EQ(peer.drain(), data);
}

TEST_F(StreamState, RefusedOnFastPathGoesAsDatagramWhileFastPathIsUp) {
  tx.raise_limit(1 << 20);
  tx.write(pattern(2 * kBig), kBig);
  ASSERT_EQ(tx.poll(kConn, 0s, kChunk).size(), 2u);
  EXPECT_FALSE(tx.on_refused(kConn + 1, 0));  // another connection: not its chunk
  EXPECT_TRUE(tx.on_refused(kConn, 0));
  auto ts = tx.poll(kConn, 0s, kChunk);
  ASSERT_EQ(ts.size(), kBig / kChunk);  // only the refused chunk, cut, and never on the fast path again
  for (auto& t : ts) EXPECT_EQ(t.path, kDatagram);
  for (auto& t : ts) EXPECT_TRUE(tx.on_datagram_failed(t.offset, false, 0s));
  for (auto& t : tx.poll(kConn, 0s, kChunk)) EXPECT_EQ(t.path, kDatagram);
}

namespace {
// A chunk "sealed" for a connection, as Links' records are: it holds a copy and counts its opens.
struct FakeSealed final : SealedChunk {
  explicit FakeSealed(Bytes b) : bytes(std::move(b)) {}
  size_t size() const override { return bytes.size(); }
  Bytes open() const override { return ++opens, bytes; }
  Bytes bytes;
  mutable int opens = 0;
};
}  // namespace

// Chunks sent at once over a connection (write_sent) are in flight there and held sealed: acknowledged,
// they are done without ever being opened; when their connection fails or refuses them, they are opened and
// go again as datagrams with their exact bytes.
TEST_F(StreamState, ChunksSentSealedAreOpenedOnlyWhenTheyMustGoAgain) {
  tx.raise_limit(peer.rx.buffer().limit());
  Bytes data = pattern(3 * kBig);
  std::vector<std::shared_ptr<FakeSealed>> sealed;
  EXPECT_TRUE(tx.nothing_unsent());
  for (size_t i = 0; i < 3; ++i) {
    Bytes part(data.begin() + long(i * kBig), data.begin() + long((i + 1) * kBig));
    sealed.push_back(std::make_shared<FakeSealed>(std::move(part)));
    EXPECT_TRUE(tx.write_sent(kConn, sealed.back()));
  }
  EXPECT_EQ(tx.written(), 3 * kBig);
  EXPECT_TRUE(tx.nothing_unsent());
  EXPECT_TRUE(tx.poll(kConn, 0s, kChunk).empty());  // all in flight already
  EXPECT_FALSE(tx.write_sent(kConn, std::make_shared<FakeSealed>(pattern(tx.credit() + 1))));  // beyond credit
  EXPECT_FALSE(tx.write_sent(kDatagram, std::make_shared<FakeSealed>(pattern(10))));          // not a connection
  EXPECT_EQ(tx.written(), 3 * kBig);
  // The first is delivered and acknowledged; the second is refused; then the connection fails.
  EXPECT_TRUE(peer.rx.on_data(0, ByteView(sealed[0]->bytes)) == RecvSide::Got::kOk);
  EXPECT_TRUE(tx.on_ack(kConn, 0, peer.rx.buffer().limit()));
  EXPECT_TRUE(tx.on_refused(kConn, kBig));
  EXPECT_TRUE(tx.nothing_unsent());  // a refused chunk goes by datagrams: the fast path may take more
  tx.on_path_down(kConn);
  EXPECT_FALSE(tx.nothing_unsent());  // the third waits to be sent again
  EXPECT_EQ(sealed[0]->opens, 0);
  EXPECT_EQ(sealed[1]->opens, 1);
  EXPECT_EQ(sealed[2]->opens, 1);
  sealed.clear();  // the SendSide holds plaintext now
  for (Duration t = 0s; !tx.all_acked() && t < 10s; t += 10ms)
    for (auto& d : tx.poll(kDatagram, t, kChunk)) {
      EXPECT_EQ(d.path, kDatagram);
      EXPECT_LE(d.data.size(), kChunk);
      EXPECT_TRUE(tx.on_ack(kDatagram, d.offset, peer.deliver(d), false, t));
    }
  EXPECT_TRUE(tx.all_acked());
  EXPECT_EQ(peer.drain(), data);
}

TEST_F(StreamState, CreditLimitsWrites) {
  EXPECT_EQ(tx.write(pattern(10), kChunk), 0u);  // no credit before the peer's window is known
  tx.raise_limit(64 * 1024);
  EXPECT_EQ(tx.write(pattern(100 * 1024), kChunk), 64u * 1024);
  EXPECT_EQ(tx.credit(), 0u);
  EXPECT_EQ(tx.write(pattern(1), kChunk), 0u);
  tx.raise_limit(1000);  // stale
  EXPECT_EQ(tx.limit(), 64u * 1024);
  auto ts = tx.poll(kDatagram, 0s, kChunk);
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_TRUE(tx.on_ack(kDatagram, 0, 96 * 1024));  // the peer read some: more credit
  EXPECT_EQ(tx.credit(), 32u * 1024);
}

TEST_F(StreamState, InFlightCapAndBusyBackoff) {
  tx.raise_limit(1 << 20);
  tx.write(pattern(1 << 20), kChunk);
  auto ts = tx.poll(kDatagram, 0s, kChunk);
  EXPECT_EQ(ts.size(), SendSide::kMaxInFlight);
  EXPECT_TRUE(tx.poll(kDatagram, 0s, kChunk).empty());
  EXPECT_TRUE(tx.on_ack(kDatagram, 0, 2 << 20));
  EXPECT_EQ(offsets(tx.poll(kDatagram, 0s, kChunk)), std::vector<uint64_t>{SendSide::kMaxInFlight * kChunk});
  // The peer had no room: nothing goes as a datagram until the backoff ends; the fast path is not held back.
  EXPECT_FALSE(tx.wake_at());
  EXPECT_TRUE(tx.on_datagram_failed(kChunk, true, 1s));
  ASSERT_TRUE(tx.wake_at());
  EXPECT_EQ(*tx.wake_at(), 1s + SendSide::kBackoff);
  EXPECT_TRUE(tx.poll(kDatagram, 1s + 100ms, kChunk).empty());
  tx.clear_backoff(1s + 100ms);
  EXPECT_TRUE(tx.wake_at());  // not over yet
  EXPECT_EQ(offsets(tx.poll(kDatagram, *tx.wake_at(), kChunk)), std::vector<uint64_t>{kChunk});
  tx.clear_backoff(1s + SendSide::kBackoff);
  EXPECT_FALSE(tx.wake_at());
}

TEST_F(StreamState, DuplicateAndOutOfWindowDataDroppedAndCounted) {
  RecvSide rx(64 * 1024, 0, 4);
  Bytes a = pattern(kChunk);
  EXPECT_EQ(rx.on_data(0, ByteView(a)), RecvSide::Got::kOk);
  EXPECT_EQ(rx.on_data(0, ByteView(a)), RecvSide::Got::kOk);  // acknowledged again, stored once
  EXPECT_EQ(rx.duplicates(), 1u);
  EXPECT_EQ(rx.buffer().unread(), kChunk);
  Bytes far = pattern(kChunk, 64 * 1024);
  EXPECT_EQ(rx.on_data(64 * 1024, ByteView(far)), RecvSide::Got::kBeyondWindow);
  EXPECT_EQ(rx.on_data(40 * 1024, ByteView(far)), RecvSide::Got::kBeyondWindow);  // ends past the limit
  EXPECT_EQ(rx.beyond_window(), 2u);
  EXPECT_EQ(rx.buffer().received(), kChunk);
  EXPECT_EQ(rx.buffer().ahead_chunks(), 0u);
  // Too many chunks ahead of a gap: refused (the writer keeps them), not counted as beyond the window.
  RecvSide few(1 << 20, 0, 2);
  Bytes one = pattern(1);
  EXPECT_EQ(few.on_data(10, ByteView(one)), RecvSide::Got::kOk);
  EXPECT_EQ(few.on_data(20, ByteView(one)), RecvSide::Got::kOk);
  EXPECT_EQ(few.on_data(30, ByteView(one)), RecvSide::Got::kTooManyAhead);
  EXPECT_EQ(few.beyond_window(), 0u);
}

TEST_F(StreamState, WindowUpdateWhenWorthIt) {
  RecvSide rx(64 * 1024, 0, 4);
  Bytes a = pattern(kChunk);
  rx.on_data(0, ByteView(a));
  EXPECT_EQ(rx.read(8 * 1024).size(), 8u * 1024);
  EXPECT_FALSE(rx.window_update());  // an eighth of the window freed, the writer not stalled
  EXPECT_EQ(rx.read(8 * 1024).size(), 8u * 1024);
  EXPECT_EQ(rx.window_update(), 80u * 1024);  // a quarter
  EXPECT_FALSE(rx.window_update());
  // A writer that used all it was told may be stalled: any read is worth an update.
  RecvSide full(64 * 1024, 0, 4);
  Bytes w = pattern(64 * 1024);
  full.on_data(0, ByteView(w));
  EXPECT_EQ(full.read(1).size(), 1u);
  EXPECT_EQ(full.window_update(), 64u * 1024 + 1);
}

TEST_F(StreamState, ResetDropsUnackedAndIgnoresLateAcks) {
  tx.raise_limit(1 << 20);
  tx.write(pattern(3 * kChunk), kChunk);
  auto ts = tx.poll(kDatagram, 0s, kChunk);
  ASSERT_EQ(ts.size(), 3u);
  EXPECT_TRUE(tx.on_ack(kDatagram, 0, 1 << 20));
  EXPECT_FALSE(tx.all_acked());  // a close waits for this
  tx.reset();
  EXPECT_TRUE(tx.all_acked());
  EXPECT_EQ(tx.in_flight(), 0u);
  EXPECT_EQ(tx.acked(), tx.written());
  EXPECT_FALSE(tx.on_ack(kDatagram, kChunk, 1 << 20));
  EXPECT_FALSE(tx.on_datagram_failed(2 * kChunk, false, 0s));
  EXPECT_EQ(tx.ignored_acks(), 1u);
  EXPECT_TRUE(tx.poll(kDatagram, 0s, kChunk).empty());
}

TEST_F(StreamState, AckOnlyFromThePathCarryingTheChunk) {
  tx.raise_limit(1 << 20);
  tx.write(pattern(kChunk), kChunk);
  EXPECT_FALSE(tx.on_ack(kDatagram, 0, 1 << 20));  // not sent yet
  ASSERT_EQ(tx.poll(kConn, 0s, kChunk).size(), 1u);
  EXPECT_FALSE(tx.on_ack(kDatagram, 0, 1 << 20));
  EXPECT_FALSE(tx.on_ack(kConn + 1, 0, 1 << 20));
  EXPECT_FALSE(tx.on_ack(kConn, 5, 1 << 20));  // no chunk there
  EXPECT_EQ(tx.ignored_acks(), 4u);
  EXPECT_TRUE(tx.on_ack(kConn, 0, 1 << 20));
  EXPECT_FALSE(tx.on_ack(kConn, 0, 1 << 20));  // a duplicate
  EXPECT_TRUE(tx.all_acked());
}

// Pacing (docs/protocol.md 7, "Pacing"): unpaced until a loss; then at most rate() bytes/s, halved once per
// round of losses, raised by each chunk acknowledged at its first sending.
TEST_F(StreamState, ALossPacesTheDatagramChunksAtHalfTheDeliveryRate) {
  tx.raise_limit(4 << 20);
  tx.write(pattern(4 << 20), kChunk);
  auto ts = tx.poll(kDatagram, 0s, kChunk);
  ASSERT_EQ(ts.size(), SendSide::kMaxInFlight);  // unpaced: the whole in-flight cap at once
  EXPECT_EQ(tx.rate(), 0);
  EXPECT_FALSE(tx.pace_at());
  // 8 chunks (256 KiB) acknowledged over the first second, in two periods: 256 KiB/s delivered.
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(tx.on_ack(kDatagram, ts[i].offset, 8 << 20, false, 125ms * (i + 1)));
  // The 9th was lost: paced at half that.
  EXPECT_TRUE(tx.on_datagram_failed(ts[8].offset, false, 1s));
  EXPECT_NEAR(tx.rate(), 128 * 1024, 1);
  EXPECT_EQ(tx.losses(), 1u);
  // The rest of that round's losses (sent before the cut) cut no further.
  for (int i = 9; i < 16; ++i) EXPECT_TRUE(tx.on_datagram_failed(ts[i].offset, false, 1s + 10ms));
  EXPECT_NEAR(tx.rate(), 128 * 1024, 1);
  // Paced: one chunk now, of one datagram (4 ms at 128 KiB/s is less than kMinPacedChunk), the next 1 KiB at
  // 128 KiB/s later, not before.
  constexpr size_t kSmall = SendSide::kMinPacedChunk;
  const Duration gap = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(kSmall / (128.0 * 1024)));
  auto one = tx.poll(kDatagram, 1s + 10ms, kChunk);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].data.size(), kSmall);
  ASSERT_TRUE(tx.pace_at());
  EXPECT_EQ(*tx.pace_at(), 1s + 10ms + gap);
  EXPECT_TRUE(tx.poll(kDatagram, 1s + 10ms + gap - 1ms, kChunk).empty());
  auto two = tx.poll(kDatagram, *tx.pace_at(), kChunk);
  ASSERT_EQ(two.size(), 1u);
  // Acknowledged at its first sending: the rate grows by half the chunk.
  EXPECT_TRUE(tx.on_ack(kDatagram, one[0].offset, 8 << 20, false, 1s + 300ms));
  EXPECT_NEAR(tx.rate(), 128 * 1024 + kSmall / 2, 1);
  // Answered only after a resend, sent after the cut: a new loss, a new cut.
  EXPECT_TRUE(tx.on_ack(kDatagram, two[0].offset, 8 << 20, true, 1s + 600ms));
  EXPECT_NEAR(tx.rate(), (128 * 1024 + kSmall / 2) / 2, 1);
  // Never below the floor.
  for (int i = 0; i < 10; ++i) {
    auto t = tx.poll(kDatagram, 10s * (i + 1), kChunk);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_TRUE(tx.on_datagram_failed(t[0].offset, false, 10s * (i + 1) + 1ms));
  }
  EXPECT_EQ(tx.rate(), SendSide::kMinRate);
}

// Paced datagram chunks carry 4 ms at the rate (a relay's budget drops single datagrams, and a lost fragment
// loses its whole chunk), and more of them fly: the in-flight bytes stay near the unpaced 512 KiB, up to 48.
TEST_F(StreamState, PacedChunksAreSmallAndMoreOfThemFly) {
  tx.raise_limit(8 << 20);
  tx.write(pattern(8 << 20), kChunk);
  auto ts = tx.poll(kDatagram, 0s, kChunk);
  ASSERT_EQ(ts.size(), SendSide::kMaxInFlight);
  for (int i = 0; i < 15; ++i) EXPECT_TRUE(tx.on_ack(kDatagram, ts[i].offset, 8 << 20, false, 1ms * (i + 1)));
  EXPECT_TRUE(tx.on_datagram_failed(ts[15].offset, false, 20ms));
  // 480 KiB acknowledged within the first quarter second (a rate is never measured over less): half of that.
  EXPECT_NEAR(tx.rate(), 15.0 * kChunk / 0.25 / 2, 1);
  const size_t paced_chunk = static_cast<size_t>(tx.rate() * 0.004);  // 3,840 bytes
  ASSERT_GT(paced_chunk, SendSide::kMinPacedChunk);
  size_t sent = 0;
  for (Duration t = 20ms; t < 2s; t += 1ms)
    for (auto& x : tx.poll(kDatagram, t, kChunk)) {
      EXPECT_LE(x.data.size(), paced_chunk);
      ++sent;
    }
  EXPECT_EQ(sent, SendSide::kMaxInFlightPaced);
  EXPECT_EQ(tx.in_flight(), SendSide::kMaxInFlightPaced);
}

TEST_F(StreamState, TheFastPathIsNeverPaced) {
  tx.raise_limit(4 << 20);
  tx.write(pattern(kChunk), kChunk);
  auto ts = tx.poll(kDatagram, 0s, kChunk);
  ASSERT_EQ(ts.size(), 1u);
  EXPECT_TRUE(tx.on_datagram_failed(ts[0].offset, false, 1s));
  EXPECT_GT(tx.rate(), 0);
  tx.write(pattern(4 * kBig), kBig);
  EXPECT_EQ(tx.poll(kConn, 1s, kChunk).size(), 5u);  // the lost chunk and the four new ones, all on the connection
}
