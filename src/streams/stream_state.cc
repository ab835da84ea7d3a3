#include "streams/stream_state.h"

#include <algorithm>

namespace storjnet::streams {

size_t SendSide::write(ByteView data, size_t chunk) {
  size_t n = static_cast<size_t>(std::min<uint64_t>(credit(), data.size()));
  for (size_t at = 0; at < n; at += chunk) {
    size_t len = std::min(chunk, n - at);
    unacked_.emplace(written_ + at, Chunk{Bytes(data.begin() + static_cast<long>(at),
                                                data.begin() + static_cast<long>(at + len))});
  }
  written_ += n;
  return n;
}

bool SendSide::write_sent(uint64_t conn, std::shared_ptr<const SealedChunk> sealed) {
  size_t n = sealed ? sealed->size() : 0;
  if (n == 0 || n > credit() || conn == kDatagram) return false;
  Chunk c;
  c.in_flight = true;
  c.via = conn;
  c.sealed = std::move(sealed);
  unacked_.emplace(written_, std::move(c));
  written_ += n;
  return true;
}

bool SendSide::nothing_unsent() const {
  return std::all_of(unacked_.begin(), unacked_.end(),
                     [](auto& kv) { return kv.second.in_flight || kv.second.refused; });
}

void SendSide::Chunk::unseal() {
  if (!sealed) return;
  data = sealed->open();
  sealed.reset();
}

std::vector<SendSide::Transmit> SendSide::poll(uint64_t fast, TimePoint now, size_t datagram_chunk) {
  std::vector<Transmit> out;
  if (fast != kDatagram) {
    for (auto& [off, c] : unacked_) {
      if (c.in_flight || c.refused) continue;
      c.in_flight = true;
      c.via = fast;
      out.push_back({fast, off, c.data});
    }
  }
  pace_at_.reset();
  if (now < backoff_until_) return out;
  // Paced: chunks of at most kPacedChunkTime at the rate (a lost datagram then costs little), more of them.
  if (rate_ > 0)
    datagram_chunk = std::clamp(static_cast<size_t>(rate_ * std::chrono::duration<double>(kPacedChunkTime).count()),
                                std::min(kMinPacedChunk, datagram_chunk), datagram_chunk);
  size_t max_in_flight = std::clamp(kMaxInFlightBytes / std::max<size_t>(datagram_chunk, 1), kMaxInFlight,
                                    kMaxInFlightPaced);
  for (auto it = unacked_.begin(); it != unacked_.end() && in_flight_ < max_in_flight; ++it) {
    auto& [off, c] = *it;
    if (c.in_flight || (fast != kDatagram && !c.refused)) continue;
    if (rate_ > 0 && now < next_send_) {
      pace_at_ = next_send_;
      break;
    }
    if (c.data.size() > datagram_chunk) {  // written for the fast path, now going as datagrams
      Bytes rest(c.data.begin() + static_cast<long>(datagram_chunk), c.data.end());
      c.data.resize(datagram_chunk);
      unacked_.emplace(off + datagram_chunk, Chunk{std::move(rest), false, kDatagram, c.refused});
    }
    c.in_flight = true;
    c.via = kDatagram;
    c.sent = now;
    ++in_flight_;
    if (rate_ > 0)
      next_send_ = std::max(next_send_, now) +
                   std::chrono::duration_cast<Duration>(std::chrono::duration<double>(double(c.data.size()) / rate_));
    out.push_back({kDatagram, off, c.data});
  }
  return out;
}

void SendSide::on_loss(TimePoint sent, TimePoint now) {
  ++losses_;
  if (rate_ > 0 && sent < cut_at_) return;  // sent before the last cut: that cut answered it
  // The first cut halves the delivery rate: the last complete period's, else what the current one has seen
  // (over a period at least: a few acknowledgements a millisecond apart are no rate).
  double partial = static_cast<double>(period_bytes_) /
                   std::chrono::duration<double>(std::max<Duration>(kRatePeriod, now - period_start_)).count();
  double base = rate_ > 0 ? rate_ : last_rate_ > 0 ? last_rate_ : partial;
  rate_ = std::clamp(base / 2, kMinRate, kMaxRate);
  cut_at_ = now;
  next_send_ = std::max(next_send_, now);
}

void SendSide::delivered(size_t bytes, TimePoint now) {
  if (period_start_ == TimePoint{} || now - period_start_ >= kRatePeriod) {
    if (period_start_ != TimePoint{})
      last_rate_ = static_cast<double>(period_bytes_) / std::chrono::duration<double>(now - period_start_).count();
    period_start_ = now;
    period_bytes_ = 0;
  }
  period_bytes_ += bytes;
}

bool SendSide::on_ack(uint64_t path, uint64_t offset, uint64_t limit, bool resent, TimePoint now) {
  auto c = unacked_.find(offset);
  if (c == unacked_.end() || !c->second.in_flight || c->second.via != path) return ++ignored_acks_, false;
  if (path == kDatagram) {
    --in_flight_;
    size_t n = c->second.size();
    delivered(n, now);
    if (resent)
      on_loss(c->second.sent, now);
    else if (rate_ > 0)
      rate_ = std::min(kMaxRate, rate_ + static_cast<double>(n) / 2);
  }
  unacked_.erase(c);
  raise_limit(limit);
  return true;
}

bool SendSide::on_datagram_failed(uint64_t offset, bool busy, TimePoint now) {
  auto c = unacked_.find(offset);
  if (c == unacked_.end() || !c->second.in_flight || c->second.via != kDatagram) return false;
  c->second.in_flight = false;
  --in_flight_;
  if (busy)
    backoff_until_ = now + kBackoff;
  else
    on_loss(c->second.sent, now);
  return true;
}

bool SendSide::on_refused(uint64_t conn, uint64_t offset) {
  auto c = unacked_.find(offset);
  if (c == unacked_.end() || !c->second.in_flight || c->second.via != conn || conn == kDatagram) return false;
  c->second.in_flight = false;
  c->second.via = kDatagram;
  c->second.refused = true;
  c->second.unseal();
  return true;
}

void SendSide::on_path_down(uint64_t conn) {
  for (auto& [off, c] : unacked_)
    if (c.in_flight && c.via == conn && conn != kDatagram) {
      c.in_flight = false;
      c.via = kDatagram;
      c.unseal();
    }
}

void SendSide::reset() {
  unacked_.clear();
  in_flight_ = 0;
}

std::optional<TimePoint> SendSide::wake_at() const {
  if (backoff_until_ == TimePoint{}) return std::nullopt;
  return backoff_until_;
}

void SendSide::clear_backoff(TimePoint now) {
  if (now >= backoff_until_) backoff_until_ = TimePoint{};
}

std::optional<uint64_t> RecvSide::window_update() {
  uint64_t limit = rx_.limit();
  if (limit - advertised_ < rx_.window() / 4 && advertised_ > rx_.received()) return std::nullopt;
  advertised_ = limit;
  return limit;
}

}  // namespace storjnet::streams
