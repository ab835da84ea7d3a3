// One stream's send and receive logic as a pure state machine (docs/architecture.md, "Streams").
//
// SendSide holds the bytes the application wrote until the peer acknowledges them, cut in chunks, each
// remembering the path carrying it (kDatagram: a stream_write RPC; otherwise a fast-path connection id).
// It is fed acknowledgements, losses, refusals and credit from either path and tells which chunks to send
// now (poll) and when it next needs waking (wake_at). RecvSide places received data within the window,
// counts duplicates and data beyond the window, and says when the writer needs a window update.
// Neither touches a socket, a clock (time is passed in), a callback or randomness: the transport adapters
// in streams.cc do, and tests/stream_state_test.cc drives both by hand.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "storjnet/bytes.h"
#include "storjnet/environment.h"
#include "streams/recv_buffer.h"

namespace storjnet::streams {

constexpr uint64_t kDatagram = 0;  // the path of chunks sent as stream_write RPCs

// A chunk already sealed for a connection (the fast path's record), held instead of its plaintext until the
// peer acknowledges it, so a write is sealed straight from the writer's bytes and never copied first. open()
// gives the plaintext back when the chunk must go another way (its connection failed or refused it).
class SealedChunk {
 public:
  virtual ~SealedChunk() = default;
  virtual size_t size() const = 0;  // stream bytes in the chunk
  virtual Bytes open() const = 0;
};

class SendSide {
 public:
  static constexpr size_t kMaxInFlight = 16;  // datagram chunks: 512 KiB of unacknowledged data on the wire
  static constexpr size_t kMaxInFlightBytes = 512 * 1024;  // ... smaller paced chunks: more of them, up to
  static constexpr size_t kMaxInFlightPaced = 48;          // this many (a receiver holds 64 ahead of a gap)
  static constexpr Duration kBackoff = 250ms;  // after the peer answered "busy", no datagram before this
  // Pacing of datagram chunks (docs/protocol.md 7, "Pacing"). Unpaced until a datagram chunk is lost (its
  // request failed, or was answered only after a resend); then sent at most at rate() bytes/s, which each
  // loss halves (once per round: losses of chunks sent before the last cut do not cut again) and each chunk
  // acknowledged at its first sending raises by half the chunk. A relay's per-circuit budget
  // (docs/protocol.md 5.3) drops what exceeds it; pacing keeps a relayed stream near that budget instead of
  // sending four times it.
  static constexpr double kMinRate = 32 * 1024;         // bytes/s: a paced stream never goes slower
  static constexpr double kMaxRate = 1024.0 * 1024 * 1024;  // ... nor faster (a cap, not a goal)
  // A paced datagram chunk carries at most kPacedChunkTime at the rate, and at least kMinPacedChunk (one
  // datagram: a relay's budget drops datagrams, and a chunk of many fragments is lost with any one of them).
  static constexpr Duration kPacedChunkTime = 4ms;
  static constexpr size_t kMinPacedChunk = 1024;

  struct Transmit {
    uint64_t path;   // kDatagram or a connection id
    uint64_t offset;
    ByteView data;   // valid until the next call that changes this SendSide
  };

  uint64_t written() const { return written_; }  // bytes accepted from the application
  uint64_t limit() const { return limit_; }      // the peer's credit: we may send bytes below this
  uint64_t credit() const { return limit_ > written_ ? limit_ - written_ : 0; }
  uint64_t acked() const { return unacked_.empty() ? written_ : unacked_.begin()->first; }  // all below: acked
  bool all_acked() const { return unacked_.empty(); }
  size_t in_flight() const { return in_flight_; }  // datagram chunks awaiting an answer
  size_t chunks() const { return unacked_.size(); }

  // Raises the peer's credit (from an acknowledgement or a window update; a lower limit is stale).
  void raise_limit(uint64_t limit) { limit_ = std::max(limit_, limit); }
  // Takes up to credit() bytes of `data` in chunks of at most `chunk` bytes; returns how many.
  size_t write(ByteView data, size_t chunk);
  // Takes a chunk the caller wrote and already sent over connection `conn`: the next sealed->size() bytes of
  // the stream, in flight there. False (nothing taken) when that is more than credit() or the chunk is empty.
  bool write_sent(uint64_t conn, std::shared_ptr<const SealedChunk> sealed);
  // True when poll() has nothing to send over a fast path (every chunk is in flight or refused): a chunk
  // written and sent at once (write_sent) then keeps the stream's order on the connection.
  bool nothing_unsent() const;
  // What to send now: unsent chunks over `fast` (a usable connection, or kDatagram for none), then over
  // datagrams those refused by the fast path (or all without one), at most kMaxInFlight at a time and none
  // while backing off. Chunks bigger than `datagram_chunk` (while paced: the paced chunk size) are cut first.
  std::vector<Transmit> poll(uint64_t fast, TimePoint now, size_t datagram_chunk);
  // The peer acknowledged the chunk at `offset` sent over `path`: true when that chunk was in flight there
  // (it is then done); anything else (late, duplicate, other path) is ignored and counted. `resent`: a
  // datagram chunk's request was answered only after it was sent again (a loss, for pacing).
  bool on_ack(uint64_t path, uint64_t offset, uint64_t limit, bool resent = false, TimePoint now = {});
  // A datagram chunk's RPC failed (lost, or refused by the peer): it is sent again by a later poll. With
  // `busy` (the peer had no room), no datagram goes before now + kBackoff; without, it counts as a loss
  // (pacing). False when it was not in flight.
  bool on_datagram_failed(uint64_t offset, bool busy, TimePoint now);
  // The fast path refused the chunk at `offset`: it goes again over datagrams, whose answer says why.
  bool on_refused(uint64_t conn, uint64_t offset);
  // Connection `conn` went down: whatever it carried unacknowledged goes again.
  void on_path_down(uint64_t conn);
  // Drops every unacknowledged byte (the stream failed or was reset).
  void reset();
  // When poll() may have something new without any other event (the end of a backoff), if ever.
  std::optional<TimePoint> wake_at() const;
  // poll() wakes past a backoff by itself; this forgets an ended one (so wake_at() stops asking).
  void clear_backoff(TimePoint now);

  uint64_t ignored_acks() const { return ignored_acks_; }
  // Pacing: 0 while unpaced, else bytes/s; pace_at: when the last poll() left a datagram chunk waiting for
  // its pacing time (the caller wakes then and polls again).
  double rate() const { return rate_; }
  std::optional<TimePoint> pace_at() const { return pace_at_; }
  uint64_t losses() const { return losses_; }

 private:
  struct Chunk {
    Bytes data;  // the plaintext, unless `sealed` holds the chunk
    bool in_flight = false;
    uint64_t via = kDatagram;  // path carrying it while in flight
    bool refused = false;      // refused on a connection: goes over datagrams, which say why
    TimePoint sent{};          // last sent as a datagram
    std::shared_ptr<const SealedChunk> sealed = nullptr;  // write_sent's chunks, while in flight on their connection
    size_t size() const { return sealed ? sealed->size() : data.size(); }
    void unseal();  // back to plaintext
  };
  void on_loss(TimePoint sent, TimePoint now);
  void delivered(size_t bytes, TimePoint now);
  std::map<uint64_t, Chunk> unacked_;
  uint64_t written_ = 0, limit_ = 0;
  size_t in_flight_ = 0;
  TimePoint backoff_until_{};
  uint64_t ignored_acks_ = 0;
  // Pacing.
  double rate_ = 0;
  TimePoint next_send_{}, cut_at_{};
  std::optional<TimePoint> pace_at_;
  uint64_t losses_ = 0;
  // Delivery rate: bytes acknowledged over datagrams in the current period (at least kRatePeriod), and the
  // rate of the last complete one (a loss's first cut halves it).
  static constexpr Duration kRatePeriod = 250ms;
  uint64_t period_bytes_ = 0;
  TimePoint period_start_{};
  double last_rate_ = 0;
};

class RecvSide {
 public:
  RecvSide(size_t window, size_t min_charge, size_t max_ahead)
      : rx_(window, min_charge, max_ahead), advertised_(rx_.limit()) {}

  enum class Got { kOk, kBeyondWindow, kTooManyAhead };
  // Places data at `offset` (ByteView or Bytes&&, kept without a copy when it continues the stream).
  // Duplicates are acknowledged (kOk) and counted; data beyond the window is refused and counted.
  template <class Data>
  Got on_data(uint64_t offset, Data&& data) {
    if (!data.empty() && offset + data.size() <= rx_.received()) ++duplicates_;
    auto added = rx_.add(offset, std::forward<Data>(data));
    if (added == RecvBuffer::Add::kBeyondWindow) return ++beyond_window_, Got::kBeyondWindow;
    if (added == RecvBuffer::Add::kTooManyAhead) return Got::kTooManyAhead;
    advertised_ = std::max(advertised_, rx_.limit());
    return Got::kOk;
  }
  // Up to `max` contiguous bytes (all when nullopt); buffers copied out whole go to `spent` when given.
  Bytes read(std::optional<size_t> max, std::vector<Bytes>* spent = nullptr) { return rx_.read(max, spent); }
  // After a read: the limit to tell the writer, when the freed space is worth a message (a quarter of the
  // window) or the writer may be stalled. Records it as advertised.
  std::optional<uint64_t> window_update();

  const RecvBuffer& buffer() const { return rx_; }
  void drop_ahead() { rx_.drop_ahead(); }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t beyond_window() const { return beyond_window_; }

 private:
  RecvBuffer rx_;
  uint64_t advertised_;  // the highest limit the writer was told
  uint64_t duplicates_ = 0, beyond_window_ = 0;
};

}  // namespace storjnet::streams
