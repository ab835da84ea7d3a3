// RttEstimate: a peer's (or all peers') round-trip time and retransmission timeout, as RFC 6298: smoothed
// srtt and rttvar from answers to requests sent once (Karn's rule: a retransmission keeps its rpc id, so a later
// answer could belong to either copy, and timing it from the first send would count our own retry timer in:
// the estimate would feed on itself), rto = srtt + 4 rttvar. No backoff on a timeout: requests are
// independent, and one loss must not leave the next ones without a retry (nor a message whose fragments need
// several attempts without any, and so without samples, for good).
// Microseconds in 32 bits (12 bytes: one per session); rto() is zero until the first sample.
#pragma once
#include <algorithm>
#include <cstdint>

#include "storjnet/environment.h"

namespace storjnet {

class RttEstimate {
 public:
  static constexpr uint32_t kMaxUs = 60'000'000;  // rto never grows past a minute

  void sample(Duration rtt) {
    auto us = static_cast<uint32_t>(std::clamp<int64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(rtt).count(), 1, kMaxUs));
    if (srtt_us_ == 0) {
      srtt_us_ = us;
      rttvar_us_ = us / 2;
    } else {
      uint32_t diff = srtt_us_ > us ? srtt_us_ - us : us - srtt_us_;
      rttvar_us_ = (3 * rttvar_us_ + diff) / 4;
      srtt_us_ = (7 * srtt_us_ + us) / 8;
    }
    rto_us_ = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{srtt_us_} + 4ull * rttvar_us_, kMaxUs));
  }
  bool sampled() const { return srtt_us_ != 0; }
  Duration srtt() const { return std::chrono::microseconds(srtt_us_); }
  Duration rto() const { return std::chrono::microseconds(rto_us_); }

 private:
  uint32_t srtt_us_ = 0, rttvar_us_ = 0, rto_us_ = 0;
};

}  // namespace storjnet
