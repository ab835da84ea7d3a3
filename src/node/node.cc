#include "storjnet/node.h"

#include "engine/engine.h"
#include "engine/methods.h"
#include "wire/drop_reason.h"

namespace storjnet {

Node::Node(Environment& env, Identity identity, NodeConfig config, std::unique_ptr<DhtStorage> storage)
    : engine_(std::make_unique<Engine>(env, std::move(identity), config.engine)) {
  if (!storage) storage = make_memory_storage();
  // The epoch high-water mark lives in the node's storage, which the DHT owns and outlives every session the
  // engine creates (the engine creates none while the node is destroyed).
  DhtStorage* disk = storage.get();
  engine_->set_epoch_floor(disk->load_epoch_floor(), [disk](uint64_t floor) { disk->save_epoch_floor(floor); });
  dht_ = std::make_unique<Dht>(*engine_, config.dht, std::move(storage));
  messages_ = std::make_unique<Messages>(*engine_, *dht_, config.messages);
  streams_ = std::make_unique<Streams>(*engine_, *dht_, config.streams);
  pubsub_ = std::make_unique<Pubsub>(*engine_, *dht_, config.pubsub);
}

Node::~Node() = default;

void Node::on_datagram(const Endpoint& from, ByteView data) { engine_->on_datagram(from, data); }
void Node::on_wake() { engine_->on_wake(); }
const NodeId& Node::id() const { return engine_->id(); }
const PublicKey& Node::public_key() const { return engine_->identity().public_key(); }

void Node::ping(const Contact& peer, std::function<void(std::optional<NodeId>)> done) {
  engine_->ping(peer, std::move(done));
}

void Node::ping_address(const Endpoint& ep, std::function<void(std::optional<Contact>)> done) {
  engine_->hello(ep, [this, done = std::move(done)](std::optional<Contact> c) {
    if (!c) return done(std::nullopt);
    engine_->ping(*c, [c = *c, done](std::optional<NodeId> id) { done(id ? std::optional(c) : std::nullopt); });
  });
}

void Node::stun(const Contact& peer, std::function<void(std::optional<Endpoint>)> done) {
  engine_->stun(peer, std::move(done));
}

NodeStats Node::stats() const {
  const EngineStats& es = engine_->stats();
  NodeStats s;
  s.datagrams_in = es.datagrams_in;
  s.datagrams_out = es.datagrams_out;
  s.bytes_in = es.bytes_in;
  s.bytes_out = es.bytes_out;
  s.retransmits = es.retransmits;
  s.timeouts = es.timeouts;
  s.sessions_created = es.sessions_created;
  s.sessions_evicted = es.sessions_evicted;
  s.sessions = engine_->session_count();
  s.dormant_sessions = engine_->dormant_sessions();
  s.pending_rpcs = engine_->pending_rpcs();
  s.reassembly_bytes = engine_->reassembly_bytes();
  for (size_t m = 0; m < kMethodSlots; ++m) {
    auto name = method_name(static_cast<uint8_t>(m));
    if (name == "unknown" && !es.requests_out[m] && !es.requests_in[m]) continue;
    s.requests.push_back({name, es.requests_in[m], es.requests_out[m]});
  }
  const DropCounters& d = engine_->drops();
  for (size_t r = 0; r < kDropReasonNames.size(); ++r) s.drops.emplace_back(kDropReasonNames[r], d.by_reason[r]);
  return s;
}

std::vector<RelayedPath> Node::relayed_paths() const {
  std::vector<RelayedPath> out;
  for (const auto& [key, relay] : engine_->via_paths()) out.push_back({Identity::id_of(key), relay});
  return out;
}

}  // namespace storjnet
