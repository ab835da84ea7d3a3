#include "testing/oracle_topology.h"

#include <algorithm>
#include <numeric>

#include "sim/rng.h"

namespace storjnet::pubsub {

OracleTopology::OracleTopology(std::vector<Contact> nodes, size_t k, uint64_t seed)
    : nodes_(std::move(nodes)), tables_(nodes_.size()) {
  std::vector<uint32_t> order(nodes_.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return nodes_[a].id < nodes_[b].id; });
  sim::Rng rng(seed ^ 0x6f7261636c65ull);
  for (size_t pos = 0; pos < order.size(); ++pos) {
    const NodeId& me = nodes_[order[pos]].id;
    auto& table = tables_[order[pos]];
    size_t lo = 0, hi = order.size();  // nodes sharing the first b bits with me: order[lo, hi)
    for (size_t b = 0; b < NodeId::kBits && hi - lo > 1; ++b) {
      // Within [lo, hi) the nodes with bit b = 0 come first.
      size_t mid = std::partition_point(order.begin() + lo, order.begin() + hi,
                                        [&](uint32_t x) { return !nodes_[x].id.bit(b); }) -
                   order.begin();
      size_t slo, shi;  // the sibling subtree: the bucket for this prefix length
      if (me.bit(b)) {
        slo = lo, shi = mid, lo = mid;
      } else {
        slo = mid, shi = hi, hi = mid;
      }
      size_t n = shi - slo;
      if (n <= k) {
        for (size_t j = slo; j < shi; ++j) table.push_back(order[j]);
      } else {
        std::vector<uint32_t> pool(order.begin() + slo, order.begin() + shi);
        for (size_t j = 0; j < k; ++j) {
          size_t r = j + rng.below(pool.size() - j);
          std::swap(pool[j], pool[r]);
          table.push_back(pool[j]);
        }
      }
    }
    std::sort(table.begin(), table.end());
  }
}

std::vector<Contact> OracleTopology::peers(size_t i) const {
  std::vector<Contact> out;
  out.reserve(tables_[i].size());
  for (auto j : tables_[i]) out.push_back(nodes_[j]);
  return out;
}

namespace {
// The n of `candidates` (indices into `nodes`) closest to target, closest first.
std::vector<Contact> closest_of(const std::vector<Contact>& nodes, std::vector<uint32_t> candidates,
                                const NodeId& target, size_t n) {
  n = std::min(n, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + n, candidates.end(),
                    [&](uint32_t a, uint32_t b) { return closer(target, nodes[a].id, nodes[b].id); });
  std::vector<Contact> out;
  for (size_t j = 0; j < n; ++j) out.push_back(nodes[candidates[j]]);
  return out;
}
}  // namespace

std::vector<Contact> OracleTopology::closest_known(size_t i, const NodeId& target, size_t n) const {
  return closest_of(nodes_, tables_[i], target, n);
}

std::vector<Contact> OracleTopology::closest_in_network(const NodeId& target, size_t n) const {
  std::vector<uint32_t> all(nodes_.size());
  std::iota(all.begin(), all.end(), 0);
  return closest_of(nodes_, std::move(all), target, n);
}

PubsubTopology OracleTopology::for_node(size_t i) const {
  return {[this, i] { return peers(i); },
          [this, i](const NodeId& target, size_t n) { return closest_known(i, target, n); },
          [this](const NodeId& target, size_t n) { return closest_in_network(target, n); }};
}

}  // namespace storjnet::pubsub
