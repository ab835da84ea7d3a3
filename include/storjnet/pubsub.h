// Pubsub: topic publish/subscribe routed by Quasar (Wong & Guha, IPTPS 2008): attenuated Bloom filters
// exchanged with routing-table neighbours; events follow matching filters, else random walks, bounded by
// a TTL, and are delivered at most once per node.
//
// Topics are strings up to kMaxTopic bytes; events are JSON values carried as JSON text up to
// kMaxEventJson bytes.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/environment.h"

namespace storjnet {

class Engine;
class Dht;

constexpr size_t kMaxTopic = 256;
constexpr size_t kMaxEventJson = 8 * 1024;

struct PubsubConfig {
  size_t filter_bits = 8192;       // Bloom filter size per level
  size_t filter_hashes = 4;        // hash functions
  size_t depth = 3;                // attenuation levels
  int ttl = 64;                    // hops an event may travel
  size_t max_events_per_topic = 8192;
  Duration refresh = 60s;          // filters pushed to neighbours at least this often
  Duration update_delay = 50ms;    // changes are coalesced for this long before pushing
};

class Pubsub {
 public:
  Pubsub(Engine& engine, Dht& dht, PubsubConfig config);
  ~Pubsub();

  // Return false (and do nothing) when the topic or event is too large.
  bool subscribe(const std::string& topic);
  bool unsubscribe(const std::string& topic);
  std::vector<std::string> subscriptions() const;
  bool publish(const std::string& topic, std::string event_json);
  // Events received for the topic since the last call, each once, in arrival order; then emptied.
  std::vector<std::string> take_events(const std::string& topic);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace storjnet
