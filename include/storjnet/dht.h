// Dht: Kademlia over the engine. 160-bit ids, k-buckets, iterative lookups with alpha requests in flight,
// replicated storage with republish and expiry.
//
// Keys: a user key (any string) maps to the DHT key BLAKE2b-160(key). Values: opaque bytes, at most
// kMaxValueSize. "Newer" is decided by a version (publisher's wall clock in microseconds when put) and,
// on a tie, by the larger BLAKE2b-256 of the value, so every replica converges on the same value.
// All methods run on the driver's thread; callbacks run there too, exactly once.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/dht_storage.h"
#include "storjnet/environment.h"

namespace storjnet {

class Engine;

constexpr size_t kMaxValueSize = 64 * 1024;

struct DhtConfig {
  size_t k = 20;                           // bucket size and replication factor
  size_t alpha = 3;                        // lookup parallelism
  Duration rpc_timeout = 1s;               // per lookup RPC, retries included
  int rpc_attempts = 2;
  int max_failures = 3;                    // consecutive timeouts before a contact is evicted
  Duration bucket_refresh = 1h;            // an idle bucket is refreshed by a lookup of a random id in it
  Duration quiet_after = 15min;            // a full bucket pings its oldest entry for a newcomer only past this
  Duration republish_interval = 1h;        // holders push what they hold to the current k closest
  Duration original_republish = 24h;       // the publisher puts its own values again
  Duration expire_after = 25h;             // a value not republished for this long is dropped
  Duration find_timeout = 5s;              // dht_find gives up after this
  size_t max_values = 1'000'000;           // storage bound: count
  size_t max_bytes = 64 * 1024 * 1024;     // storage bound: bytes
  size_t max_bytes_per_publisher = 4 * 1024 * 1024;  // storage bound per storing peer
  size_t min_value_charge = 256;           // bytes charged per stored value on top of its size (bounds above)
  double store_rate = 200;                 // kademlia_store requests/s accepted from one peer (burst 2x; 0: no limit)
  // --- Sybil resistance: who may enter the routing table (docs/protocol.md sections 1.1 and 5) ---
  // Id puzzle: BLAKE2b-160(network id | node id) must start with this many zero bits (Identity::generate
  // solves it). A network parameter: every node of one network id must use the same value; 0 accepts any id.
  // Contacts failing it are refused wherever they are learned (routing table, find_node answers, pubsub).
  int id_puzzle_bits = 0;
  // Contacts of one public address block (IPv4 /24, IPv6 /48) per bucket and in the whole table; private and
  // loopback addresses are not limited.
  size_t max_per_prefix_bucket = 2;
  size_t max_per_prefix_table = 10;
};

struct LookupStats {
  int rounds = 0;      // longest chain of sequential RPCs
  int rpcs = 0;        // requests sent
  Duration elapsed{};  // from start to completion
};

struct PutResult {
  bool ok = false;
  std::string error;   // set when !ok
  size_t stored_on = 0;  // acknowledgements (the local node counts)
  LookupStats lookup;
};

struct GetResult {
  std::optional<Bytes> value;  // nullopt: no node has it
  bool local = false;          // served from the local store
  LookupStats lookup;
};

struct DhtStats {
  uint64_t lookups = 0, lookup_rpcs = 0, puts = 0, gets = 0, gets_found = 0;
  uint64_t stores_accepted = 0, stores_rejected = 0, contacts_evicted = 0;
  uint64_t stores_rate_limited = 0, storage_write_failures = 0;
  uint64_t contacts_refused_puzzle = 0, contacts_refused_prefix = 0;  // routing table and find_node answers
  size_t routing_contacts = 0, stored_values = 0, stored_bytes = 0;
  std::vector<LookupStats> recent;  // the last lookups (bounded), for histograms
};

class Dht {
 public:
  // `storage` keeps values and the routing table; nullptr means in memory.
  Dht(Engine& engine, DhtConfig config, std::unique_ptr<DhtStorage> storage);
  ~Dht();

  // Joins the network through `seeds` (addresses only): learns their keys, then looks up our own id.
  // Also re-contacts the routing table saved in storage, so a restarted node rejoins without seeds.
  // cb(true) once at least one peer answered.
  void bootstrap(const std::vector<Endpoint>& seeds, std::function<void(bool)> cb);

  // dht_put. ok once at least one of the k closest found acknowledged (the local node counts when it is
  // among them or alone). A value over kMaxValueSize fails with a clear error.
  void put(std::string_view key, ByteView value, std::function<void(const PutResult&)> cb);
  // dht_get: local copy if held, else iterative find_value; nullopt when no node has it. After a remote hit
  // the value is cached on the closest node seen that lacked it.
  void get(std::string_view key, std::function<void(GetResult)> cb);
  // dht_find: the node's address if it answered during the lookup, else nullopt, within find_timeout.
  // With our own id: our external address as stun gives it.
  void find(const NodeId& id, std::function<void(std::optional<Endpoint>)> cb);
  // Like find, but the whole contact (key included): used by messages and streams.
  void find_contact(const NodeId& id, std::function<void(std::optional<Contact>)> cb);
  // dht_stun: our address as a random neighbour sees it (nullopt without neighbours).
  void stun(std::function<void(std::optional<Endpoint>)> cb);
  // dht_peers: the routing table.
  std::vector<Contact> peers() const;
  // Up to n contacts from the routing table, closest to target first.
  std::vector<Contact> closest_known(const NodeId& target, size_t n) const;
  const NodeId& id() const;
  DhtStats stats() const;
  const DhtConfig& config() const;
  // Flushes storage (values and routing table); called on clean shutdown.
  void flush();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The DHT key of a user key: BLAKE2b-160.
NodeId dht_key(std::string_view user_key);

}  // namespace storjnet
