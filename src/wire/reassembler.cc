#include "wire/reassembler.h"

#include <algorithm>

namespace storjnet::wire {

void Reassembler::erase(std::unordered_map<Key, Partial, KeyHash>::iterator it) {
  total_ -= it->second.charged;
  auto pp = per_peer_.find(it->first.peer);
  if (pp != per_peer_.end()) {
    pp->second -= it->second.charged;
    if (pp->second == 0) per_peer_.erase(pp);
  }
  partials_.erase(it);
}

Reassembler::Result Reassembler::add(const NodeId& peer, uint32_t msg_id, uint16_t index, uint16_t count,
                                     ByteView chunk, TimePoint now, Bytes& out) {
  if (count == 0 || index >= count || chunk.empty()) return Result::kInvalid;
  Key key{peer, msg_id};
  auto it = partials_.find(key);
  if (it != partials_.end()) {
    Partial& p = it->second;
    if (p.count != count) {
      erase(it);
      return Result::kInvalid;
    }
    if (p.chunks.count(index)) return Result::kDuplicate;
  }
  // Check every bound before creating or growing anything.
  size_t charge = std::max(chunk.size(), kMinFragmentCharge);
  size_t payload = it == partials_.end() ? 0 : it->second.bytes;
  if (payload + chunk.size() > limits_.max_message || peer_bytes(peer) + charge > limits_.max_per_peer ||
      total_ + charge > limits_.max_total) {
    if (it != partials_.end()) erase(it);
    return Result::kOverLimit;
  }
  if (it == partials_.end()) {
    it = partials_.emplace(key, Partial{}).first;
    it->second.started = now;
    it->second.count = count;
  }
  Partial& p = it->second;
  p.chunks.emplace(index, Bytes(chunk.begin(), chunk.end()));
  p.bytes += chunk.size();
  p.charged += charge;
  per_peer_[peer] += charge;
  total_ += charge;
  if (p.chunks.size() < p.count) return Result::kIncomplete;
  out.clear();
  out.reserve(p.bytes);
  for (auto& [i, c] : p.chunks) out.insert(out.end(), c.begin(), c.end());
  erase(it);
  return Result::kComplete;
}

size_t Reassembler::expire(TimePoint now) {
  size_t dropped = 0;
  for (auto it = partials_.begin(); it != partials_.end();) {
    auto next = std::next(it);
    if (now - it->second.started >= limits_.timeout) {
      erase(it);
      ++dropped;
    }
    it = next;
  }
  return dropped;
}

}  // namespace storjnet::wire
