// STUB: the pubsub issue implements the listen phase here.
#include "dht_listen.h"

namespace storjnet::bench {
nlohmann::json run_listen_phase(const ListenPhaseArgs&) { return nullptr; }
}  // namespace storjnet::bench
