// Simulator: many nodes in one process on a virtual clock and a virtual network.
//
// Runs the same Node code as the real driver. Everything random (identities, node randomness, link latency,
// jitter, loss, duplication) comes from one seed, and events are processed in (time, sequence) order, so a
// seed gives the same run bit for bit; trace_hash() summarises every delivered datagram to prove it.
// Node i has address 10.a.b.c:4000 where a.b.c is i in base 256 (and fd00::a:b:c port 4000 when given IPv6:
// set_families). Nodes may sit behind simulated NAT routers
// (add_router, put_behind): router r has public address 172.(16 + r / 65536).(r / 256 % 256).(r % 256).
// With SimConfig::conns.enabled, nodes also have byte connections for the streams' TCP fast path
// (src/sim/sim_conn.h), in the same virtual time and folded into the same trace hash.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/dht_storage.h"
#include "storjnet/node.h"

namespace storjnet {

struct LinkModel {
  // Each pair of nodes gets a fixed one-way base latency, uniform in [latency_min, latency_max].
  Duration latency_min = 5ms, latency_max = 45ms;
  Duration jitter = 0ms;  // extra delay per datagram, uniform in [0, jitter]: reorders datagrams
  double loss = 0;        // probability a datagram is lost
  double duplicate = 0;   // probability a datagram is delivered twice
};

// A home router between the nodes behind it and everyone else, in RFC 4787 terms (src/sim/nat.h).
struct NatModel {
  enum class Type : uint8_t {
    kFullCone,        // one public port per inside endpoint; anyone may send through it
    kRestrictedCone,  // one public port per inside endpoint; only addresses the node sent to may answer
    kPortRestricted,  // one public port per inside endpoint; only (address, port) pairs it sent to
    kSymmetric,       // a random public port per destination; only that destination may answer
  };
  Type type = Type::kPortRestricted;
  Duration mapping_timeout = std::chrono::seconds(60);  // a mapping unused this long (either way) is forgotten
  bool hairpin = false;  // nodes behind it reach each other at its public address
};

// Byte connections for the streams' fast path (the simulated ConnProvider, src/sim/sim_conn.h). Off by
// default: without it every simulated stream uses datagrams and runs keep the traces they had. Each direction
// of a connection is an ordered, reliable byte pipe: segments of at most `segment` bytes leave at `bandwidth`,
// arrive after the pair's base latency (plus the link's jitter, never overtaking), with at most `window`
// bytes sent and not yet read by the peer (the socket buffers). A connection follows the network's rules:
// connects fail to dead, unrouted (a NATed node's address), refusing or partitioned nodes; a segment sent or
// arriving across a partition resets the connection after cut_timeout; the link's loss delays a segment by
// rto per loss and resets the connection past max_losses in a row; a segment reaching a live node that no
// longer has its end (restarted) is answered with a reset; a dead node's ends are a black hole.
struct ConnModel {
  bool enabled = false;
  uint64_t bandwidth = 12'500'000;       // bytes per second per direction (100 Mbit/s)
  size_t segment = 64 * 1024;            // bytes per delivery event, at most
  size_t window = 4 * 1024 * 1024;       // bytes in flight or unread, per direction
  size_t high_water = 4 * 1024 * 1024;   // a node stops reading a connection whose send queue passes this,
                                         // until it is half that (RealDriver::Options::conn_high_water)
  Duration connect_timeout = 3s;         // a connect nobody answers fails after this
  Duration rto = 200ms;                  // a lost segment arrives this much later, for each loss
  int max_losses = 5;                    // a segment lost more often than this in a row resets the connection
  Duration cut_timeout = 1s;             // a partition resets a connection this long after it cut a segment
};

struct SimConfig {
  uint64_t seed = 1;
  LinkModel link;
  NodeConfig node;
  ConnModel conns;
};

struct SimStats {
  uint64_t sent = 0, delivered = 0, lost = 0, duplicated = 0, partitioned = 0, to_dead = 0, unroutable = 0;
  uint64_t nat_filtered = 0;  // datagrams a router did not let in: no live mapping, filtered, no free port
  // Datagrams sent with a low TTL (Environment::send_with_ttl below 16): they cross the sender's router (which
  // maps and filters as for any datagram) and go no further.
  uint64_t ttl_expired = 0;
  uint64_t events = 0;
  // Byte connections (ConnModel): established, failed to connect, reset (partition, loss, restart, a fault),
  // closed by one end (a FIN reached the other), and the stream bytes and segments they delivered.
  uint64_t conns_opened = 0, conns_failed = 0, conns_reset = 0, conns_closed = 0;
  uint64_t conn_bytes = 0, conn_segments = 0;
};

class Simulator {
 public:
  explicit Simulator(SimConfig config = {});
  ~Simulator();

  // Adds a node (identity drawn from the seed); returns its index.
  size_t add_node();
  size_t add_node(const NodeConfig& config);
  // Adds a node with a chosen identity (an attacker that placed its id; the adversary simulation). It must
  // solve config.dht.id_puzzle_bits, else the Node refuses to start (std::invalid_argument).
  size_t add_node(const NodeConfig& config, const Identity& identity);
  size_t size() const;
  Node& node(size_t i);
  Endpoint endpoint(size_t i) const;  // its IPv4 address, or its IPv6 one when it has no IPv4
  std::optional<Endpoint> endpoint(size_t i, Endpoint::Family f) const;  // nullopt: no socket of family f
  Contact contact(size_t i) const;    // both addresses of a dual-stack node (IPv4 the endpoint, IPv6 the alt)
  // Address families (kFamilyV4 | kFamilyV6 bits) node i has sockets of; every node has IPv4 only until set.
  // Set before the node talks. Its IPv6 address is fd00::a:b:c port 4000 (a.b.c = i in base 256); IPv6
  // traffic crosses no router (no IPv6 NAT is modelled), and a datagram to a family the sender or the
  // receiver lacks is unroutable.
  void set_families(size_t i, uint8_t families);
  uint8_t families(size_t i) const;
  // Index of the node at `ep`, or -1.
  long index_of(const Endpoint& ep) const;

  TimePoint now() const;
  // Processes events until virtual time now + d.
  void run_for(Duration d);
  // Processes events until pred() holds (checked after each event) or `limit` of virtual time passes.
  bool run_until(const std::function<bool()>& pred, Duration limit);

  // Stops a node: it no longer receives, sends or wakes. Its state is kept for inspection.
  void kill(size_t i);
  bool alive(size_t i) const;
  // Replaces node i by a fresh Node with the same identity and address (a restart that lost memory).
  void restart(size_t i, const NodeConfig& config);
  // The same, on `storage` (a restart that kept its disk).
  void restart(size_t i, const NodeConfig& config, std::unique_ptr<DhtStorage> storage);

  // --- hostile traffic ---
  // Datagrams node i sends from now on arrive with source `as` (a forged source address); nullopt: its own.
  void spoof(size_t i, std::optional<Endpoint> as);
  // Delivers `data` to node `to` after `delay`, as if sent from `from` (any address, forged or not).
  void inject(const Endpoint& from, size_t to, Bytes data, Duration delay = 1ms);
  // Sees every datagram a node sends (before loss or partition): source node, destination, size.
  void set_send_tap(std::function<void(size_t from, const Endpoint& to, size_t bytes)> tap);
  // Steps node i's wall clock (its Environment::unix_us) by `delta`; negative goes back in time.
  void step_wall_clock(size_t i, std::chrono::microseconds delta);
  // side[i] names node i's side; datagrams between different sides are dropped. Empty vector heals.
  void partition(std::vector<uint8_t> side);
  void heal() { partition({}); }
  void set_link(const LinkModel& link);

  // --- byte connections (ConnModel::enabled; otherwise these do nothing and return 0) ---
  // Node i's TCP port refuses connections from now on (a firewall), or accepts them again.
  void refuse_conns(size_t i, bool refuse = true);
  // Resets every connection of node i (a middlebox dropping its state): both ends learn it, node i at
  // once, its peers after the pair's latency. Returns how many connections were reset.
  size_t reset_conns(size_t i);
  // Connections of node i that are open or being set up.
  size_t conns(size_t i) const;
  // A stranger at `from` connects to node `to` and, once accepted, sends `data` (hostile input); what the
  // node answers is discarded. Arrives after `delay` each way. Returns the stranger's connection id.
  uint64_t inject_conn(const Endpoint& from, size_t to, Bytes data, Duration delay = 1ms);

  // --- NATs ---
  // Adds a router; returns its index. A node behind a router can open fresh ports (Environment::
  // open_fresh_ports: at most 256 per node, 16 groups; each its own mapping at the router), and a datagram it
  // sends with a TTL below 16 (Environment::send_with_ttl) crosses its router, mapping and filtering as any
  // other, and goes no further (SimStats::ttl_expired). Open nodes have no fresh ports.
  size_t add_router(const NatModel& model);
  // Puts node i behind router r from now on (nullopt: back on the open network). Its own address is then
  // private: only nodes behind the same router reach it there; others only through the router's mappings.
  void put_behind(size_t i, std::optional<size_t> router);
  std::optional<size_t> router_of(size_t i) const;
  Endpoint router_address(size_t r) const;  // port 0
  size_t nat_mappings(size_t r) const;      // live or not yet swept
  // Whether a datagram with source `from` as it arrives (an open node's address, a router's public address
  // and port, or an unused address for a stranger) to `to` would reach a node now, ignoring loss and
  // partitions; changes no mapping.
  bool reachable(const Endpoint& from, const Endpoint& to) const;

  uint64_t trace_hash() const;
  const SimStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace storjnet
