// STUB: being replaced by the Kademlia implementation (issue 3).
#include "storjnet/dht.h"

#include "engine/engine.h"

namespace storjnet {
struct Dht::Impl {
  Engine& engine;
  DhtConfig config;
  std::unique_ptr<DhtStorage> storage;
};
NodeId dht_key(std::string_view k) { return NodeId::hash_of(as_bytes(k)); }
Dht::Dht(Engine& e, DhtConfig c, std::unique_ptr<DhtStorage> s) : impl_(new Impl{e, c, std::move(s)}) {}
Dht::~Dht() = default;
void Dht::bootstrap(const std::vector<Endpoint>&, std::function<void(bool)> cb) { cb(false); }
void Dht::put(std::string_view, ByteView, std::function<void(const PutResult&)> cb) { cb(PutResult{}); }
void Dht::get(std::string_view, std::function<void(GetResult)> cb) { cb(GetResult{}); }
void Dht::find(const NodeId&, std::function<void(std::optional<Endpoint>)> cb) { cb(std::nullopt); }
void Dht::find_contact(const NodeId&, std::function<void(std::optional<Contact>)> cb) { cb(std::nullopt); }
void Dht::stun(std::function<void(std::optional<Endpoint>)> cb) { cb(std::nullopt); }
std::vector<Contact> Dht::peers() const { return {}; }
std::vector<Contact> Dht::closest_known(const NodeId&, size_t) const { return {}; }
const NodeId& Dht::id() const { return impl_->engine.id(); }
DhtStats Dht::stats() const { return {}; }
const DhtConfig& Dht::config() const { return impl_->config; }
void Dht::flush() {}
}  // namespace storjnet
