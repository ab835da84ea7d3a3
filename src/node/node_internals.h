// NodeInternals: the protocol core behind a Node, for in-tree tests, benches and fuzzers that drive or
// inspect the engine directly (attacks with hand-made requests, drop counters by enum). Not part of the
// public API: applications read Node::stats().
#pragma once
#include "engine/engine.h"
#include "storjnet/node.h"

namespace storjnet {

struct NodeInternals {
  static Engine& engine(Node& n) { return *n.engine_; }
};

}  // namespace storjnet
