#include "wire/reassembler.h"

namespace storjnet::wire {

void Reassembler::erase(std::unordered_map<Key, Partial, KeyHash>::iterator it) {
  total_ -= it->second.bytes;
  auto pp = per_peer_.find(it->first.peer);
  if (pp != per_peer_.end()) {
    pp->second -= it->second.bytes;
    if (pp->second == 0) per_peer_.erase(pp);
  }
  partials_.erase(it);
}

Reassembler::Result Reassembler::add(const NodeId& peer, uint32_t msg_id, uint16_t index, uint16_t count,
                                     ByteView chunk, TimePoint now, Bytes& out) {
  if (count == 0 || index >= count || chunk.empty()) return Result::kInvalid;
  Key key{peer, msg_id};
  auto it = partials_.find(key);
  if (it == partials_.end()) {
    it = partials_.emplace(key, Partial{}).first;
    it->second.started = now;
    it->second.count = count;
    it->second.chunks.resize(count);
  }
  Partial& p = it->second;
  if (p.count != count) {
    erase(it);
    return Result::kInvalid;
  }
  if (!p.chunks[index].empty()) return Result::kDuplicate;
  size_t& mine = per_peer_[peer];
  if (p.bytes + chunk.size() > limits_.max_message || mine + chunk.size() > limits_.max_per_peer ||
      total_ + chunk.size() > limits_.max_total) {
    if (mine == 0) per_peer_.erase(peer);
    erase(it);
    return Result::kOverLimit;
  }
  p.chunks[index].assign(chunk.begin(), chunk.end());
  p.bytes += chunk.size();
  mine += chunk.size();
  total_ += chunk.size();
  if (++p.received < p.count) return Result::kIncomplete;
  out.clear();
  out.reserve(p.bytes);
  for (auto& c : p.chunks) out.insert(out.end(), c.begin(), c.end());
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
