// STUB: replaced by the Quasar pubsub implementation (issue 5).
#include "storjnet/pubsub.h"

namespace storjnet {
struct Pubsub::Impl {};
Pubsub::Pubsub(Engine&, Dht&, PubsubConfig) : impl_(std::make_unique<Impl>()) {}
Pubsub::~Pubsub() = default;
bool Pubsub::subscribe(const std::string&) { return false; }
bool Pubsub::unsubscribe(const std::string&) { return false; }
std::vector<std::string> Pubsub::subscriptions() const { return {}; }
bool Pubsub::publish(const std::string&, std::string) { return false; }
std::vector<std::string> Pubsub::take_events(const std::string&) { return {}; }
}  // namespace storjnet
