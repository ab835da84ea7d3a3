#include "real/port_map_state.h"

#include <algorithm>

namespace storjnet::real {

const char* PortMapState::phase_name(Phase p) {
  switch (p) {
    case Phase::kStarting: return "starting";
    case Phase::kMapped: return "mapped";
    case Phase::kFailed: return "failed";
    case Phase::kLost: return "lost";
    case Phase::kStopped: return "stopped";
  }
  return "?";
}

PortMapState::Action PortMapState::next(TimePoint now) const {
  if (stopping_) return remove_pending_ ? Action::kRemove : Action::kNone;
  return now >= due_ ? Action::kMap : Action::kNone;
}

std::optional<TimePoint> PortMapState::wake_at() const {
  if (stopping_) return remove_pending_ ? std::optional<TimePoint>(TimePoint{0}) : std::nullopt;
  return due_;
}

void PortMapState::tick(TimePoint now) {
  if (phase_ == Phase::kMapped && !held(now)) {
    phase_ = Phase::kLost;
    external_.reset();
    expires_.reset();
  }
}

void PortMapState::on_mapped(std::string protocol, Endpoint external, Duration lease, TimePoint now) {
  ++attempts_;
  if (phase_ == Phase::kMapped && external_ && *external_ == external) ++renewals_;
  if (!first_mapped_ || phase_ != Phase::kMapped) first_mapped_ = now;
  phase_ = Phase::kMapped;
  protocol_ = std::move(protocol);
  external_ = external;
  lease_ = lease;
  consecutive_ = 0;
  if (stopping_) remove_pending_ = true;  // an attempt that was under way when stop() came: undo it
  if (lease.count() <= 0) {
    expires_.reset();
    due_ = now + kPermanentRenew;
  } else {
    Duration l = std::max(lease, kMinLease);
    expires_ = now + l;
    due_ = now + l / 2;
  }
}

void PortMapState::on_failed(std::string error, TimePoint now) {
  ++attempts_;
  ++failures_;
  ++consecutive_;
  last_error_ = std::move(error);
  Duration backoff = cfg_.retry_min;
  for (uint64_t i = 1; i < consecutive_ && backoff < cfg_.retry_max; ++i) backoff *= 2;
  backoff = std::min(backoff, cfg_.retry_max);
  due_ = now + backoff;
  if (held(now)) {
    // Renewal failed: keep the mapping while its lease lasts, retry before it ends when the backoff is longer.
    if (expires_ && due_ >= *expires_) due_ = std::max(now + (*expires_ - now) / 2, now + kMinLease / 10);
    return;
  }
  phase_ = external_ ? Phase::kLost : Phase::kFailed;
  if (phase_ == Phase::kLost) external_.reset(), expires_.reset();
}

void PortMapState::stop() {
  if (stopping_) return;
  stopping_ = true;
  remove_pending_ = external_.has_value();
  if (!remove_pending_) phase_ = Phase::kStopped;
}

void PortMapState::on_removed() {
  remove_pending_ = false;
  phase_ = Phase::kStopped;
  external_.reset();
  expires_.reset();
}

}  // namespace storjnet::real
