// Relays (src/dht/relay.h, docs/protocol.md 5.3) over hand-driven engines: initiator A, relay R, NATed
// target B, and others. Every datagram is routed by the test, which blocks the direct path between A and B,
// so each limit of the relay can be attacked precisely.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "dht/relay.h"
#include "engine/message.h"
#include "test_env.h"
#include "wire/datagram.h"

using namespace storjnet;
using namespace storjnet::dht;
using storjnet::test::ManualEnv;

namespace {

struct Host {
  ManualEnv env;
  Engine engine;
  Endpoint ep;
  RoutingTable table;
  std::unique_ptr<Relay> relay;
  bool reachable = false;
  Host(uint64_t n, Endpoint e) : env(n), engine(env, test::test_identity(n, 0x33)), ep(e), table(engine.id(), 20) {}
  Contact contact() const { return Contact::from_key(engine.identity().public_key(), ep); }
};

struct RelayTest : ::testing::Test {
  std::map<Endpoint, Host*> hosts;
  std::vector<std::unique_ptr<Host>> owned;
  // The "DHT": relay lists by key, with the key that put them (read whatever the owner asked: Relay checks it).
  std::map<std::string, OwnedValue> dht;
  size_t fetches = 0;
  std::set<std::pair<Endpoint, Endpoint>> blocked;
  std::map<std::pair<Endpoint, Endpoint>, uint64_t> bytes;  // sent, by (from, to)
  DhtConfig cfg;

  Host& add(uint64_t n, bool reachable, const char* ep) {
    owned.push_back(std::make_unique<Host>(n, *Endpoint::parse(ep)));
    Host& h = *owned.back();
    h.reachable = reachable;
    hosts[h.ep] = &h;
    return h;
  }
  void start(Host& h) {
    Host* p = &h;
    h.relay = std::make_unique<Relay>(
        h.engine, h.table, cfg, [p] { return p->reachable; },
        [this, p](const std::string& k, Bytes v, std::function<void(bool)> done) {
          const PublicKey& owner = p->engine.identity().public_key();
          dht[k] = OwnedValue{std::move(v), owner, Identity::id_of(owner), 1, 1};
          done(true);
        },
        [this](const std::string& k, const NodeId&, std::function<void(std::optional<OwnedValue>)> cb) {
          ++fetches;
          auto it = dht.find(k);
          cb(it == dht.end() ? std::nullopt : std::optional<OwnedValue>(it->second));
        });
  }
  // Puts `r` in `h`'s table as a confirmed contact (a relay candidate).
  void know(Host& h, Host& r) {
    h.table.seen(r.contact(), h.env.now());
    h.table.set_confirmed(r.engine.id());
  }
  uint64_t sent(const Host& from, const Host& to) {
    auto it = bytes.find({from.ep, to.ep});
    return it == bytes.end() ? 0 : it->second;
  }
  void block(Host& a, Host& b) {
    blocked.insert({a.ep, b.ep});
    blocked.insert({b.ep, a.ep});
  }
  void pump() {
    for (bool any = true; any;) {
      any = false;
      for (auto& h : owned) {
        auto out = std::move(h->env.outbox);
        h->env.outbox.clear();
        for (auto& s : out) {
          any = true;
          bytes[{h->ep, s.to}] += s.data.size();
          auto it = hosts.find(s.to);
          if (it != hosts.end() && !blocked.count({h->ep, s.to})) it->second->engine.on_datagram(h->ep, s.data);
        }
      }
    }
  }
  void advance(Duration d) {
    for (auto& h : owned) h->env.advance(d);
    for (auto& h : owned)
      if (h->env.wake <= h->env.now()) h->engine.on_wake();
    pump();
  }
  // Puts a relay list under `target`'s key name, signed by `signer` (the target itself, or a forger).
  void list_for(const Host& target, const Host& signer, const std::vector<Contact>& relays) {
    const PublicKey& k = signer.engine.identity().public_key();
    dht[relay_list_key(target.engine.id())] = OwnedValue{encode_relay_list(relays), k, Identity::id_of(k), 1, 1};
  }
  void run_for(Duration d, Duration step = std::chrono::milliseconds(100)) {
    for (Duration t{}; t < d; t += step) advance(step);
  }
};

// A (NATed) reaches B (NATed, symmetric: no direct path) through R: B reserves at R and publishes its list;
// A's punch fails, A reads the list and its waiting request goes through R; B's answer comes back the same way.
struct ThreeHosts : RelayTest {
  Host *a, *r, *b;
  void SetUp() override {
    a = &add(1, false, "10.0.0.1:4000");
    r = &add(2, true, "10.0.0.2:4000");
    b = &add(3, false, "10.0.0.3:4000");
    block(*a, *b);
  }
  uint64_t refused_before = 0;  // at R, after reserve() (B's first request is challenged)
  void reserve() {
    for (Host* h : {a, r, b}) start(*h);
    know(*b, *r);
    b->relay->maintain();
    run_for(std::chrono::seconds(2));
    ASSERT_EQ(b->relay->relays().size(), 1u);
    ASSERT_EQ(r->relay->reservations_served(), 1u);
    refused_before = r->engine.drops().get(DropReason::kRelayRefused);
  }
  // A floods B through R (50 one-way messages of 500 bytes) once its address is proven at R; R's stats after.
  DhtStats flood() {
    a->engine.set_via(b->engine.identity().public_key(), r->contact());
    a->engine.notify(b->contact(), Method::kMessageNotify, as_bytes("x"));  // its first forward is challenged
    pump();
    for (int i = 0; i < 50; ++i) a->engine.notify(b->contact(), Method::kMessageNotify, Bytes(500, 1));
    pump();
    DhtStats rs;
    r->relay->fill(rs);
    return rs;
  }
  // A's Relay::reach(B): nullopt when it answered nothing, else what it answered.
  std::optional<std::optional<Contact>> reach_b() {
    std::optional<std::optional<Contact>> found;
    a->relay->reach(b->engine.id(), [&](std::optional<Contact> c) { found = c; });
    pump();
    return found;
  }
  uint64_t refused_at_a() {
    DhtStats s;
    a->relay->fill(s);
    return s.relay_refused;
  }
  // A request from A to B (as A knew it: directly), with the relay fallback once unanswered.
  std::optional<RpcResult> ask_b(Bytes payload = Bytes{'h', 'i'}) {
    std::optional<RpcResult> got;
    a->engine.request(b->contact(), Method::kMessageNotify, payload, [&](RpcResult&& res) { got = std::move(res); },
                      RpcOptions{std::chrono::seconds(10), 10});
    pump();
    a->relay->punch_started(b->contact());
    run_for(std::chrono::seconds(11));
    return got;
  }
};

}  // namespace

TEST_F(ThreeHosts, RequestAndAnswerGoThroughTheRelay) {
  reserve();
  ASSERT_TRUE(dht.count(relay_list_key(b->engine.id())));
  auto list = decode_relay_list(dht[relay_list_key(b->engine.id())].value);
  ASSERT_TRUE(list && list->size() == 1);
  EXPECT_EQ((*list)[0].key, r->engine.identity().public_key());

  int served = 0;
  Endpoint seen_from;
  b->engine.set_handler(Method::kMessageNotify, [&](const IncomingRequest& q, const Reply& rep) {
    ++served;
    seen_from = q.from.endpoint;
    EXPECT_EQ(q.from.key, a->engine.identity().public_key());
    rep.ok(as_bytes("ack"));
  });
  auto got = ask_b();
  ASSERT_TRUE(got);
  ASSERT_TRUE(got->ok());
  EXPECT_EQ(std::string(got->payload.begin(), got->payload.end()), "ack");
  EXPECT_EQ(served, 1);
  EXPECT_EQ(seen_from, r->ep);           // B sees A at the relay's address: its answers go back through R
  EXPECT_EQ(got->from.endpoint, r->ep);
  EXPECT_TRUE(a->engine.via(b->engine.identity().public_key()));
  EXPECT_TRUE(b->engine.via(a->engine.identity().public_key()));
  DhtStats rs, as, bs;
  r->relay->fill(rs);
  a->relay->fill(as);
  b->relay->fill(bs);
  EXPECT_GE(rs.relay_forwarded, 2u);
  EXPECT_EQ(rs.relay_circuits, 1u);
  EXPECT_EQ(as.relay_fallbacks_found, 1u);
  EXPECT_GE(as.relayed_out, 1u);
  EXPECT_GE(as.relayed_in, 1u);
  EXPECT_GE(bs.relayed_in, 1u);
  // A second request goes through the relay at once.
  std::optional<RpcResult> again;
  a->engine.request(b->contact(), Method::kMessageNotify, as_bytes("2"), [&](RpcResult&& res) { again = std::move(res); });
  pump();
  ASSERT_TRUE(again && again->ok());
}

// B's NAT moves its mapping (a router reboot): R must deliver to where B is heard from now, without waiting
// for B's next renewal. Any datagram that authenticates as B moves it (the DHT reports every authenticated
// sender to Relay::heard, as wired here); nothing else can.
TEST_F(ThreeHosts, AReservedNodeHeardFromANewAddressGetsItsDeliveriesThere) {
  reserve();
  r->engine.set_on_contact([this](const Contact& c, bool) { r->relay->heard(c); });
  int served = 0;
  b->engine.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply& rep) {
    ++served;
    rep.ok({});
  });
  hosts.erase(b->ep);
  b->ep = *Endpoint::parse("10.0.0.33:4000");
  hosts[b->ep] = b;
  block(*a, *b);
  auto lost = ask_b();  // R still delivers to B's old address
  ASSERT_TRUE(lost);
  EXPECT_FALSE(lost->ok());
  EXPECT_EQ(served, 0);
  // A stranger claiming B's id from elsewhere does not move it: it cannot authenticate as B.
  r->relay->heard(Contact{b->engine.id(), a->engine.identity().public_key(), a->ep});
  std::optional<std::optional<NodeId>> pong;
  b->engine.ping(r->contact(), [&](std::optional<NodeId> id) { pong = id; });
  run_for(std::chrono::seconds(1));
  ASSERT_TRUE(pong && *pong);
  std::optional<RpcResult> got;
  a->engine.request(b->contact(), Method::kMessageNotify, as_bytes("2"), [&](RpcResult&& res) { got = std::move(res); });
  run_for(std::chrono::seconds(1));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->ok());
  EXPECT_EQ(served, 1);
}

// The fallback is due kFallbackAfter after the punch started; while the punch still has rendezvous to ask
// (the hold), it waits, at most kMaxHold more.
TEST_F(ThreeHosts, TheFallbackWaitsWhileHeldAndNoLongerThanTheMaximum) {
  reserve();
  bool held = true;
  a->relay->set_hold([&](const NodeId& id) { return held && id == b->engine.id(); });
  const PublicKey bk = b->engine.identity().public_key();
  a->relay->punch_started(b->contact());
  run_for(Relay::kFallbackAfter + std::chrono::milliseconds(100));
  EXPECT_FALSE(a->engine.via(bk));  // held past the first second
  run_for(Relay::kMaxHold + Relay::kHoldCheck);
  EXPECT_TRUE(a->engine.via(bk));   // but not beyond the maximum (and the check that finds it passed)
  // Not held: the path is set at kFallbackAfter (another target, so no retry limit applies).
  Host& c = add(4, false, "10.0.0.4:4000");
  start(c);
  know(c, *r);
  c.relay->maintain();
  run_for(std::chrono::seconds(2));
  held = false;
  a->relay->punch_started(c.contact());
  run_for(Relay::kFallbackAfter + std::chrono::milliseconds(100));
  EXPECT_TRUE(a->engine.via(c.engine.identity().public_key()));
}

// A renewal that gets no answer (B's NAT moved its mapping, say) keeps the reservation until it lapses: B's
// published list stays as the initiators read it. A refusal ends it.
TEST_F(ThreeHosts, AnUnansweredRenewalKeepsTheReservationUntilItLapses) {
  reserve();
  Bytes list = dht[relay_list_key(b->engine.id())].value;
  block(*b, *r);
  b->relay->maintain();
  run_for(std::chrono::seconds(3));
  DhtStats bs;
  b->relay->fill(bs);
  EXPECT_EQ(bs.relay_renewals_unanswered, 1u);
  EXPECT_EQ(b->relay->relays().size(), 1u);
  EXPECT_EQ(dht[relay_list_key(b->engine.id())].value, list);
  // Unanswered past its life: it lapses.
  run_for(cfg.relay_reservation_life);
  b->relay->maintain();
  run_for(std::chrono::seconds(3));
  EXPECT_TRUE(b->relay->relays().empty());
}

// B keeps two relays; one of them (R1) no longer reaches B (its reservation names an address B's NAT dropped).
// Each initiator picks one of B's listed relays at random; one that picked R1 hears nothing from B through it
// and moves to R2 kPathCheck later. Every initiator's request is answered.
TEST_F(RelayTest, AnInitiatorMovesToTheNextListedRelayWhenNothingComesThroughTheFirst) {
  Host& r1 = add(2, true, "10.0.0.2:4000");
  Host& r2 = add(3, true, "10.0.0.3:4000");
  Host& b = add(4, false, "10.0.0.4:4000");
  std::vector<Host*> as;
  for (uint64_t i = 0; i < 6; ++i) as.push_back(&add(10 + i, false, ("10.0.1." + std::to_string(i + 1) + ":4000").c_str()));
  for (auto& h : owned) start(*h);
  know(b, r1);
  know(b, r2);
  b.relay->maintain();
  run_for(std::chrono::seconds(2));
  ASSERT_EQ(b.relay->relays().size(), 2u);
  int served = 0;
  b.engine.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply& rep) {
    ++served;
    rep.ok({});
  });
  blocked.insert({r1.ep, b.ep});  // R1's deliveries no longer reach B
  for (Host* a : as) block(*a, b);
  std::vector<std::optional<RpcResult>> got(as.size());
  for (size_t i = 0; i < as.size(); ++i) {
    as[i]->engine.request(b.contact(), Method::kMessageNotify, as_bytes("hi"),
                          [&got, i](RpcResult&& res) { got[i] = std::move(res); }, RpcOptions{std::chrono::seconds(10), 10});
    as[i]->relay->punch_started(b.contact());
  }
  pump();
  run_for(std::chrono::seconds(11));
  uint64_t switched = 0;
  std::set<PublicKey> first;
  for (size_t i = 0; i < as.size(); ++i) {
    ASSERT_TRUE(got[i]);
    EXPECT_TRUE(got[i]->ok()) << "initiator " << i;
    DhtStats st;
    as[i]->relay->fill(st);
    EXPECT_EQ(st.relay_fallbacks_found, 1u);
    switched += st.relay_paths_switched;
    auto via = as[i]->engine.via(b.engine.identity().public_key());
    ASSERT_TRUE(via);
    EXPECT_EQ(via->key, r2.engine.identity().public_key());  // where they all are now
  }
  EXPECT_EQ(served, static_cast<int>(as.size()));
  // The picks spread: some initiators went to R1 first (and moved), the others straight to R2.
  EXPECT_GE(switched, 1u);
  EXPECT_LT(switched, as.size());
}

// The only relay B knows is farther from B's id than many nodes that do not relay: B asks them, each
// refusal moves it to the next candidate at once, and it ends up holding a reservation with the relay
// (before, only the closest few were asked, so such a B held none and no initiator could reach it).
TEST_F(RelayTest, ANodeWhoseClosestContactsDoNotRelayStillFindsARelay) {
  Host& b = add(1, false, "10.0.0.1:4000");
  std::vector<Host*> others;
  for (uint64_t i = 0; i < 30; ++i)
    others.push_back(&add(100 + i, false, ("10.0.2." + std::to_string(i + 1) + ":4000").c_str()));
  // The relay: the first identity farther from B than its 20 closest non-relays.
  std::vector<NodeId> ids;
  for (Host* o : others) ids.push_back(o->engine.id());
  std::sort(ids.begin(), ids.end(), [&](const NodeId& x, const NodeId& y) { return closer(b.engine.id(), x, y); });
  uint64_t n = 200;
  while (closer(b.engine.id(), test::test_identity(n, 0x33).id(), ids[19])) ++n;
  Host& r = add(n, true, "10.0.0.2:4000");
  for (auto& h : owned) start(*h);
  for (Host* o : others) b.table.seen(o->contact(), b.env.now());
  b.table.seen(r.contact(), b.env.now());  // not confirmed either: B knows nothing of who relays
  b.relay->maintain();
  run_for(std::chrono::seconds(5));
  auto held = b.relay->relays();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].key, r.engine.identity().public_key());
}

TEST_F(ThreeHosts, NoAmplification) {
  reserve();
  b->engine.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply& rep) { rep.ok({}); });
  bytes.clear();
  auto got = ask_b(Bytes(3000, 0x42));  // fragmented, each inner datagram full-size
  ASSERT_TRUE(got && got->ok());
  // What R sent to B is never more than what A sent to R (the relay_deliver body is 20 bytes shorter).
  uint64_t in = sent(*a, *r), out = sent(*r, *b);
  EXPECT_GT(out, 3000u);
  EXPECT_LE(out, in);
}

TEST_F(ThreeHosts, NoReservationNoRelay) {
  for (Host* h : {a, r, b}) start(*h);
  // B reserved nothing: A's forward is refused, nothing reaches B.
  list_for(*b, *b, {r->contact()});
  int served = 0;
  b->engine.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply& rep) { ++served, rep.ok({}); });
  auto got = ask_b();
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->ok());
  EXPECT_EQ(served, 0);
  DhtStats rs;
  r->relay->fill(rs);
  EXPECT_EQ(rs.relay_forwarded, 0u);
  EXPECT_GT(rs.relay_refused, 0u);
  EXPECT_EQ(r->engine.drops().get(DropReason::kRelayRefused), rs.relay_refused);
  EXPECT_EQ(sent(*r, *b), 0u);
}

TEST_F(ThreeHosts, UnreachableNodeDoesNotRelay) {
  r->reachable = false;
  for (Host* h : {a, r, b}) start(*h);
  know(*b, *r);
  b->relay->maintain();
  run_for(std::chrono::seconds(2));
  EXPECT_TRUE(b->relay->relays().empty());
  EXPECT_EQ(r->relay->reservations_served(), 0u);
}

TEST_F(ThreeHosts, ForwardOfAnotherSendersDatagramIsRefused) {
  reserve();
  // A wraps a datagram sealed by X for B: R refuses it (the sealed header names X, not A), without key work.
  test::Forger x(test::test_identity(99, 0x33), b->engine.identity().public_key());
  Bytes inner = x.request(Method::kMessageNotify, as_bytes("spoof"));
  a->engine.notify(r->contact(), Method::kRelay, msg::relay_forward(b->engine.id(), inner));
  pump();
  DhtStats rs;
  r->relay->fill(rs);
  EXPECT_EQ(rs.relay_forwarded, 0u);
  EXPECT_EQ(rs.relay_refused, refused_before + 1);
  // A hello (not sealed) is refused the same way; so is a body too short to name a target.
  a->engine.notify(r->contact(), Method::kRelay, msg::relay_forward(b->engine.id(), wire::encode_hello(a->engine.config().network_id, {a->engine.identity().public_key(), 1})));
  a->engine.notify(r->contact(), Method::kRelay, as_bytes("short"));
  pump();
  r->relay->fill(rs);
  EXPECT_EQ(rs.relay_refused, refused_before + 3);
  EXPECT_EQ(rs.relay_forwarded, 0u);
}

TEST_F(ThreeHosts, AnswerWithoutACircuitIsRefused) {
  reserve();
  // B holds a reservation but A never opened a circuit to it: B cannot use R to send to A.
  b->engine.set_via(a->engine.identity().public_key(), r->contact());
  b->engine.notify(a->contact(), Method::kMessageNotify, as_bytes("unasked"));
  pump();
  DhtStats rs;
  r->relay->fill(rs);
  EXPECT_EQ(rs.relay_forwarded, 0u);
  EXPECT_EQ(rs.relay_refused, refused_before + 1);
  EXPECT_EQ(sent(*r, *a), 0u);
}

TEST_F(ThreeHosts, DeliveriesOnlyFromOurRelays) {
  reserve();
  Host& e = add(5, true, "10.0.0.5:4000");
  start(e);
  // E (not B's relay) hands B a datagram sealed by A: B refuses it before opening it.
  test::Forger fa(a->engine.identity(), b->engine.identity().public_key());
  e.engine.notify(b->contact(), Method::kRelayed, fa.request(Method::kPing, {}));
  pump();
  DhtStats bs;
  b->relay->fill(bs);
  EXPECT_EQ(bs.relay_refused, 1u);
  EXPECT_EQ(bs.relayed_in, 0u);
  // Its own relay may deliver, but never a datagram of its own (no nesting, no loops).
  test::Forger fr(r->engine.identity(), b->engine.identity().public_key());
  r->engine.notify(b->contact(), Method::kRelayed, fr.request(Method::kPing, {}));
  pump();
  EXPECT_EQ(b->engine.drops().get(DropReason::kRelayRefused), 2u);
}

TEST_F(ThreeHosts, PairBudgetCapsRelayedBytes) {
  cfg.relay_pair_rate = 1;
  cfg.relay_pair_burst = 4000;
  reserve();
  int served = 0;
  b->engine.set_handler(Method::kMessageNotify, [&](const IncomingRequest&, const Reply&) { ++served; });
  DhtStats rs = flood();
  EXPECT_LE(rs.relay_forwarded_bytes, 4000u);
  EXPECT_GT(rs.relay_refused, 40u);
  EXPECT_LE(served, 7);
  EXPECT_LE(sent(*r, *b), 4000u + 8 * (wire::kSealedOverhead + 8));
}

TEST_F(ThreeHosts, TotalBudgetCapsRelayedBytes) {
  cfg.relay_total_rate = 3000;
  reserve();
  DhtStats rs = flood();
  EXPECT_LE(rs.relay_forwarded_bytes, 3000u);
  EXPECT_GT(rs.relay_refused, 40u);
}

TEST_F(RelayTest, ReservationsAreCapped) {
  cfg.relay_max_reservations = 2;
  Host& r = add(2, true, "10.0.0.2:4000");
  start(r);
  std::vector<Host*> nated;
  for (uint64_t n = 10; n < 13; ++n) {
    std::string ep = "10.0.1." + std::to_string(n) + ":4000";
    Host& h = add(n, false, ep.c_str());
    start(h);
    know(h, r);
    nated.push_back(&h);
  }
  for (Host* h : nated) {
    h->relay->maintain();
    run_for(std::chrono::seconds(2));
  }
  EXPECT_EQ(r.relay->reservations_served(), 2u);
  EXPECT_EQ(nated[0]->relay->relays().size(), 1u);
  EXPECT_EQ(nated[1]->relay->relays().size(), 1u);
  EXPECT_TRUE(nated[2]->relay->relays().empty());
  DhtStats rs;
  r.relay->fill(rs);
  EXPECT_EQ(rs.relay_reservations_granted, 2u);
  EXPECT_GE(rs.relay_refused, 1u);
  // A reservation not renewed lapses; the freed slot goes to the next asker.
  nated[0]->relay.reset();
  run_for(cfg.relay_reservation_life + cfg.keepalive_interval, std::chrono::seconds(1));
  EXPECT_EQ(r.relay->reservations_served(), 1u);
  nated[2]->relay->maintain();  // (its refusal is remembered for 5 minutes: the table entry is re-offered)
  run_for(std::chrono::minutes(5), std::chrono::seconds(1));
  EXPECT_EQ(nated[2]->relay->relays().size(), 1u);
}

// Fresh keys from one /24 (one attacker's block, or one home) get at most kMaxReservationsPerBlock of a relay's
// slots; a node of another block still gets one.
TEST_F(RelayTest, OneAddressBlockCannotTakeEveryReservation) {
  Host& r = add(2, true, "10.0.0.2:4000");
  start(r);
  auto reserve = [&](Host& h) {
    start(h);
    know(h, r);
    h.relay->maintain();
    run_for(std::chrono::seconds(2));
  };
  std::vector<Host*> flood;
  for (uint64_t n = 10; n < 10 + Relay::kMaxReservationsPerBlock + 4; ++n) {
    std::string ep = "10.9.9." + std::to_string(n) + ":4000";
    flood.push_back(&add(n, false, ep.c_str()));
    reserve(*flood.back());
  }
  size_t held = 0;
  for (Host* h : flood) held += h->relay->relays().size();
  EXPECT_EQ(held, Relay::kMaxReservationsPerBlock);
  EXPECT_EQ(r.relay->reservations_served(), Relay::kMaxReservationsPerBlock);
  Host& other = add(99, false, "10.7.7.7:4000");
  reserve(other);
  EXPECT_EQ(other.relay->relays().size(), 1u);
  EXPECT_EQ(r.relay->reservations_served(), Relay::kMaxReservationsPerBlock + 1);
}

TEST(RelayCodec, RoundTripsAndRefusesGarbage) {
  std::vector<Contact> relays = {Contact::from_key(test::test_identity(1).public_key(), *Endpoint::parse("1.2.3.4:5")),
                                 Contact::from_key(test::test_identity(2).public_key(), *Endpoint::parse("[2001:db8::1]:7"))};
  Bytes enc = encode_relay_list(relays);
  auto dec = decode_relay_list(enc);
  ASSERT_TRUE(dec);
  ASSERT_EQ(dec->size(), 2u);
  EXPECT_EQ((*dec)[1].key, relays[1].key);
  EXPECT_EQ((*dec)[1].endpoint, relays[1].endpoint);
  EXPECT_EQ((*dec)[0].id, relays[0].id);
  enc.push_back(0);
  EXPECT_FALSE(decode_relay_list(enc));
  EXPECT_FALSE(decode_relay_list(Bytes{1, 9}));
  EXPECT_FALSE(decode_relay_list(Bytes{}));
  EXPECT_EQ(decode_reservation(encode_reservation(60)), 60u);
  EXPECT_FALSE(decode_reservation(encode_reservation(0)));
  EXPECT_FALSE(decode_reservation(Bytes{0, 0, 1}));
  EXPECT_FALSE(msg::parse_relay_forward(Bytes(20, 0)));
  EXPECT_FALSE(msg::parse_relay_forward(Bytes(20 + wire::kMaxDatagram + 1, 0)));
  EXPECT_TRUE(msg::parse_relay_forward(Bytes(21, 0)));
}

// A node no lookup found (Relay::reach): its list, signed by its own key, gives a contact with its key and a
// relay's endpoint, and what A sends to that contact goes through the relay; B's answer comes back that way.
TEST_F(ThreeHosts, ReachFindsTheTargetThroughTheRelaysItListed) {
  reserve();
  int served = 0;
  b->engine.set_handler(Method::kMessageNotify, [&](const IncomingRequest& q, const Reply& rep) {
    ++served;
    EXPECT_EQ(q.from.key, a->engine.identity().public_key());
    rep.ok(as_bytes("ack"));
  });
  auto found = reach_b();
  ASSERT_TRUE(found && *found);
  const Contact& c = **found;
  EXPECT_EQ(c.id, b->engine.id());
  EXPECT_EQ(c.key, b->engine.identity().public_key());  // the list's signer: the session is end-to-end with B
  EXPECT_EQ(c.endpoint, r->ep);
  auto via = a->engine.via(c.key);
  ASSERT_TRUE(via);
  EXPECT_EQ(via->key, r->engine.identity().public_key());
  std::optional<RpcResult> got;
  a->engine.request(c, Method::kMessageNotify, as_bytes("hi"), [&](RpcResult&& res) { got = std::move(res); },
                    RpcOptions{std::chrono::seconds(5), 5});
  run_for(std::chrono::seconds(6));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->ok());
  EXPECT_EQ(served, 1);
  EXPECT_EQ(sent(*a, *b), 0u);
  // Asked again within kRetryAfter: the path already set, no second read.
  size_t reads = fetches;
  auto again = reach_b();
  ASSERT_TRUE(again && *again);
  EXPECT_EQ((*again)->key, c.key);
  EXPECT_EQ(fetches, reads);
}

// Anyone can put under B's key name: a list another key signed is ignored (and counted), whatever it names.
TEST_F(ThreeHosts, ReachIgnoresAListSignedByAnotherKey) {
  reserve();
  Host& m = add(4, true, "10.0.0.4:4000");
  start(m);
  list_for(*b, m, {m.contact()});
  uint64_t refused = refused_at_a();
  auto found = reach_b();
  ASSERT_TRUE(found);
  EXPECT_FALSE(*found);
  EXPECT_FALSE(a->engine.via(b->engine.identity().public_key()));
  EXPECT_EQ(refused_at_a(), refused + 1);
  run_for(std::chrono::seconds(3));
  EXPECT_EQ(sent(*a, m), 0u);
}

// A list that does not decode (too many relays, garbage) is refused and counted; a node that published nothing
// is answered nullopt.
TEST_F(ThreeHosts, ReachRefusesAGarbageList) {
  reserve();
  const PublicKey& bk = b->engine.identity().public_key();
  Bytes too_many{1, static_cast<uint8_t>(Relay::kMaxListed + 1)};
  for (Bytes bad : {Bytes(300, 0xff), too_many}) {
    a->relay = nullptr;  // a fresh initiator: no read kept from the last round
    start(*a);
    dht[relay_list_key(b->engine.id())] = OwnedValue{bad, bk, b->engine.id(), 1, 1};
    uint64_t refused = refused_at_a();
    auto found = reach_b();
    ASSERT_TRUE(found);
    EXPECT_FALSE(*found);
    EXPECT_EQ(refused_at_a(), refused + 1);
  }
  dht.clear();
  a->relay = nullptr;
  start(*a);
  uint64_t refused = refused_at_a();
  auto none = reach_b();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  EXPECT_EQ(refused_at_a(), refused);
}

// A target that has published no list yet (it is still joining) is read again after kEmptyListRetry, not only
// after kRetryAfter: once its list is out, the next message to it finds its relay.
TEST_F(ThreeHosts, ReachReadsAMissingListAgainSoon) {
  for (Host* h : {a, r, b}) start(*h);
  auto none = reach_b();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  EXPECT_EQ(fetches, 1u);
  auto again = reach_b();  // at once: the empty read is kept
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  EXPECT_EQ(fetches, 1u);
  know(*b, *r);  // B reserves at R and publishes its list
  b->relay->maintain();
  run_for(Relay::kEmptyListRetry);
  ASSERT_EQ(b->relay->relays().size(), 1u);
  auto found = reach_b();
  EXPECT_EQ(fetches, 2u);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->endpoint, r->ep);
  EXPECT_LT(Relay::kEmptyListRetry, Relay::kRetryAfter);
}

// Reads are bounded: one per target per kRetryAfter (kEmptyListRetry for a target with no list), and at most
// kMaxFallbacks targets at once; beyond that reach answers nullopt without reading.
TEST_F(ThreeHosts, ReachIsBounded) {
  for (Host* h : {a, r, b}) start(*h);
  size_t answered = 0;
  for (size_t i = 0; i < Relay::kMaxFallbacks; ++i) {
    Bytes seed{static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8)};
    a->relay->reach(NodeId::hash_of(seed), [&](std::optional<Contact> c) { answered += !c; });
  }
  EXPECT_EQ(fetches, Relay::kMaxFallbacks);
  a->relay->reach(NodeId::hash_of(Bytes{1, 2, 3}), [&](std::optional<Contact> c) { answered += !c; });
  a->relay->reach(NodeId::hash_of(Bytes{0, 0}), [&](std::optional<Contact> c) { answered += !c; });  // read already
  EXPECT_EQ(fetches, Relay::kMaxFallbacks);
  EXPECT_EQ(answered, Relay::kMaxFallbacks + 2);
  run_for(Relay::kRetryAfter, std::chrono::seconds(1));
  a->relay->reach(NodeId::hash_of(Bytes{1, 2, 3}), [&](std::optional<Contact>) {});
  EXPECT_EQ(fetches, Relay::kMaxFallbacks + 1);
}
