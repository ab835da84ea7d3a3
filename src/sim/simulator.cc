#include "storjnet/simulator.h"
#include "storjnet/keyed_hash.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>

#include "sim/event_queue.h"
#include "sim/nat.h"
#include "sim/rng.h"
#include "sim/sim_conn.h"

namespace storjnet {

namespace {
constexpr uint16_t kSimPort = 4000;
constexpr uint16_t kFirstFreshPort = 20000;  // fresh ports (Environment::open_fresh_ports) count up from here
constexpr size_t kMaxFreshPorts = 256;       // per node, in all
constexpr size_t kMaxFreshGroups = 16;       // per node
constexpr uint8_t kFarTtl = 16;              // a datagram sent with a lower TTL dies past its sender's router
constexpr uint64_t kUnixBaseUs = 1'800'000'000'000'000ull;  // virtual wall clock origin

constexpr uint32_t kInjected = 0xffffffffu;  // SimEvent::src of a datagram injected by the test
constexpr uint32_t kNoRouter = 0xffffffffu;  // on the open network

using sim::EventKind;

// A digest of one datagram for the trace hash: eight bytes at a time (a byte-wise hash cost more than the
// node's own work on full-size datagrams).
uint64_t digest(ByteView d) {
  uint64_t h = sim::mix64(0x5eed, d.size());
  size_t i = 0;
  for (; i + 8 <= d.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, d.data() + i, 8);
    h = sim::mix64(h, w);
  }
  uint64_t tail = 0;
  if (i < d.size()) std::memcpy(&tail, d.data() + i, d.size() - i);
  return sim::mix64(h, tail);
}
}  // namespace

struct Simulator::Impl final : sim::ConnHost {
  struct SimEnv : Environment {
    Impl* sim;
    uint32_t index;
    sim::Rng rng;
    SimEnv(Impl* s, uint32_t i, uint64_t seed) : sim(s), index(i), rng(seed) {}
    TimePoint now() override { return sim->now_; }
    int64_t clock_step_us = 0;  // Simulator::step_wall_clock
    uint64_t unix_us() override {
      return kUnixBaseUs + static_cast<uint64_t>(
                               std::chrono::duration_cast<std::chrono::microseconds>(sim->now_).count() + clock_step_us);
    }
    void send(const Endpoint& to, ByteView dg) override { sim->send_fanned(index, to, dg); }
    size_t open_fresh_ports(const Endpoint& to, size_t count, Duration life) override {
      return sim->open_fresh(index, to, count, life);
    }
    bool send_with_ttl(const Endpoint& to, ByteView dg, uint8_t ttl) override {
      return sim->send_ttl(index, to, dg, ttl);
    }
    uint8_t families() override { return sim->slots[index].families; }
    // A node behind a router has its own address on the router's LAN (IPv4: no IPv6 NAT is modelled).
    std::optional<Endpoint> lan_endpoint(Endpoint::Family f) override {
      if (!sim->slots[index].router || f != Endpoint::Family::kV4) return std::nullopt;
      return sim->address(index, f);
    }
    void wake_at(TimePoint at) override { sim->wake(index, at); }
    void random(std::span<uint8_t> out) override {
      for (size_t i = 0; i < out.size(); i += 8) {
        uint64_t v = rng.next();
        std::memcpy(out.data() + i, &v, std::min<size_t>(8, out.size() - i));
      }
    }
    ConnListener* listener = nullptr;  // SimConnEnv's
  };
  // A node's environment with byte connections (ConnModel::enabled): the streams find the fast path by
  // dynamic_cast, so without the model a node's environment is a plain SimEnv, as before.
  struct SimConnEnv final : SimEnv, ConnProvider {
    using SimEnv::SimEnv;
    uint64_t conn_connect(const Endpoint& to) override { return sim->conns->connect(index, to); }
    void conn_send(uint64_t c, Bytes b) override { sim->conns->send(index, c, std::move(b)); }
    size_t conn_queued(uint64_t c) const override { return sim->conns->queued(index, c); }
    void conn_close(uint64_t c) override { sim->conns->close(index, c); }
    void set_conn_listener(ConnListener* l) override { listener = l; }
  };
  struct Slot {
    std::unique_ptr<SimEnv> env;
    std::unique_ptr<Node> node;
    PublicKey key{};
    TimePoint wake = TimePoint::max();    // when the node asked to be woken (max: not at all)
    TimePoint queued = TimePoint::max();  // the one wake event that counts, when queued (others are stale)
    bool alive = true;
    std::optional<Endpoint> spoof_as;
    std::optional<uint32_t> router;  // put_behind
    uint8_t families = kFamilyV4;    // set_families
    // Environment::open_fresh_ports: the ports opened towards each destination (behind a router only).
    struct FreshGroup {
      std::vector<uint16_t> ports;
      TimePoint until{};   // unhit ports close then
      uint16_t hit = 0;    // the port a datagram from the destination reached, or 0
      TimePoint last{};    // the hit port's last use
    };
    std::map<Endpoint, FreshGroup> fresh;
    uint16_t next_fresh = kFirstFreshPort;
  };

  SimConfig config;
  sim::Rng net_rng;
  TimePoint now_{0};
  uint64_t trace_ = 0x5eed;
  sim::EventQueue queue;
  sim::SimEvent ev;  // the event being handled (step)
  std::vector<Slot> slots;
  std::vector<Identity> identities;
  std::vector<sim::Nat> routers;
  std::vector<uint8_t> side;
  SimStats stats_;
  std::function<void(size_t, const Endpoint&, size_t)> tap;
  std::unique_ptr<sim::Conns> conns;  // with ConnModel::enabled; outlives the nodes, which close on it

  explicit Impl(SimConfig c) : config(c), net_rng(c.seed ^ 0x6e6574776f726bull) {
    if (c.conns.enabled) conns = std::make_unique<sim::Conns>(*this, c.conns, c.seed ^ 0x636f6e6e73ull);
  }
  // Nodes first, while the slots and connections they close on still exist; as dead nodes, silently.
  ~Impl() override {
    for (auto& s : slots) s.alive = false;
    for (auto& s : slots) s.node.reset();
  }

  // ------------------------------------------------------------ sim::ConnHost
  TimePoint now() const override { return now_; }
  bool alive(uint32_t n) const override { return n < slots.size() && slots[n].alive; }
  ConnListener* listener(uint32_t n) const override { return n < slots.size() ? slots[n].env->listener : nullptr; }
  // TCP through a home router goes out (the acceptor sees the router's address) but never in: no port
  // forwarding is modelled, so a NATed node's address, private or public, takes no connection.
  std::optional<std::pair<uint32_t, Endpoint>> route(uint32_t from, const Endpoint& to) const override {
    long dst = index_of(to);
    auto seen_at = address(from, to.family);
    if (dst < 0 || !seen_at) return std::nullopt;
    Endpoint seen = *seen_at;
    if (to.family == Endpoint::Family::kV6) return std::pair{static_cast<uint32_t>(dst), seen};  // no v6 NAT
    auto out = slots[from].router, in = slots[static_cast<size_t>(dst)].router;
    if (in && in != out) return std::nullopt;
    if (out && !in) seen = Endpoint::v4(routers[*out].public_ip(), static_cast<uint16_t>(1024 + from % 60000));
    return std::pair{static_cast<uint32_t>(dst), seen};
  }
  bool cut(uint32_t a, uint32_t b) const override {
    return !side.empty() && a < side.size() && b < side.size() && side[a] != side[b];
  }
  Duration latency(uint32_t a, uint32_t b) const override { return base_latency(a, b); }
  const LinkModel& link() const override { return config.link; }
  void schedule(TimePoint at, uint64_t token) override {
    queue.push(at, 0, 0, EventKind::kConn, {}, {}, token);
  }
  void trace(uint64_t what, ByteView bytes) override {
    trace_ = sim::mix64(sim::mix64(trace_, static_cast<uint64_t>(now_.count())), what);
    if (!bytes.empty()) trace_ = sim::mix64(trace_, digest(bytes));
  }
  SimStats& stats() override { return stats_; }

  // Node i: IPv4 10.a.b.c:4000, IPv6 fd00::a:b:c (the last three bytes i) port 4000, as its families have them.
  static Endpoint v4_of(size_t i) { return Endpoint::v4(0x0a000000u | static_cast<uint32_t>(i), kSimPort); }
  static Endpoint v6_of(size_t i) {
    Endpoint e;
    e.family = Endpoint::Family::kV6;
    e.addr[0] = 0xfd;
    e.addr[13] = static_cast<uint8_t>(i >> 16);
    e.addr[14] = static_cast<uint8_t>(i >> 8);
    e.addr[15] = static_cast<uint8_t>(i);
    e.port = kSimPort;
    return e;
  }
  std::optional<Endpoint> address(size_t i, Endpoint::Family f) const {
    if (!(family_bit(f) & slots[i].families)) return std::nullopt;
    return f == Endpoint::Family::kV4 ? v4_of(i) : v6_of(i);
  }
  // The address node i is known by: IPv4 when it has it.
  Endpoint endpoint(size_t i) const { return slots[i].families & kFamilyV4 ? v4_of(i) : v6_of(i); }
  long index_of(const Endpoint& ep) const {
    if (ep.port != kSimPort) return -1;
    size_t i;
    if (ep.family == Endpoint::Family::kV4 && ep.addr[0] == 10) {
      i = size_t(ep.addr[1]) << 16 | size_t(ep.addr[2]) << 8 | ep.addr[3];
    } else if (ep.family == Endpoint::Family::kV6 && ep.addr[0] == 0xfd) {
      for (int b = 1; b < 13; ++b)
        if (ep.addr[b]) return -1;
      i = size_t(ep.addr[13]) << 16 | size_t(ep.addr[14]) << 8 | ep.addr[15];
    } else {
      return -1;
    }
    if (i >= slots.size() || !(family_bit(ep.family) & slots[i].families)) return -1;
    return static_cast<long>(i);
  }

  Duration base_latency(uint32_t a, uint32_t b) const {
    auto lo = config.link.latency_min.count(), hi = config.link.latency_max.count();
    if (hi <= lo) return Duration(lo);
    uint64_t h = sim::mix64(config.seed, uint64_t(std::min(a, b)) << 32 | std::max(a, b));
    return Duration(lo + static_cast<int64_t>(h % uint64_t(hi - lo + 1)));
  }

  void push(TimePoint at, uint32_t dst, uint32_t src, EventKind k, ByteView data = {}, const Endpoint& from = {}) {
    queue.push(at, dst, src, k, data, from);
  }

  static uint32_t router_ip(size_t r) {
    return 0xac100000u + static_cast<uint32_t>(r);  // 172.16.0.0/12
  }
  long router_index(const Endpoint& ep) const {
    if (ep.family != Endpoint::Family::kV4 || ep.addr[0] != 172 || (ep.addr[1] & 0xf0) != 16) return -1;
    size_t r = size_t(ep.addr[1] & 0x0f) << 16 | size_t(ep.addr[2]) << 8 | ep.addr[3];
    return r < routers.size() ? static_cast<long>(r) : -1;
  }

  // Where a datagram from node src to `to` goes, and the source its receiver sees; -1 when nowhere.
  // Without routers this is index_of(to) and src's own address (or its forged one).
  // `src_port`: the sender's local port (a fresh one, else kSimPort). `fresh_hit`: set to the receiver's fresh
  // port the datagram reaches (0: its node port).
  long route(uint32_t src, const Endpoint& to, Endpoint& from, uint16_t src_port, uint16_t& fresh_hit) {
    const Slot& s = slots[src];
    auto own = address(src, to.family);
    if (!own) {  // no socket of that family
      if (!routers.empty()) ++stats_.unroutable;
      return -1;
    }
    own->port = src_port;
    from = s.spoof_as ? *s.spoof_as : *own;
    long dst = index_of(to);
    if (routers.empty() || to.family == Endpoint::Family::kV6) {  // no IPv6 NAT is modelled
      if (dst >= 0 || routers.empty()) return dst;
      ++stats_.unroutable;
      return -1;
    }
    auto out = s.router;
    if (dst >= 0) {                                       // a node's own address
      auto in = slots[static_cast<size_t>(dst)].router;
      if (in == out) return dst;                          // the same network (the open one, or one home's)
      if (in) {
        ++stats_.unroutable;                               // another home's private address
        return -1;
      }
    } else if (router_index(to) < 0) {
      ++stats_.unroutable;
      return -1;
    }
    if (out && !s.spoof_as) {                             // leaves its home through its router
      auto pub = routers[*out].outbound(*own, to, now_, net_rng);
      if (!pub) {
        ++stats_.nat_filtered;
        return -1;
      }
      from = *pub;
    }
    if (dst >= 0) return dst;
    auto r = static_cast<size_t>(router_index(to));
    if (out && *out == r && !routers[r].model().hairpin) {
      ++stats_.nat_filtered;
      return -1;
    }
    auto inside = routers[r].inbound(from, to.port, now_);
    if (!inside) {
      ++stats_.nat_filtered;
      return -1;
    }
    if (inside->port == kSimPort) return index_of(*inside);
    // A fresh port: taken only from the destination it was opened for, while open.
    Endpoint node_ep = *inside;
    node_ep.port = kSimPort;
    long owner = index_of(node_ep);
    FreshGroup* g = owner < 0 ? nullptr : fresh_group(static_cast<uint32_t>(owner), from);
    if (!g || !(g->hit ? g->hit == inside->port
                       : std::find(g->ports.begin(), g->ports.end(), inside->port) != g->ports.end())) {
      ++stats_.nat_filtered;
      return -1;
    }
    fresh_hit = inside->port;
    return owner;
  }

  using FreshGroup = Slot::FreshGroup;
  // Node i's live group of fresh ports towards `to`, or nullptr (an expired one is closed here).
  FreshGroup* fresh_group(uint32_t i, const Endpoint& to) {
    auto& groups = slots[i].fresh;
    auto it = groups.find(to);
    if (it == groups.end()) return nullptr;
    const FreshGroup& g = it->second;
    if (g.hit ? now_ - g.last >= Environment::kFreshPortIdle : now_ >= g.until) {
      groups.erase(it);
      return nullptr;
    }
    return &it->second;
  }
  size_t open_fresh(uint32_t i, const Endpoint& to, size_t count, Duration life) {
    Slot& s = slots[i];
    if (!s.router || to.family != Endpoint::Family::kV4 || fresh_group(i, to)) return 0;
    size_t open = 0;
    for (auto it = s.fresh.begin(); it != s.fresh.end();) {  // close the expired ones, count the rest
      const FreshGroup& g = it->second;
      if (g.hit ? now_ - g.last >= Environment::kFreshPortIdle : now_ >= g.until) {
        it = s.fresh.erase(it);
      } else {
        open += g.hit ? 1 : g.ports.size();
        ++it;
      }
    }
    if (s.fresh.size() >= kMaxFreshGroups) return 0;
    count = std::min(count, kMaxFreshPorts - std::min(open, kMaxFreshPorts));
    if (count == 0) return 0;
    FreshGroup g;
    g.until = now_ + life;
    for (size_t k = 0; k < count; ++k) {
      if (s.next_fresh < kFirstFreshPort) s.next_fresh = kFirstFreshPort;  // wrapped
      g.ports.push_back(s.next_fresh++);
    }
    s.fresh.emplace(to, std::move(g));
    return count;
  }
  // Node i's send: from its fresh ports towards `to` when it has some (every unhit one, or the hit one).
  void send_fanned(uint32_t i, const Endpoint& to, ByteView dg) {
    FreshGroup* g = slots[i].fresh.empty() ? nullptr : fresh_group(i, to);
    if (!g) return send(i, to, dg);
    if (g->hit) {
      g->last = now_;
      return send(i, to, dg, g->hit);
    }
    auto ports = g->ports;  // send() may close groups
    for (uint16_t p : ports) send(i, to, dg, p);
  }
  // A low TTL (< kFarTtl) crosses the sender's router (its mapping and filter see it) and goes no further.
  bool send_ttl(uint32_t i, const Endpoint& to, ByteView dg, uint8_t ttl) {
    if (ttl >= kFarTtl) {
      send(i, to, dg);
      return true;
    }
    Slot& s = slots[i];
    if (!s.alive) return true;
    std::vector<uint16_t> ports{kSimPort};
    if (FreshGroup* g = s.fresh.empty() ? nullptr : fresh_group(i, to)) ports = g->hit ? std::vector{g->hit} : g->ports;
    auto own = address(i, to.family);
    for (uint16_t port : ports) {
      ++stats_.sent;
      ++stats_.ttl_expired;
      if (tap) tap(i, to, dg.size());
      if (!s.router || !own || to.family != Endpoint::Family::kV4 || index_of(to) >= 0) continue;
      Endpoint inside = *own;
      inside.port = port;
      routers[*s.router].outbound(inside, to, now_, net_rng);
    }
    return true;
  }

  void send(uint32_t src, const Endpoint& to, ByteView dg, uint16_t src_port = kSimPort) {
    if (!slots[src].alive) return;
    ++stats_.sent;
    if (tap) tap(src, to, dg.size());
    Endpoint from;
    uint16_t fresh_hit = 0;
    long dst = route(src, to, from, src_port, fresh_hit);
    if (dst < 0) {
      if (routers.empty()) ++stats_.unroutable;
      return;
    }
    if (!side.empty() && side[src] != side[dst]) {
      ++stats_.partitioned;
      return;
    }
    auto& link = config.link;
    if (link.loss > 0 && net_rng.uniform() < link.loss) {
      ++stats_.lost;
      return;
    }
    if (fresh_hit) {  // it reached a fresh port: that port is its receiver's way to the sender from now on
      FreshGroup* g = fresh_group(static_cast<uint32_t>(dst), from);
      g->hit = fresh_hit;
      g->last = now_;
      g->ports = {fresh_hit};
    }
    int copies = (link.duplicate > 0 && net_rng.uniform() < link.duplicate) ? 2 : 1;
    if (copies == 2) ++stats_.duplicated;
    Duration base = base_latency(src, static_cast<uint32_t>(dst));
    for (int c = 0; c < copies; ++c) {
      Duration d = base;
      if (link.jitter.count() > 0) d += Duration(static_cast<int64_t>(net_rng.below(link.jitter.count() + 1)));
      push(now_ + d, static_cast<uint32_t>(dst), src, EventKind::kDeliver, dg, from);
    }
  }

  // A node's wake time moves often (each request's timer, each answer cancelling it). A later time queues
  // nothing: the queued event comes first and queues the new time then. So the queue holds few stale wakes.
  void wake(uint32_t i, TimePoint at) {
    if (at < now_) at = now_;
    Slot& s = slots[i];
    s.wake = at;
    if (s.queued <= at) return;
    s.queued = at;
    push(at, i, i, EventKind::kWake, {});
  }

  bool step(TimePoint limit) {
    if (queue.empty() || queue.next_at() > limit) return false;
    const TimePoint at = queue.pop(ev);
    now_ = at;
    ++stats_.events;
    if (ev.kind == EventKind::kConn) {
      conns->fire(ev.token);
      return true;
    }
    Slot& s = slots[ev.dst];
    if (ev.kind == EventKind::kWake) {
      if (s.queued != at) return true;  // stale: an earlier time was queued after it
      s.queued = TimePoint::max();
      if (!s.alive || s.wake == TimePoint::max()) return true;
      if (s.wake > at) {  // moved later since this was queued
        s.queued = s.wake;
        push(s.wake, ev.dst, ev.dst, EventKind::kWake, {});
        return true;
      }
      s.wake = TimePoint::max();
      s.node->on_wake();
      return true;
    }
    if (!s.alive) {
      ++stats_.to_dead;
      return true;
    }
    ++stats_.delivered;
    uint64_t h = sim::mix64(trace_, static_cast<uint64_t>(at.count()));
    h = sim::mix64(h, uint64_t(ev.src) << 32 | ev.dst);
    trace_ = sim::mix64(h, digest(ev.data));
    s.node->on_datagram(ev.from, ev.data);
    return true;
  }

  size_t add(const NodeConfig& cfg, const Identity* chosen = nullptr) {
    uint32_t i = static_cast<uint32_t>(slots.size());
    if (i >= (1u << 24)) throw std::length_error("simulator holds at most 2^24 nodes");
    uint64_t node_seed = sim::mix64(config.seed, i + 1);
    if (chosen) {
      identities.push_back(*chosen);
    } else {
      sim::Rng key_rng(node_seed ^ 0x6b6579ull);
      std::array<uint8_t, 32> seed;
      for (size_t k = 0; k < 32; k += 8) {
        uint64_t v = key_rng.next();
        std::memcpy(seed.data() + k, &v, 8);
      }
      // Solves the network's id puzzle when one is configured (identical to from_seed when it is 0).
      identities.push_back(Identity::from_seed_solving(seed, cfg.engine.network_id, cfg.dht.id_puzzle_bits));
    }
    Slot slot;
    if (conns) slot.env = std::make_unique<SimConnEnv>(this, i, node_seed);
    else slot.env = std::make_unique<SimEnv>(this, i, node_seed);
    slot.key = identities.back().public_key();
    slots.push_back(std::move(slot));
    slots.back().node = std::make_unique<Node>(*slots.back().env, identities.back(), cfg);
    if (!side.empty()) side.push_back(0);
    return i;
  }
};

Simulator::Simulator(SimConfig config) {
  // Hash-table iteration order must replay by seed (keyed_hash.h); a no-op when a key is already in use.
  pin_keyed_hash_for_simulation();
  impl_ = std::make_unique<Impl>(config);
}
Simulator::~Simulator() = default;

size_t Simulator::add_node() { return impl_->add(impl_->config.node); }
size_t Simulator::add_node(const NodeConfig& c) { return impl_->add(c); }
size_t Simulator::add_node(const NodeConfig& c, const Identity& identity) { return impl_->add(c, &identity); }
size_t Simulator::size() const { return impl_->slots.size(); }
Node& Simulator::node(size_t i) { return *impl_->slots.at(i).node; }
Endpoint Simulator::endpoint(size_t i) const { return impl_->endpoint(impl_->slots.at(i).env->index); }
std::optional<Endpoint> Simulator::endpoint(size_t i, Endpoint::Family f) const {
  return impl_->address(impl_->slots.at(i).env->index, f);
}
Contact Simulator::contact(size_t i) const {
  Contact c{impl_->identities.at(i).id(), impl_->slots.at(i).key, impl_->endpoint(i)};
  if (impl_->slots[i].families == kBothFamilies) c.alt = Impl::v6_of(i);
  return c;
}
void Simulator::set_families(size_t i, uint8_t families) {
  if (!(families & kBothFamilies) || (families & ~kBothFamilies)) throw std::invalid_argument("set_families: IPv4, IPv6 or both");
  impl_->slots.at(i).families = families;
}
uint8_t Simulator::families(size_t i) const { return impl_->slots.at(i).families; }
long Simulator::index_of(const Endpoint& ep) const { return impl_->index_of(ep); }
TimePoint Simulator::now() const { return impl_->now_; }

void Simulator::run_for(Duration d) {
  TimePoint end = impl_->now_ + d;
  while (impl_->step(end)) {
  }
  impl_->now_ = end;
}

bool Simulator::run_until(const std::function<bool()>& pred, Duration limit) {
  TimePoint end = impl_->now_ + limit;
  if (pred()) return true;
  while (impl_->step(end))
    if (pred()) return true;
  impl_->now_ = end;
  return pred();
}

void Simulator::kill(size_t i) { impl_->slots.at(i).alive = false; }
bool Simulator::alive(size_t i) const { return impl_->slots.at(i).alive; }

void Simulator::restart(size_t i, const NodeConfig& config) { restart(i, config, nullptr); }

void Simulator::restart(size_t i, const NodeConfig& config, std::unique_ptr<DhtStorage> storage) {
  auto& s = impl_->slots.at(i);
  s.node.reset();
  s.fresh.clear();  // the old process's sockets
  if (impl_->conns) impl_->conns->forget(static_cast<uint32_t>(i));  // what the old process left open
  s.alive = true;
  s.wake = TimePoint::max();
  s.node = std::make_unique<Node>(*s.env, impl_->identities.at(i), config, std::move(storage));
}

void Simulator::spoof(size_t i, std::optional<Endpoint> as) { impl_->slots.at(i).spoof_as = as; }

void Simulator::inject(const Endpoint& from, size_t to, Bytes data, Duration delay) {
  if (to >= impl_->slots.size()) throw std::out_of_range("inject: no such node");
  impl_->push(impl_->now_ + delay, static_cast<uint32_t>(to), kInjected, EventKind::kDeliver, data, from);
}

void Simulator::set_send_tap(std::function<void(size_t, const Endpoint&, size_t)> tap) { impl_->tap = std::move(tap); }

void Simulator::step_wall_clock(size_t i, std::chrono::microseconds delta) {
  impl_->slots.at(i).env->clock_step_us += delta.count();
}

void Simulator::partition(std::vector<uint8_t> side) {
  if (!side.empty() && side.size() != impl_->slots.size())
    throw std::invalid_argument("partition needs one side per node");
  impl_->side = std::move(side);
}

void Simulator::set_link(const LinkModel& link) { impl_->config.link = link; }

void Simulator::refuse_conns(size_t i, bool refuse) {
  if (impl_->conns) impl_->conns->refuse(static_cast<uint32_t>(impl_->slots.at(i).env->index), refuse);
}
size_t Simulator::reset_conns(size_t i) {
  return impl_->conns ? impl_->conns->reset(impl_->slots.at(i).env->index) : 0;
}
size_t Simulator::conns(size_t i) const {
  return impl_->conns ? impl_->conns->count(impl_->slots.at(i).env->index) : 0;
}
uint64_t Simulator::inject_conn(const Endpoint& from, size_t to, Bytes data, Duration delay) {
  if (!impl_->conns) return 0;
  return impl_->conns->inject(from, impl_->slots.at(to).env->index, std::move(data), delay);
}

size_t Simulator::add_router(const NatModel& model) {
  if (impl_->routers.size() >= (1u << 20)) throw std::length_error("simulator holds at most 2^20 routers");
  impl_->routers.emplace_back(model, Impl::router_ip(impl_->routers.size()));
  return impl_->routers.size() - 1;
}
void Simulator::put_behind(size_t i, std::optional<size_t> router) {
  if (router && *router >= impl_->routers.size()) throw std::out_of_range("put_behind: no such router");
  impl_->slots.at(i).router = router ? std::optional<uint32_t>(static_cast<uint32_t>(*router)) : std::nullopt;
}
std::optional<size_t> Simulator::router_of(size_t i) const { return impl_->slots.at(i).router; }
Endpoint Simulator::router_address(size_t r) const { return Endpoint::v4(impl_->routers.at(r).public_ip(), 0); }
size_t Simulator::nat_mappings(size_t r) const { return impl_->routers.at(r).mappings(); }
bool Simulator::reachable(const Endpoint& from, const Endpoint& to) const {
  const Impl& s = *impl_;
  long src = s.index_of(from), dst = s.index_of(to);
  auto router_of = [&](long i) { return i >= 0 ? s.slots[static_cast<size_t>(i)].router.value_or(kNoRouter) : kNoRouter; };
  uint32_t out = router_of(src);
  if (dst >= 0) return router_of(dst) == out;
  long r = s.router_index(to);
  if (r < 0 || (out == static_cast<uint32_t>(r) && !s.routers[static_cast<size_t>(r)].model().hairpin)) return false;
  return s.routers[static_cast<size_t>(r)].peek(from, to.port, s.now_).has_value();
}
uint64_t Simulator::trace_hash() const { return impl_->trace_; }
const SimStats& Simulator::stats() const { return impl_->stats_; }

}  // namespace storjnet
