// STUB: replaced by the messages implementation (issue 4).
#include "storjnet/messages.h"

namespace storjnet {
struct Messages::Impl {};
Messages::Messages(Engine&, Dht&, MessagesConfig) : impl_(std::make_unique<Impl>()) {}
Messages::~Messages() = default;
void Messages::send(const NodeId&, std::string, std::function<void(bool)> cb) { cb(false); }
std::map<NodeId, std::vector<std::string>> Messages::take_all() { return {}; }
size_t Messages::queued() const { return 0; }
}  // namespace storjnet
