#include "storjnet/node.h"

#include "engine/engine.h"

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

}  // namespace storjnet
