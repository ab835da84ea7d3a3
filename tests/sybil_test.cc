// Sybil resistance, attacked (issue 11, items 3 and 4): ids that do not solve the network's id puzzle are
// refused wherever a contact is learned; pubsub registrations cannot be forged, undone or replayed by anyone
// but their subscriber; a topic's subscriber list stays bounded and fair under a flood from one address
// block; a neighbour's filter that claims (nearly) everything is not trusted. Virtual time only.
#include <gtest/gtest.h>

#include <algorithm>

#include "dht/codec.h"
#include "engine/engine.h"
#include "node/node_internals.h"
#include "pubsub/subscriber_list.h"
#include "pubsub/wire.h"
#include "pubsub_test_util.h"
#include "sim/network_builder.h"
#include "sim/rng.h"
#include "test_env.h"
#include "storjnet/pubsub.h"

using namespace storjnet;
using namespace storjnet::pubsub;

namespace {

constexpr int kBits = 6;

uint64_t drops(Simulator& sim, size_t i, DropReason r) { return NodeInternals::engine(sim.node(i)).drops().get(r); }

bool knows(Simulator& sim, size_t i, const NodeId& id) {
  auto peers = sim.node(i).dht().peers();
  return std::any_of(peers.begin(), peers.end(), [&](const Contact& c) { return c.id == id; });
}

// A contact (not a running node) whose id fails the puzzle.
Contact unsolved_contact(uint8_t n, uint32_t net) {
  for (uint8_t k = 0;; ++k) {
    std::array<uint8_t, 32> seed{};
    seed[0] = n;
    seed[1] = k;
    seed[2] = 0xee;
    auto id = Identity::from_seed(seed);
    if (!id_puzzle_ok(id.id(), net, kBits))
      return Contact::from_key(id.public_key(), Endpoint::v4(0x0a640000u + n, 4000));
  }
}

}  // namespace

TEST(SybilPuzzle, UnsolvedIdsAreRefusedByTablesAnswersAndPubsub) {
  SimConfig cfg;
  cfg.seed = 11;
  cfg.node.dht.id_puzzle_bits = kBits;
  Simulator sim(cfg);
  const uint32_t net = cfg.node.engine.network_id;
  for (int i = 0; i < 24; ++i) sim.add_node();
  ASSERT_EQ(sim::join_network(sim, 11), 24u);
  for (size_t i = 0; i < sim.size(); ++i) ASSERT_TRUE(id_puzzle_ok(sim.node(i).id(), net, kBits));

  // An outsider that skipped the work (its own config does not require it, so it runs).
  NodeConfig lax = cfg.node;
  lax.dht.id_puzzle_bits = 0;
  size_t out = sim.add_node(lax);
  while (id_puzzle_ok(sim.node(out).id(), net, kBits)) out = sim.add_node(lax);
  const NodeId outsider = sim.node(out).id();

  // 1. Routing tables: it talks to everyone it can, nobody keeps it, nobody even pings it to verify it.
  size_t pinged = 0;
  NodeInternals::engine(sim.node(out)).set_handler(Method::kPing, [&](const IncomingRequest&, const Reply& r) {
    ++pinged;
    r.ok(outsider.view());
  });
  bool joined = false;
  sim.node(out).dht().bootstrap({sim.endpoint(0)}, [&](bool ok) { joined = ok; });
  sim.run_for(10s);
  EXPECT_TRUE(joined);  // it learned honest nodes (it accepts any id)...
  uint64_t refused = 0;
  for (size_t i = 0; i < 24; ++i) {
    EXPECT_FALSE(knows(sim, i, outsider)) << "node " << i;
    refused += sim.node(i).dht().stats().contacts_refused_puzzle;
  }
  EXPECT_GT(refused, 0u);  // ...but none of them admitted it
  EXPECT_EQ(pinged, 0u);   // refused at its requests, not after a verifying ping
  EXPECT_GT(drops(sim, 0, DropReason::kIdPuzzle), 0u);

  // 2. find_node answers: a node that solved the puzzle answers with unsolved contacts mixed into true ones.
  const size_t liar = 1;
  std::vector<Contact> fakes;
  for (uint8_t n = 0; n < 8; ++n) fakes.push_back(unsolved_contact(n, net));
  fakes.push_back(sim.contact(out));
  Engine& le = NodeInternals::engine(sim.node(liar));
  le.set_handler(Method::kFindNode, [&](const IncomingRequest& q, const Reply& r) {
    auto req = dht::decode_find_node_request(q.payload);
    auto list = fakes;
    for (auto& c : sim.node(liar).dht().closest_known(req->target, 8)) list.push_back(c);
    r.ok(dht::encode_contacts(list));
  });
  size_t victim = sim.add_node();
  sim.node(victim).dht().bootstrap({sim.endpoint(liar)}, [](bool) {});
  sim.run_for(10s);
  EXPECT_GE(sim.node(victim).dht().stats().contacts_refused_puzzle, fakes.size());
  EXPECT_GE(drops(sim, victim, DropReason::kIdPuzzle), fakes.size());
  EXPECT_GT(sim.node(victim).dht().peers().size(), 5u);  // it joined through the true contacts
  for (const auto& f : fakes) EXPECT_FALSE(knows(sim, victim, f.id));

  // 3. Pubsub: its filter is not taken, its registration is not held.
  FilterBody f;
  f.levels.assign(3, BloomFilter(8192, 4));
  f.levels[0].add(TopicHash::of("bait"));
  NodeInternals::engine(sim.node(out)).notify(sim.contact(2), Method::kQuasarUpdate, encode_filter(f));
  sim.node(out).pubsub().subscribe("bait");
  // The direct rendezvous sends the subscriber's own signed statement straight to the holders its lookup
  // finds (nobody answers the outsider's lookups here): wherever it is sent, the puzzle refuses it.
  Engine& oe = NodeInternals::engine(sim.node(out));
  RegisterBody reg;
  reg.kind = UpdateKind::kReplica;
  reg.topic_key = dht_key("bait");
  reg.subscribe = true;
  reg.subscriber = oe.identity().public_key();
  reg.issued_us = oe.env().unix_us();
  reg.signature = oe.identity().sign(register_statement(net, reg));
  for (size_t i = 0; i < 24; ++i)
    oe.request(sim.contact(i), Method::kQuasarUpdate, encode_register(reg), [](RpcResult&&) {});
  sim.run_for(3s);
  EXPECT_GE(sim.node(2).pubsub().stats().filters_puzzle, 1u);
  for (size_t i = 0; i < 24; ++i) EXPECT_LT(sim.node(i).pubsub().filter_level("bait"), 0) << "node " << i;
  uint64_t held = 0, puzzle = 0;
  for (size_t i = 0; i < 24; ++i) {
    held += sim.node(i).pubsub().held_subscribers("bait");
    puzzle += sim.node(i).pubsub().stats().registrations_puzzle;
  }
  EXPECT_EQ(held, 0u);
  EXPECT_GT(puzzle, 0u);
}

TEST(SybilPuzzle, ANodeWhoseOwnIdFailsThePuzzleDoesNotStart) {
  NodeConfig strict;
  strict.dht.id_puzzle_bits = 30;
  test::ManualEnv env;
  std::array<uint8_t, 32> seed{};
  Identity weak = Identity::from_seed(seed);
  ASSERT_FALSE(id_puzzle_ok(weak.id(), strict.engine.network_id, 30));
  EXPECT_THROW({ Node n(env, weak, strict); }, std::invalid_argument);
}

namespace {
struct PubsubNet {
  explicit PubsubNet(PubsubConfig pc = {}) {
    SimConfig c;
    c.seed = 5;
    c.node.pubsub = pc;
    sim = std::make_unique<Simulator>(c);
    for (int i = 0; i < 30; ++i) sim->add_node();
    oracle = test::connect_pubsub(*sim, 5);
  }
  Pubsub& ps(size_t i) { return sim->node(i).pubsub(); }
  std::vector<size_t> holders(const std::string& topic) {
    std::vector<size_t> h;
    for (size_t i = 0; i < sim->size(); ++i)
      if (ps(i).held_subscribers(topic)) h.push_back(i);
    return h;
  }
  size_t held(const std::string& topic) {
    size_t n = 0;
    for (size_t i = 0; i < sim->size(); ++i) n += ps(i).held_subscribers(topic);
    return n;
  }
  template <typename F>
  uint64_t sum(F f) {
    uint64_t n = 0;
    for (size_t i = 0; i < sim->size(); ++i) n += f(ps(i).stats());
    return n;
  }
  // A registration statement for `topic` as `signer` signs it, claiming to be `subscriber` at `ep`.
  RegisterBody statement(const Identity& signer, const PublicKey& subscriber, const std::string& topic, bool subscribe,
                         Endpoint ep, Duration age = 0s) {
    RegisterBody b;
    b.kind = UpdateKind::kReplica;
    b.topic_key = dht_key(topic);
    b.subscribe = subscribe;
    b.subscriber = subscriber;
    b.endpoint = ep;
    b.issued_us = NodeInternals::engine(sim->node(0)).env().unix_us() - static_cast<uint64_t>(age / 1us);
    b.signature = signer.sign(register_statement(NodeInternals::engine(sim->node(0)).config().network_id, b));
    return b;
  }
  // Sends `b` from node `from` to each of `to`, as a replica (held directly) or a routed register.
  void send(size_t from, const std::vector<size_t>& to, const RegisterBody& b) {
    for (size_t t : to)
      NodeInternals::engine(sim->node(from)).request(sim->contact(t), Method::kQuasarUpdate, encode_register(b), [](RpcResult&&) {});
  }
  std::unique_ptr<Simulator> sim;
  std::unique_ptr<OracleTopology> oracle;
};
}  // namespace

TEST(SybilPubsub, ForgerCannotRegisterUnregisterOrReplayForAnother) {
  PubsubNet net;
  const size_t victim = 3, forger = 7;
  const Identity& vid = NodeInternals::engine(net.sim->node(victim)).identity();
  const Identity& fid = NodeInternals::engine(net.sim->node(forger)).identity();
  const Endpoint vep = net.sim->endpoint(victim);
  net.ps(victim).subscribe("news");
  net.sim->run_for(3s);
  auto holders = net.holders("news");
  std::erase(holders, forger);  // the forger may be a holder itself: it attacks the others
  ASSERT_FALSE(holders.empty());
  const size_t held_before = net.held("news");
  std::vector<size_t> everyone;
  for (size_t i = 0; i < net.sim->size(); ++i)
    if (i != forger) everyone.push_back(i);

  // Forged unsubscribes of the victim: signed by the forger, or unsigned; held directly and routed.
  auto forged = net.statement(fid, vid.public_key(), "news", false, vep);
  net.send(forger, holders, forged);
  forged.kind = UpdateKind::kRegister;
  net.send(forger, everyone, forged);
  RegisterBody unsigned_body = forged;
  unsigned_body.signature = {};
  net.send(forger, everyone, unsigned_body);
  // A forged subscription of the victim to a topic it never chose.
  auto unwanted = net.statement(fid, vid.public_key(), "spam", true, vep);
  net.send(forger, everyone, unwanted);
  net.sim->run_for(3s);
  EXPECT_EQ(net.held("news"), held_before);
  EXPECT_EQ(net.held("spam"), 0u);
  EXPECT_GE(net.sum([](const PubsubStats& s) { return s.registrations_forged; }), 2 * everyone.size());
  uint64_t forged_drops = 0;
  for (size_t i = 0; i < net.sim->size(); ++i) forged_drops += NodeInternals::engine(net.sim->node(i)).drops().get(DropReason::kForgedRegistration);
  EXPECT_GE(forged_drops, 2 * everyone.size());
  // The victim still gets its events.
  net.ps(12).publish("news", test::event_json(1));
  net.sim->run_for(2s);
  EXPECT_EQ(net.ps(victim).take_events("news").size(), 1u);

  // A statement the victim really signed earlier (captured on the way), replayed after it unsubscribed.
  auto captured = net.statement(vid, vid.public_key(), "news", true, vep, 1s);
  net.ps(victim).unsubscribe("news");
  net.sim->run_for(3s);
  EXPECT_EQ(net.held("news"), 0u);
  net.send(forger, holders, captured);
  net.sim->run_for(3s);
  EXPECT_EQ(net.held("news"), 0u);
  EXPECT_GE(net.sum([](const PubsubStats& s) { return s.registrations_stale; }), holders.size());
  // Statements outside the freshness window (an old capture) are refused as forged.
  auto ancient = net.statement(vid, vid.public_key(), "news", true, vep, 10min);
  uint64_t before = net.sum([](const PubsubStats& s) { return s.registrations_forged; });
  net.send(forger, holders, ancient);
  net.sim->run_for(2s);
  EXPECT_EQ(net.sum([](const PubsubStats& s) { return s.registrations_forged; }), before + holders.size());
  EXPECT_EQ(net.held("news"), 0u);
}

// The direct rendezvous: holders get each event from its publisher and deliver it to every subscriber they
// hold. Another node's claim that some were already served is not trusted: a node that saw the event on its
// way (the greedy route runs ahead of the publisher's holder lookup) could otherwise send the holders its id
// with a list naming every subscriber, and the publisher's own copy would then be dropped as a duplicate.
TEST(SybilPubsub, AForgedServedListDoesNotSilenceAHolder) {
  PubsubNet net;
  const size_t victim = 3, forger = 7;
  net.ps(victim).subscribe("news");
  net.sim->run_for(3s);
  auto holders = net.holders("news");
  std::erase(holders, forger);
  std::erase(holders, victim);
  ASSERT_FALSE(holders.empty());
  NotifyBody ev;
  ev.kind = NotifyKind::kHolder;
  ev.id = EventId{};
  ev.id[0] = 0x5a;
  ev.topic = "news";
  ev.event = test::event_json(7);
  for (size_t i = 0; i < net.sim->size(); ++i) ev.publishers.push_back(net.sim->node(i).id());  // "all served"
  for (size_t h : holders)
    NodeInternals::engine(net.sim->node(forger)).request(net.sim->contact(h), Method::kQuasarNotify, encode_notify(ev),
                                                          [](RpcResult&&) {});
  net.sim->run_for(2s);
  EXPECT_EQ(net.ps(victim).take_events("news").size(), 1u);
  EXPECT_GE(net.sum([](const PubsubStats& s) { return s.holder_deliveries; }), holders.size());
}

// A node that learned an event id (a holder, or a node on its route) sends the other holders a serve of the
// same id first, with other content and a holder list that makes them skip the victim. The holders still
// serve the publisher's own copy (deduplicated per sender), and the victim still delivers the real content
// (deliveries are deduplicated by id and content, not id alone).
TEST(SybilPubsub, AForgedServeOfAKnownIdDoesNotSilenceThePublishersCopy) {
  PubsubNet net;
  const size_t victim = 3, forger = 7, publisher = 12;
  net.ps(victim).subscribe("news");
  net.sim->run_for(3s);
  auto holders = net.holders("news");
  std::erase(holders, forger);
  std::erase(holders, victim);
  ASSERT_GE(holders.size(), 2u);
  NotifyBody ev;
  ev.kind = NotifyKind::kServe;
  ev.id.fill(0x5b);
  ev.topic = "news";
  ev.event = test::event_json(666);
  ev.publishers = {net.sim->node(holders[0]).id()};  // "only this one serves the victim"
  for (size_t h : holders)
    NodeInternals::engine(net.sim->node(forger)).request(net.sim->contact(h), Method::kQuasarNotify, encode_notify(ev),
                                                          [](RpcResult&&) {});
  net.sim->run_for(2s);
  ev.event = test::event_json(7);
  ev.publishers.clear();
  for (size_t h : net.holders("news")) ev.publishers.push_back(net.sim->node(h).id());
  for (size_t h : holders)
    NodeInternals::engine(net.sim->node(publisher)).request(net.sim->contact(h), Method::kQuasarNotify, encode_notify(ev),
                                                             [](RpcResult&&) {});
  net.sim->run_for(2s);
  auto got = net.ps(victim).take_events("news");
  EXPECT_NE(std::find(got.begin(), got.end(), test::event_json(7)), got.end());
}

// Each subscriber is sent at most `serving` copies of an event, however many holders hold it.
TEST(SybilPubsub, EachSubscriberIsSentAtMostServingCopies) {
  PubsubNet net;
  const std::vector<size_t> subscribers = {1, 4, 9, 15, 22};
  for (size_t s : subscribers) net.ps(s).subscribe("news");
  net.sim->run_for(3s);
  ASSERT_GT(net.holders("news").size(), net.ps(0).config().serving);
  const uint64_t before = net.sum([](const PubsubStats& s) { return s.holder_deliveries; });
  net.ps(12).publish("news", test::event_json(1));  // holders known by now? the first event also routes ahead
  net.sim->run_for(3s);
  net.ps(12).publish("news", test::event_json(2));
  net.sim->run_for(3s);
  for (size_t s : subscribers) EXPECT_EQ(net.ps(s).take_events("news").size(), 2u) << s;
  const uint64_t deliveries = net.sum([](const PubsubStats& s) { return s.holder_deliveries; }) - before;
  // Two events, each at most `serving` copies per subscriber, plus its own when a subscriber is itself a
  // holder; the first may also be delivered by the end of the route it took ahead of the lookup. (Every
  // holder serving everyone would be 2 x 20 per subscriber.)
  EXPECT_LE(deliveries, subscribers.size() * (2 * (net.ps(0).config().serving + 1) + 1));
  EXPECT_GT(net.sum([](const PubsubStats& s) { return s.serve_skipped; }), 0u);
}

// 12 of a topic's 20 holders, the 12 closest to its key (ids placed there), acknowledge events and drop them.
// Each event is still served to the subscriber by an honest holder unless all 8 chosen for it are droppers
// (C(12,8)/C(20,8) = 0.4% of events); with every one of 8 holders serving every subscriber, the 8 closest
// (all droppers) would silence the topic.
TEST(SybilPubsub, DroppingHoldersClosestToTheKeyDoNotSilenceATopic) {
  PubsubConfig pc;
  pc.quasar = false;  // the rendezvous alone (Quasar's filters would also find the subscriber here)
  PubsubNet net(pc);
  const NodeId key = dht_key("news");
  std::vector<size_t> order;
  for (size_t i = 0; i < net.sim->size(); ++i) order.push_back(i);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return (net.sim->node(a).id() ^ key) < (net.sim->node(b).id() ^ key); });
  // The subscriber and the publisher are the two farthest from the key (neither is a holder).
  const size_t victim = order.back(), publisher = order[order.size() - 2];
  for (size_t k = 0; k < 12; ++k)
    NodeInternals::engine(net.sim->node(order[k])).set_handler(Method::kQuasarNotify,
                                                                [](const IncomingRequest&, const Reply& r) { r.ok({}); });
  net.ps(victim).subscribe("news");
  net.sim->run_for(3s);
  net.ps(publisher).publish("news", test::event_json(0));  // the publisher's first lookup
  net.sim->run_for(3s);
  for (int e = 1; e <= 50; ++e) {
    net.ps(publisher).publish("news", test::event_json(e));
    net.sim->run_for(500ms);
  }
  net.sim->run_for(3s);
  auto got = net.ps(victim).take_events("news");
  size_t of_50 = 0;
  for (int e = 1; e <= 50; ++e) of_50 += std::find(got.begin(), got.end(), test::event_json(e)) != got.end();
  EXPECT_GE(of_50, 49u);
}

// 16 attackers place their ids near a topic's key (6 bits shared, where 200 honest nodes put 3 or 4), so they
// are 16 of its 20 holders, and acknowledge events and drop them. Serving 8 of the 20, an event would be lost
// for a subscriber whenever all 8 chosen are attackers: C(16,8)/C(20,8) = 10% of deliveries. The subscribers see
// the holders packed near the key (pubsub/serving.h crowding()) and register naming none, and so does the
// publisher with its events, so every holder serves them and the 4 honest ones deliver everything; with that
// check off (crowded = 0) the attack works.
namespace {
struct PlacedDroppersRun {
  size_t delivered = 0;                                  // of 10 subscribers x 40 events
  uint64_t crowded_registrations = 0, crowded_events = 0;  // the subscribers', the publisher's
};
PlacedDroppersRun run_with_placed_droppers(double crowded) {
  SimConfig c;
  c.seed = 11;
  c.node.pubsub.quasar = false;  // the rendezvous alone
  c.node.pubsub.crowded = crowded;
  Simulator sim(c);
  for (int i = 0; i < 200; ++i) sim.add_node();
  const NodeId key = dht_key("news");
  std::vector<size_t> attackers;
  for (uint32_t seed = 0; attackers.size() < 16; ++seed) {
    std::array<uint8_t, 32> s{};
    s[0] = 0xa7;
    for (int b = 0; b < 4; ++b) s[1 + b] = static_cast<uint8_t>(seed >> (8 * b));
    Identity id = Identity::from_seed(s);
    if (Identity::id_of(id.public_key()).common_prefix_bits(key) >= 6) attackers.push_back(sim.add_node(c.node, id));
  }
  EXPECT_EQ(sim::join_network(sim, 11), sim.size());
  sim.run_for(5s);
  for (size_t a : attackers)
    NodeInternals::engine(sim.node(a)).set_handler(Method::kQuasarNotify, [](const IncomingRequest&, const Reply& r) { r.ok({}); });
  std::vector<size_t> subscribers;
  for (size_t i = 0; subscribers.size() < 10; i += 17) subscribers.push_back(i);
  const size_t publisher = 199;
  for (size_t i : subscribers) sim.node(i).pubsub().subscribe("news");
  sim.run_for(5s);
  for (int e = 0; e < 40; ++e) {
    sim.node(publisher).pubsub().publish("news", test::event_json(static_cast<uint64_t>(e)));
    sim.run_for(300ms);
  }
  sim.run_for(5s);
  PlacedDroppersRun run;
  for (size_t i : subscribers) {
    run.delivered += sim.node(i).pubsub().take_events("news").size();
    run.crowded_registrations += sim.node(i).pubsub().stats().crowded_registrations;
  }
  run.crowded_events = sim.node(publisher).pubsub().stats().crowded_events;
  return run;
}
}  // namespace

TEST(SybilPubsub, IdsPlacedAroundATopicDoNotSilenceIt) {
  const auto defended = run_with_placed_droppers(2.0);
  EXPECT_EQ(defended.delivered, 400u);
  // Both sides judge: the subscribers (one may misjudge the density, see serving.h) and the publisher.
  EXPECT_GE(defended.crowded_registrations + defended.crowded_events, 10u);
  EXPECT_GE(defended.crowded_registrations, 8u);
  EXPECT_GE(defended.crowded_events, 40u);
  const auto open = run_with_placed_droppers(0);
  EXPECT_LT(open.delivered, 395u);
  EXPECT_EQ(open.crowded_registrations + open.crowded_events, 0u);
}

// A renewal that arrives while the holder is still proving the subscriber's endpoint (a subscribe and its
// quick re-registration) is applied when the proof ends; before, the proof's statement was no longer the
// newest and the newest was not the one being proven, so neither was held until the next renewal.
TEST(SybilPubsub, AStatementReceivedWhileTheEndpointIsProvenIsHeld) {
  PubsubNet net;
  const size_t subscriber = 4, holder = 9;
  const Identity& id = NodeInternals::engine(net.sim->node(subscriber)).identity();
  const Endpoint ep = net.sim->endpoint(subscriber);
  auto first = net.statement(id, id.public_key(), "quick", true, ep, 2s);
  auto second = net.statement(id, id.public_key(), "quick", true, ep, 1s);
  net.send(subscriber, {holder}, first);
  net.send(subscriber, {holder}, second);
  net.sim->run_for(3s);
  EXPECT_EQ(net.ps(holder).held_subscribers("quick"), 1u);
  EXPECT_EQ(net.ps(holder).stats().registrations_unverified, 0u);
}

TEST(SybilPubsub, ASubscriberEndpointCannotBeInvented) {
  PubsubNet net;
  const size_t forger = 7, holder = 9;
  // A key the forger owns, registered with an address where nothing answers for it (to dodge the per-block
  // fairness rule, or to aim deliveries at someone else).
  std::array<uint8_t, 32> seed{};
  seed[0] = 0x77;
  Identity sock = Identity::from_seed(seed);
  auto b = net.statement(sock, sock.public_key(), "news", true, net.sim->endpoint(12));
  net.send(forger, {holder}, b);
  net.sim->run_for(5s);
  EXPECT_EQ(net.ps(holder).held_subscribers("news"), 0u);
  EXPECT_EQ(net.ps(holder).stats().registrations_unverified, 1u);
  // The same from the forger's own key and address is held (the holder reached it there).
  auto own = net.statement(NodeInternals::engine(net.sim->node(forger)).identity(), NodeInternals::engine(net.sim->node(forger)).identity().public_key(),
                           "news", true, net.sim->endpoint(forger));
  net.send(forger, {holder}, own);
  net.sim->run_for(3s);
  EXPECT_EQ(net.ps(holder).held_subscribers("news"), 1u);
}

TEST(SybilPubsub, SubscriberListStaysBoundedAndFairUnderAFloodFromOneBlock) {
  SubscriberList list;
  const size_t max = 64;
  const TimePoint t0{1'000'000'000};
  auto entry = [&](uint32_t n, uint32_t ip, uint64_t issued = 1, bool active = true) {
    std::array<uint8_t, 32> seed{};
    std::memcpy(seed.data(), &n, 4);
    auto id = Identity::from_seed(seed);
    return SubscriberList::Entry{Contact::from_key(id.public_key(), Endpoint::v4(ip, 4000)), issued,
                                 t0 + std::chrono::seconds(n % 100), active, false, {}};
  };
  const uint32_t flood = 0xcb007100;  // 203.0.113.0/24
  size_t full = 0;
  for (uint32_t n = 0; n < 1000; ++n)
    full += list.apply(entry(n, flood + 1 + n % 250), max) == SubscriberList::Result::kFull;
  EXPECT_EQ(list.size(), max);
  EXPECT_EQ(full, 1000 - max);
  // 40 subscribers from 40 other blocks all get in, each displacing a flood entry.
  for (uint32_t n = 2000; n < 2040; ++n)
    EXPECT_EQ(list.apply(entry(n, 0x50000001 + (n << 8)), max), SubscriberList::Result::kDisplaced) << n;
  EXPECT_EQ(list.size(), max);
  size_t from_flood = 0;
  for (const auto& [id, e] : list.entries()) from_flood += e.contact.endpoint.prefix() == Endpoint::v4(flood, 1).prefix();
  EXPECT_EQ(from_flood, max - 40);
  // The flood cannot push them out again, and a second block cannot take more than its share.
  for (uint32_t n = 3000; n < 3100; ++n) list.apply(entry(n, flood + 7), max);
  EXPECT_EQ(list.size(), max);
  from_flood = 0;
  for (const auto& [id, e] : list.entries()) from_flood += e.contact.endpoint.prefix() == Endpoint::v4(flood, 1).prefix();
  EXPECT_EQ(from_flood, max - 40);
  // Newest statement wins; an unsubscribe is remembered, so the older subscribe replayed is stale.
  auto honest = entry(2000, 0x50000001 + (2000u << 8), 5);
  EXPECT_EQ(list.apply(honest, max), SubscriberList::Result::kApplied);
  EXPECT_EQ(list.apply(honest, max), SubscriberList::Result::kStale);
  auto gone = entry(2000, 0x50000001 + (2000u << 8), 6, false);
  EXPECT_EQ(list.apply(gone, max), SubscriberList::Result::kApplied);
  EXPECT_EQ(list.apply(honest, max), SubscriberList::Result::kStale);
  EXPECT_EQ(list.active(), max - 1);
  // Leases end.
  list.expire(t0 + 1000s);
  EXPECT_EQ(list.size(), 0u);
}

TEST(SybilPubsub, AFilterClaimingNearlyEverythingIsNotTrusted) {
  PubsubNet net;
  auto filled = [](double fill, uint64_t salt) {
    FilterBody f;
    f.levels.assign(3, BloomFilter(8192, 4));
    sim::Rng rng(salt);
    for (auto& l : f.levels)
      for (size_t i = 0; i < l.bits(); ++i)
        if (rng.below(1000) < fill * 1000) l.set_bit(i);
    return f;
  };
  // Above max_fill (0.5): every level is saturated, counted, matches nothing and is not passed on.
  NodeInternals::engine(net.sim->node(0)).notify(net.sim->contact(1), Method::kQuasarUpdate, encode_filter(filled(0.6, 1)));
  net.sim->run_for(1s);
  EXPECT_EQ(net.ps(1).stats().saturated_levels, 3u);
  EXPECT_EQ(NodeInternals::engine(net.sim->node(1)).drops().get(DropReason::kSaturatedFilter), 3u);
  int matched = 0;
  for (int t = 0; t < 200; ++t) matched += net.ps(1).filter_level("topic-" + std::to_string(t)) >= 0;
  EXPECT_EQ(matched, 0);
  // Below it, a filter is taken as it is: its level 0 becomes our level 1. Checked as it arrives: node 2 then
  // pushes its own filter, and if node 0 is one of its neighbours, node 0's pubsub answers with its real filter,
  // which replaces the one sent here (no sooner than two coalescing delays later).
  auto ok = filled(0.3, 2);
  ok.levels[0].add(TopicHash::of("real"));
  NodeInternals::engine(net.sim->node(0)).notify(net.sim->contact(2), Method::kQuasarUpdate, encode_filter(ok));
  for (int ms = 0; ms < 1000 && net.ps(2).filter_level("real") < 0; ++ms) net.sim->run_for(1ms);
  EXPECT_EQ(net.ps(2).stats().saturated_levels, 0u);
  EXPECT_EQ(net.ps(2).filter_level("real"), 1);
}
