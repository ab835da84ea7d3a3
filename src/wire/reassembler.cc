#include "wire/reassembler.h"

#include <algorithm>

#include "wire/frame.h"

namespace storjnet::wire {

void Reassembler::set_prefix_bytes(const Endpoint::Prefix& p, PrefixUse& use, size_t bytes) {
  if (use.bytes) by_prefix_bytes_.erase({use.bytes, p});
  use.bytes = bytes;
  if (bytes) by_prefix_bytes_.insert({bytes, p});
}

void Reassembler::charge(Partial& p, const NodeId& peer, size_t n) {
  p.charged += n;
  per_peer_[peer] += n;
  PrefixUse& use = per_prefix_[p.prefix];
  set_prefix_bytes(p.prefix, use, use.bytes + n);
  total_ += n;
}

void Reassembler::erase(Partials::iterator it) {
  Partial& p = it->second;
  total_ -= p.charged;
  auto pp = per_peer_.find(it->first.peer);
  if (pp != per_peer_.end()) {
    pp->second -= p.charged;
    if (pp->second == 0) per_peer_.erase(pp);
  }
  auto px = per_prefix_.find(p.prefix);
  if (px != per_prefix_.end()) {
    px->second.partials.erase(p.in_prefix);
    set_prefix_bytes(p.prefix, px->second, px->second.bytes - p.charged);
    if (px->second.partials.empty()) per_prefix_.erase(px);
  }
  partials_.erase(it);
}

bool Reassembler::make_room(const Endpoint::Prefix& mine, size_t charge, DropCounters& drops) {
  while (total_ + charge > limits_.max_total) {
    if (by_prefix_bytes_.empty()) return false;
    auto [top_bytes, top] = *by_prefix_bytes_.rbegin();
    if (top == mine || top_bytes <= prefix_bytes(mine) + charge) return false;
    auto victim = partials_.find(per_prefix_[top].partials.front());
    erase(victim);
    drops.add(DropReason::kReassemblyEvicted);
  }
  return true;
}

Reassembler::Result Reassembler::add(const NodeId& peer, const Endpoint& from, uint32_t msg_id, uint16_t index,
                                     uint16_t count, ByteView chunk, TimePoint now, Bytes& out,
                                     DropCounters& drops) {
  if (count == 0 || index >= count || chunk.empty() || chunk.size() > kMaxChunk) return Result::kInvalid;
  bool last = index + 1 == count;
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
  if (!last && chunk.size() != kMaxChunk) {
    if (it != partials_.end()) erase(it);
    return Result::kShortFragment;
  }
  // Check every bound before creating or growing anything. The smallest message `count` fragments can
  // make is (count - 1) full chunks and one byte.
  size_t cost = std::max(chunk.size(), kMinFragmentCharge);
  size_t payload = it == partials_.end() ? 0 : it->second.bytes;
  Endpoint::Prefix prefix = it == partials_.end() ? from.prefix() : it->second.prefix;
  size_t least = size_t(count - 1) * kMaxChunk + (last ? chunk.size() : 1);
  if (least > limits_.max_message || payload + chunk.size() > limits_.max_message ||
      peer_bytes(peer) + cost > limits_.max_per_peer || prefix_bytes(prefix) + cost > limits_.max_per_prefix ||
      !make_room(prefix, cost, drops)) {
    if ((it = partials_.find(key)) != partials_.end()) erase(it);
    return Result::kOverLimit;
  }
  if (it == partials_.end()) {
    it = partials_.emplace(key, Partial{}).first;
    Partial& p = it->second;
    p.started = now;
    p.count = count;
    p.prefix = prefix;
    auto& list = per_prefix_[prefix].partials;
    p.in_prefix = list.insert(list.end(), key);
  }
  Partial& p = it->second;
  p.chunks.emplace(index, Bytes(chunk.begin(), chunk.end()));
  p.bytes += chunk.size();
  charge(p, peer, cost);
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
