// OracleTopology: Kademlia-shaped routing tables built from a global view of a network (tests and benches).
//
// For every node and every prefix length b, up to k contacts drawn (seeded) from the nodes that share
// exactly b leading bits with it: the k-bucket structure a converged Kademlia routing table has. It lets
// pubsub be measured apart from how well the DHT has converged. Dead nodes stay in the tables (not noticed).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/pubsub.h"

namespace storjnet::pubsub {

class OracleTopology {
 public:
  OracleTopology(std::vector<Contact> nodes, size_t k, uint64_t seed);
  // The table of node i (index into the constructor's vector).
  std::vector<Contact> peers(size_t i) const;
  std::vector<Contact> closest_known(size_t i, const NodeId& target, size_t n) const;
  // The n nodes closest to target of the whole network (what a converged lookup finds).
  std::vector<Contact> closest_in_network(const NodeId& target, size_t n) const;
  // A PubsubTopology for node i; the oracle must outlive it.
  PubsubTopology for_node(size_t i) const;
  size_t table_size(size_t i) const { return tables_[i].size(); }

 private:
  std::vector<Contact> nodes_;
  std::vector<std::vector<uint32_t>> tables_;
};

}  // namespace storjnet::pubsub
