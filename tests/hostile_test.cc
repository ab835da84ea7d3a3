// Hostile traffic against the engine (docs/protocol.md, "Threat model"): forged source addresses cannot
// turn a node into an amplifier, floods of fresh keys cannot starve honest peers of CPU, one peer or prefix
// cannot take the pending-RPC pool or the hold queue, and restarts with the clock stepped back keep talking.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "dht/codec.h"
#include "node/node_internals.h"
#include "crypto/key_cache.h"
#include "engine/engine.h"
#include "storjnet/dht.h"
#include "storjnet/simulator.h"
#include "test_env.h"
#include "wire/datagram.h"

using namespace storjnet;
using storjnet::test::Forger;
using storjnet::test::ManualEnv;
using storjnet::test::test_identity;

namespace {

constexpr Method kAllMethods[] = {Method::kPing,          Method::kStun,        Method::kFindNode,
                                  Method::kFindValue,     Method::kStore,       Method::kMessageNotify,
                                  Method::kStreamOpen,    Method::kStreamData,  Method::kStreamClose,
                                  Method::kStreamWindow,  Method::kQuasarUpdate, Method::kQuasarNotify};

Bytes payload_for(Method m) {
  switch (m) {
    case Method::kFindNode: return dht::encode_id_request(NodeId());
    case Method::kFindValue: return dht::encode_id_request(dht_key("big"));
    case Method::kStore: {
      StoredValue v;
      v.key = dht_key("small");
      v.value = Bytes(100, 1);
      v.version = 1;
      return dht::encode_store(v);
    }
    case Method::kPing:
    case Method::kStun: return {};
    default: return Bytes(64, 0x42);
  }
}

}  // namespace

// A node whose datagrams carry the victim's address sends sealed, valid requests of every method (as
// requests and as one-way messages) to a server holding a 64 KiB value and many contacts. The victim
// receives at most 3x what the attacker sent, per method.
TEST(Amplification, ForgedSourceGetsAtMostThreeTimesWhatTheAttackerSentForEveryMethod) {
  Simulator sim;
  size_t victim = sim.add_node(), server = sim.add_node();
  std::optional<bool> stored;
  sim.node(server).dht().put("big", Bytes(kMaxValueSize, 7), [&](const PutResult& r) { stored = r.ok; });
  for (int i = 0; i < 40; ++i) {  // fill the server's routing table: find_node answers are large
    size_t n = sim.add_node();
    sim.node(n).ping(sim.contact(server), [](auto) {});
  }
  sim.run_for(3s);
  ASSERT_TRUE(stored && *stored);

  std::vector<uint64_t> sent(sim.size(), 0);
  uint64_t to_victim = 0;
  size_t attacker = 0;
  sim.set_send_tap([&](size_t from, const Endpoint& to, size_t n) {
    if (from == attacker) sent[from] += n;
    if (from == server && to == sim.endpoint(victim)) to_victim += n;
  });
  for (Method m : kAllMethods) {
    attacker = sim.add_node();  // a fresh key per method: each gets its own budget, measured alone
    sent.resize(sim.size(), 0);
    sim.spoof(attacker, sim.endpoint(victim));
    to_victim = 0;
    Engine& e = NodeInternals::engine(sim.node(attacker));
    for (int k = 0; k < 5; ++k) {
      e.request(sim.contact(server), m, payload_for(m), [](RpcResult&&) {});
      e.notify(sim.contact(server), m, payload_for(m));
    }
    sim.run_for(6s);
    SCOPED_TRACE(std::string(method_name(static_cast<uint8_t>(m))));
    EXPECT_GT(sent[attacker], 0u);
    EXPECT_LE(to_victim, 3 * sent[attacker]);
  }
  // The 64 KiB answer was held for a proof that never came, and dropped.
  EXPECT_GT(NodeInternals::engine(sim.node(server)).drops().get(DropReason::kAmplificationLimit), 0u);
  EXPECT_GT(NodeInternals::engine(sim.node(server)).drops().get(DropReason::kHoldExpired), 0u);
  EXPECT_EQ(NodeInternals::engine(sim.node(server)).held_bytes(), 0u);

  // An honest first contact asking for the same value gets it: the challenge proves its address.
  size_t honest = sim.add_node();
  std::optional<RpcResult> got;
  NodeInternals::engine(sim.node(honest)).request(sim.contact(server), Method::kFindValue, payload_for(Method::kFindValue),
                                    [&](RpcResult&& r) { got = std::move(r); });
  sim.run_until([&] { return got.has_value(); }, 5s);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->ok());
  EXPECT_GT(got->payload.size(), kMaxValueSize);
  EXPECT_TRUE(NodeInternals::engine(sim.node(server)).address_proven(sim.endpoint(honest), sim.contact(honest).key));
}

namespace {
// Two engines over ManualEnv; the test carries every datagram (and can add its own, from any address).
struct Guarded : ::testing::Test {
  EngineConfig config() {
    EngineConfig c;
    c.new_key_rate = 10;
    c.new_key_burst = 10;
    c.new_key_prefix_rate = 5;
    c.new_key_prefix_burst = 5;
    return c;
  }
  ManualEnv ea{1}, eb{2};
  Engine a{ea, test_identity(1), config()}, b{eb, test_identity(2), config()};
  Endpoint ep_a = *Endpoint::parse("10.0.0.1:4000"), ep_b = *Endpoint::parse("10.0.1.2:4000");
  Contact cb = Contact::from_key(b.identity().public_key(), ep_b);

  void pump() {
    while (!ea.outbox.empty() || !eb.outbox.empty()) {
      auto out_a = std::move(ea.outbox);
      ea.outbox.clear();
      for (auto& s : out_a) b.on_datagram(ep_a, s.data);
      auto out_b = std::move(eb.outbox);
      eb.outbox.clear();
      for (auto& s : out_b)
        if (s.to == ep_a) a.on_datagram(ep_b, s.data);
    }
  }
  // Bytes b sent to `to` (and forgets b's outbox).
  uint64_t drain_b(const Endpoint& to) {
    uint64_t n = 0;
    for (auto& s : eb.outbox)
      if (s.to == to) n += s.data.size();
    eb.outbox.clear();
    return n;
  }
  void serve_big() {
    b.set_handler(Method::kFindValue, [](const IncomingRequest&, const Reply& r) { r.ok(Bytes(60000, 3)); });
  }
};
}  // namespace

TEST_F(Guarded, LargeAnswerToAFirstContactWaitsForTheAddressProof) {
  serve_big();
  std::optional<RpcResult> got;
  a.request(cb, Method::kFindValue, {}, [&](RpcResult&& r) { got = std::move(r); });
  pump();
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->ok());
  EXPECT_EQ(got->payload.size(), 60000u);
  EXPECT_EQ(b.stats().challenges_sent, 1u);
  EXPECT_TRUE(b.address_proven(ep_a, a.identity().public_key()));
  // a proved b's address by b's answer to its unguessable rpc id.
  EXPECT_TRUE(a.address_proven(ep_b, b.identity().public_key()));
}

TEST_F(Guarded, PaddedFirstRequestBuysRoomForAnAnswerOfAFewDatagrams) {
  // About what a find_node answer of 20 contacts weighs: two datagrams.
  b.set_handler(Method::kFindNode, [](const IncomingRequest&, const Reply& r) { r.ok(Bytes(2000, 5)); });
  a.set_padded(Method::kFindNode);
  b.set_padded(Method::kFindNode);
  // A method whose answers are small is never padded.
  a.ping(cb, [](std::optional<NodeId>) {});
  ASSERT_EQ(ea.outbox.size(), 1u);
  EXPECT_LT(ea.outbox[0].data.size(), 200u);
  ea.outbox.clear();
  std::optional<RpcResult> got;
  a.request(cb, Method::kFindNode, Bytes(20, 1), [&](RpcResult&& r) { got = std::move(r); });
  ASSERT_EQ(ea.outbox.size(), 1u);
  EXPECT_EQ(ea.outbox[0].data.size(), wire::kMaxDatagram - wire::kCookieSize);  // a full-size PADDED frame
  pump();
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->ok());
  EXPECT_EQ(b.stats().challenges_sent, 0u);  // no round trip for the proof: the answer fit 3x
  // b has answered a, so b's own requests to a go unpadded; a has not answered b yet, so a still pads.
  a.set_handler(Method::kFindNode, [](const IncomingRequest&, const Reply& r) { r.ok(Bytes(10, 1)); });
  Contact ca = Contact::from_key(a.identity().public_key(), ep_a);
  b.request(ca, Method::kFindNode, Bytes(20, 1), [](RpcResult&&) {});
  ASSERT_EQ(eb.outbox.size(), 1u);
  EXPECT_LT(eb.outbox[0].data.size(), 200u);
  pump();
  // a answered b's request: from now on a's requests to b are unpadded too.
  a.request(cb, Method::kFindNode, Bytes(20, 1), [](RpcResult&&) {});
  ASSERT_EQ(ea.outbox.size(), 1u);
  EXPECT_LT(ea.outbox[0].data.size(), 200u);
  pump();
}

TEST_F(Guarded, EchoFromAnotherAddressOrWithAWrongTokenProvesNothing) {
  serve_big();
  Forger f(test_identity(77), b.identity().public_key());
  Endpoint victim = *Endpoint::parse("10.5.5.5:1");
  b.on_datagram(victim, f.request(Method::kFindValue, {}));
  EXPECT_LE(drain_b(victim), 3 * f.request(Method::kFindValue, {}).size());
  EXPECT_GT(b.held_bytes(), 0u);
  // Wrong token from the right address; any token from another address.
  b.on_datagram(victim, f.seal(msg::token(msg::kEcho, 12345)));
  b.on_datagram(*Endpoint::parse("10.6.6.6:1"), f.seal(msg::token(msg::kEcho, 12345)));
  EXPECT_EQ(b.drops().get(DropReason::kBadEcho), 2u);
  EXPECT_FALSE(b.address_proven(victim, f.identity().public_key()));
  // Nothing held leaves; it expires.
  ea.advance(0s);
  eb.advance(5s);
  b.on_wake();
  EXPECT_EQ(b.held_bytes(), 0u);
  EXPECT_GT(b.drops().get(DropReason::kHoldExpired), 0u);
  EXPECT_EQ(drain_b(victim), 0u);
}

// Engine::prove_on_answer (docs/protocol.md 3, PROVING_RESPONSE): the answer to a newcomer's request carries
// an address challenge, and the requester's echo proves its address with one datagram, where a ping of ours
// would take two.
TEST_F(Guarded, AnAnswerCarriesAnAddressChallengeWhoseEchoProvesTheRequester) {
  std::vector<std::pair<PublicKey, bool>> heard;  // b's contact hook: (key, is_response)
  bool asked = false;
  b.set_on_contact([&](const Contact& c, bool is_response) {
    heard.emplace_back(c.key, is_response);
    if (!is_response) asked = b.prove_on_answer(c);
  });
  EXPECT_FALSE(b.prove_on_answer(Contact::from_key(a.identity().public_key(), ep_a)));  // no request handled
  std::optional<NodeId> answered;
  a.ping(cb, [&](std::optional<NodeId> id) { answered = id; });
  pump();
  EXPECT_EQ(answered, b.id());  // the answer is an ordinary response to a
  EXPECT_TRUE(asked);
  EXPECT_EQ(b.stats().answer_challenges, 1u);
  EXPECT_EQ(b.stats().challenges_sent, 0u);
  EXPECT_TRUE(b.address_proven(ep_a, a.identity().public_key()));
  EXPECT_EQ(b.stats().datagrams_out, 1u);  // the answer; a sent the ping and the echo
  EXPECT_EQ(a.stats().datagrams_out, 2u);
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_FALSE(heard[0].second);  // the request
  EXPECT_TRUE(heard[1].second);   // the echo: a receives where it sends from
  EXPECT_EQ(b.drops().total(), 0u);
  // Proven now: the next answer carries nothing.
  a.ping(cb, [](std::optional<NodeId>) {});
  pump();
  EXPECT_FALSE(asked);
  EXPECT_EQ(b.stats().answer_challenges, 1u);
}

TEST_F(Guarded, AForgedSourceNeverEchoesAndAProvingResponseIsEchoedOnlyForOurOwnRequest) {
  b.set_on_contact([&](const Contact& c, bool is_response) {
    if (!is_response) b.prove_on_answer(c);
  });
  // A request from a forged source: the answer, challenge included, stays within 3x, and nothing is proven.
  Forger f(test_identity(77), b.identity().public_key());
  Endpoint victim = *Endpoint::parse("10.5.5.5:1");
  Bytes req = f.request(Method::kPing, {});
  b.on_datagram(victim, req);
  EXPECT_EQ(b.stats().answer_challenges, 1u);
  EXPECT_LE(drain_b(victim), 3 * req.size());
  EXPECT_FALSE(b.address_proven(victim, f.identity().public_key()));
  // a is sent proving responses it never asked for, and a short one: no echo leaves.
  Forger to_a(test_identity(78), a.identity().public_key());
  Bytes unasked = msg::make(msg::kProvingResponse, 4242, static_cast<uint8_t>(Method::kPing), Bytes(8 + 20, 1));
  a.on_datagram(victim, to_a.seal(unasked));
  EXPECT_TRUE(ea.outbox.empty());
  EXPECT_EQ(a.drops().get(DropReason::kUnexpectedResponse), 1u);
  a.on_datagram(victim, to_a.seal(msg::make(msg::kProvingResponse, 4242, 0, Bytes(7, 1))));
  EXPECT_TRUE(ea.outbox.empty());
  EXPECT_EQ(a.drops().get(DropReason::kBadMessage), 1u);
}

TEST_F(Guarded, HeldAnswersAreBoundedPerPrefixAndOthersStillGetServed) {
  serve_big();
  // 10 keys forging addresses in one /24, 3 requests each: at most hold_per_prefix bytes are held for it.
  for (uint64_t i = 0; i < 10; ++i) {
    Forger f(test_identity(100 + i), b.identity().public_key());
    for (uint32_t k = 1; k <= 3; ++k)
      b.on_datagram(*Endpoint::from_ip("10.9.9." + std::to_string(i), 1), f.request(Method::kFindValue, {}, k));
  }
  eb.outbox.clear();
  EXPECT_LE(b.held_bytes(), b.config().amplification.hold_per_prefix);
  EXPECT_GT(b.drops().get(DropReason::kHoldFull), 0u);
  // An honest peer in another prefix is held and then served.
  std::optional<RpcResult> got;
  a.request(cb, Method::kFindValue, {}, [&](RpcResult&& r) { got = std::move(r); });
  pump();
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->ok());
}

TEST_F(Guarded, FloodOfFreshKeysAndForgedDatagramsDoesNotStopAnHonestFirstContact) {
  // 300 fresh keys (valid requests, forged sources) and 300 forged datagrams under one key.
  for (uint64_t i = 0; i < 300; ++i) {
    Forger f(test_identity(1000 + i), b.identity().public_key());
    b.on_datagram(*Endpoint::from_ip("10.66." + std::to_string(i / 250) + "." + std::to_string(i % 250), 7),
                  f.request(Method::kPing, {}));
  }
  Forger liar(test_identity(5000), b.identity().public_key());
  for (int i = 0; i < 300; ++i) {
    Bytes d = liar.request(Method::kPing, {});
    d.back() ^= 1;  // tag fails
    b.on_datagram(*Endpoint::parse("10.67.0.1:7"), d);
  }
  // Key work stayed within the budget (the burst; virtual time did not move), and the forged key cost one.
  EXPECT_LE(b.stats().key_derivations, 10u);
  EXPECT_GT(b.drops().get(DropReason::kKeyBudget), 0u);
  size_t cookie_replies = 0, request_size = Forger(test_identity(9), b.identity().public_key()).request(Method::kPing, {}).size();
  std::map<Endpoint::Prefix, size_t> replies_per_prefix;
  for (auto& s : eb.outbox) {
    bool cookie = s.data.size() == wire::kCookieReplySize;  // smaller than what arrived
    cookie_replies += cookie;
    if (cookie) ++replies_per_prefix[s.to.prefix()];
    EXPECT_LE(s.data.size(), 3 * request_size);  // the few served: within the 3x budget
  }
  // Each datagram past the key budget got a cookie reply, until its prefix's cookie-reply budget ran out.
  for (auto& [prefix, n] : replies_per_prefix) EXPECT_LE(n, b.config().cookie_reply_prefix_rate);
  EXPECT_EQ(cookie_replies + b.drops().get(DropReason::kCookieBudget), 600u - 10u);
  EXPECT_GT(b.drops().get(DropReason::kCookieBudget), 0u);
  eb.outbox.clear();
  // The honest peer is new to b: it gets a cookie, resends with it, and is served.
  std::optional<NodeId> pong;
  a.ping(cb, [&](std::optional<NodeId> id) { pong = id; });
  crypto::clear_key_caches();  // a's derivation in this process must not spare b its own
  pump();
  ASSERT_TRUE(pong);
  EXPECT_EQ(*pong, b.id());
  EXPECT_EQ(a.stats().cookies_received, 1u);
}

// Cookie replies cost a send each: past the budget for a prefix (and in all), unknown senders get no answer, so
// a flood costs a header parse and two bucket checks per datagram. Budgets refill with time.
TEST_F(Guarded, CookieRepliesAreBudgetedPerPrefixAndInAll) {
  EngineConfig c = config();
  c.cookie_reply_prefix_rate = 20;
  c.cookie_reply_rate = 50;
  Engine v{eb, test_identity(3), c};
  uint64_t key = 10000;
  auto flood = [&](const std::string& net, int n) {
    for (int i = 0; i < n; ++i) {
      Forger f(test_identity(key++), v.identity().public_key());
      v.on_datagram(*Endpoint::from_ip(net + std::to_string(i % 200 + 1), 7), f.request(Method::kPing, {}));
    }
  };
  flood("10.90.0.", 110);  // the first 10 spend the key budget; 20 cookies for this /24
  EXPECT_EQ(v.stats().key_derivations, 10u);
  EXPECT_EQ(v.stats().cookies_sent, 20u);
  EXPECT_EQ(v.drops().get(DropReason::kCookieBudget), 80u);
  for (int p = 1; p <= 3; ++p) flood("10.91." + std::to_string(p) + ".", 30);  // 20 + 10 more, then 0 in all
  EXPECT_EQ(v.stats().cookies_sent, 50u);
  EXPECT_EQ(v.drops().get(DropReason::kCookieBudget), 80u + 10u + 20u + 30u);
  size_t cookies = 0;
  for (auto& s : eb.outbox) cookies += s.data.size() == wire::kCookieReplySize;
  EXPECT_EQ(cookies, 50u);  // and the 10 served pings
  EXPECT_EQ(eb.outbox.size(), 60u);
  eb.outbox.clear();
  // A second later the budgets are back: the key budget serves 10 again, and the next sender, in a fresh
  // prefix, gets its cookie.
  eb.advance(1s);
  flood("10.92.0.", 11);
  EXPECT_EQ(v.stats().key_derivations, 20u);
  EXPECT_EQ(v.stats().cookies_sent, 51u);
}

// A peer whose requests carry a forged source gets at most unproven_request_rate of them answered, however
// many it sends; the address challenge (one per retry interval) goes to the forged address and is never
// echoed. An honest peer sending as many is challenged while half its budget is left, echoes, and is
// answered every time.
TEST_F(Guarded, RequestsFromAnUnprovenAddressAreAnsweredAtMostItsBudget) {
  Forger f(test_identity(7000), b.identity().public_key());
  Endpoint victim = *Endpoint::parse("10.95.0.1:1");
  double budget = b.config().amplification.unproven_request_rate;
  for (uint32_t i = 1; i <= 2000; ++i) b.on_datagram(victim, f.request(Method::kPing, {}, i));
  EXPECT_EQ(b.drops().get(DropReason::kUnprovenLimit), 2000u - static_cast<uint64_t>(budget));
  EXPECT_EQ(b.stats().challenges_sent, 1u);
  EXPECT_EQ(eb.outbox.size(), static_cast<size_t>(budget) + 1);
  eb.outbox.clear();
  // The budget refills at its rate, and the challenge is repeated at most once per retry interval.
  eb.advance(1s);
  for (uint32_t i = 2001; i <= 4000; ++i) b.on_datagram(victim, f.request(Method::kPing, {}, i));
  EXPECT_EQ(eb.outbox.size(), static_cast<size_t>(budget) + 1);
  EXPECT_EQ(b.stats().challenges_sent, 2u);
  eb.outbox.clear();

  int pongs = 0;
  for (int i = 0; i < 2000; ++i) {
    a.ping(cb, [&](std::optional<NodeId> id) { pongs += id.has_value(); });
    pump();
  }
  EXPECT_EQ(pongs, 2000);
  EXPECT_TRUE(b.address_proven(ep_a, a.identity().public_key()));
  EXPECT_EQ(b.drops().get(DropReason::kUnprovenLimit), 2u * (2000u - static_cast<uint64_t>(budget)));
}

TEST_F(Guarded, CookiesAreBoundToTheAddressExpireAndKeepNoState) {
  Endpoint x = *Endpoint::parse("10.70.0.1:9"), y = *Endpoint::parse("10.71.0.1:9");
  for (uint64_t i = 0; i < 10; ++i) {  // spend the burst
    Forger f(test_identity(2000 + i), b.identity().public_key());
    b.on_datagram(x, f.request(Method::kPing, {}));
  }
  eb.outbox.clear();
  size_t sessions = b.session_count();
  Forger f(test_identity(3000), b.identity().public_key());
  b.on_datagram(x, f.request(Method::kPing, {}));
  ASSERT_EQ(eb.outbox.size(), 1u);
  auto reply = wire::decode(eb.outbox[0].data, b.config().network_id);
  eb.outbox.clear();
  ASSERT_TRUE(reply.datagram);
  wire::Cookie cookie = std::get<wire::CookieReply>(*reply.datagram).cookie;
  EXPECT_EQ(b.session_count(), sessions);  // a cookie reply keeps nothing

  uint64_t work = b.stats().key_derivations;
  b.on_datagram(y, f.request(Method::kPing, {}, 1, &cookie));  // another address
  EXPECT_EQ(b.stats().key_derivations, work);
  EXPECT_EQ(b.drops().get(DropReason::kBadCookie), 1u);
  eb.outbox.clear();

  b.on_datagram(x, f.request(Method::kPing, {}, 2, &cookie));  // its own address: served
  EXPECT_EQ(b.stats().key_derivations, work + 1);
  EXPECT_EQ(b.session_count(), sessions + 1);
  eb.outbox.clear();

  Forger g(test_identity(3001), b.identity().public_key());
  eb.advance(b.config().cookie_lifetime * 2 + 1s);  // two rotations later; the burst refilled meanwhile
  for (uint64_t i = 0; i < 10; ++i) {
    Forger h(test_identity(4000 + i), b.identity().public_key());
    b.on_datagram(x, h.request(Method::kPing, {}));
  }
  b.on_datagram(x, g.request(Method::kPing, {}, 1, &cookie));
  EXPECT_EQ(b.drops().get(DropReason::kBadCookie), 2u);
}

TEST_F(Guarded, FailedKeysCostOneDerivation) {
  Forger liar(test_identity(6000), b.identity().public_key());
  for (int i = 0; i < 5; ++i) {
    Bytes d = liar.request(Method::kPing, {});
    d.back() ^= 1;
    b.on_datagram(*Endpoint::parse("10.80.0.1:7"), d);
  }
  EXPECT_EQ(b.stats().key_derivations, 1u);
  EXPECT_EQ(b.drops().get(DropReason::kAuthFailed), 5u);
  // The key itself is honest: its genuine datagram still authenticates.
  b.on_datagram(*Endpoint::parse("10.80.0.1:7"), liar.request(Method::kPing, {}));
  EXPECT_EQ(b.session_count(), 1u);
}

TEST(PendingShare, OnePeerOrPrefixCannotTakeThePool) {
  ManualEnv env;
  EngineConfig c;
  c.max_pending_rpcs = 64;
  c.max_pending_per_peer = 8;
  c.max_pending_per_prefix = 12;
  Engine e(env, test_identity(1), c);
  auto peer = [](uint64_t n, const char* ep) { return Contact::from_key(test_identity(n).public_key(), *Endpoint::parse(ep)); };
  int overloaded = 0;
  auto cb = [&](RpcResult&& r) { overloaded += r.status == RpcStatus::kOverloaded; };
  for (int i = 0; i < 20; ++i) e.request(peer(2, "10.1.1.1:1"), Method::kPing, {}, cb);
  EXPECT_EQ(e.pending_rpcs(), 8u);
  for (int i = 0; i < 20; ++i) e.request(peer(3, "10.1.1.2:1"), Method::kPing, {}, cb);  // same /24
  EXPECT_EQ(e.pending_rpcs(), 12u);
  EXPECT_EQ(overloaded, 28);
  EXPECT_EQ(e.drops().get(DropReason::kPendingShare), 28u);
  for (int i = 0; i < 8; ++i) e.request(peer(4, "10.2.2.2:1"), Method::kPing, {}, cb);  // others still can
  EXPECT_EQ(e.pending_rpcs(), 20u);
  EXPECT_EQ(overloaded, 28);
  // Shares are returned when requests end.
  env.advance(3s);
  e.on_wake();
  env.advance(3s);
  e.on_wake();
  env.advance(3s);
  e.on_wake();
  EXPECT_EQ(e.pending_rpcs(), 0u);
  e.request(peer(2, "10.1.1.1:1"), Method::kPing, {}, cb);
  EXPECT_EQ(e.pending_rpcs(), 1u);
}

TEST(Epoch, RestartOnItsStorageWithTheClockSteppedBackStillTalks) {
  auto dir = std::filesystem::temp_directory_path() / ("storjnet-epoch-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Simulator sim;
  sim.add_node();
  sim.add_node();
  sim.restart(0, NodeConfig{}, make_sqlite_storage(dir / "db"));
  std::optional<NodeId> first, second;
  sim.node(0).ping(sim.contact(1), [&](auto id) { first = id; });
  sim.run_for(1s);
  ASSERT_TRUE(first);
  uint64_t old_epoch = NodeInternals::engine(sim.node(0)).last_epoch();

  // Node 1 keeps its session (and replay window) for node 0; node 0 restarts with its wall clock an hour back.
  sim.step_wall_clock(0, -std::chrono::hours(1));
  sim.restart(0, NodeConfig{}, make_sqlite_storage(dir / "db"));
  sim.node(0).ping(sim.contact(1), [&](auto id) { second = id; });
  sim.run_for(1s);
  EXPECT_TRUE(second);
  EXPECT_GT(NodeInternals::engine(sim.node(0)).last_epoch(), old_epoch);
  EXPECT_EQ(NodeInternals::engine(sim.node(1)).drops().get(DropReason::kStaleSession), 0u);
  std::filesystem::remove_all(dir);
}
