// A DHT node's peers, driven by hand: which contacts it hands out to whom, and when it checks a newcomer.
#include <gtest/gtest.h>

#include "dht/codec.h"
#include "engine/engine.h"
#include "storjnet/node.h"
#include "test_env.h"

using namespace storjnet;
using namespace storjnet::dht;

TEST(DhtAdvertising, NoPrivateOrLoopbackContactsToAPublicPeer) {
  test::ManualEnv env_a(1);
  std::array<uint8_t, 32> seed{};
  seed[0] = 200;
  Node a(env_a, Identity::from_seed(seed));
  Endpoint ep_a = Endpoint::v4(0x01020304, 4000);
  Contact ca = Contact::from_key(a.public_key(), ep_a);
  // Peers introduce themselves with a ping from private, loopback and public addresses, and echo the address
  // challenge a's answer carries, by which a checks that they receive there before it takes them in.
  std::vector<std::unique_ptr<test::ManualEnv>> envs;
  std::vector<std::unique_ptr<Engine>> peers;
  std::vector<Endpoint> from = {*Endpoint::parse("10.1.2.3:1"), *Endpoint::parse("192.168.1.9:2"),
                                *Endpoint::parse("127.0.0.1:3"), *Endpoint::parse("100.64.0.1:4"),
                                *Endpoint::parse("5.6.7.8:5"), *Endpoint::parse("9.9.9.9:6"),
                                *Endpoint::parse("[fd00::1]:7"), *Endpoint::parse("[2001:db8::5]:8")};
  for (size_t i = 0; i < from.size(); ++i) {
    envs.push_back(std::make_unique<test::ManualEnv>(10 + i));
    seed[0] = static_cast<uint8_t>(i + 1);
    peers.push_back(std::make_unique<Engine>(*envs.back(), Identity::from_seed(seed)));
    peers.back()->ping(ca, [](auto) {});
    for (int round = 0; round < 3; ++round) {
      auto to_a = std::move(envs.back()->outbox);
      envs.back()->outbox.clear();
      for (auto& s : to_a) a.on_datagram(from[i], s.data);
      auto from_a = std::move(env_a.outbox);
      env_a.outbox.clear();
      for (auto& s : from_a)
        if (s.to == from[i]) peers.back()->on_datagram(ep_a, s.data);
    }
  }
  EXPECT_EQ(a.dht().stats().verify_asked, from.size());
  EXPECT_EQ(a.dht().stats().verify_pings, 0u);
  EXPECT_EQ(a.dht().peers().size(), from.size());
  EXPECT_EQ(a.dht().peer_count(), from.size());
  env_a.outbox.clear();
  // A public requester asks for contacts.
  test::ManualEnv env_q(99);
  seed[0] = 150;
  Engine q(env_q, Identity::from_seed(seed));
  std::optional<std::vector<Contact>> got;
  q.request(ca, Method::kFindNode, dht::encode_id_request(dht_key("x")), [&](RpcResult&& r) {
    if (r.ok()) got = dht::decode_contacts(r.payload);
  });
  for (auto& s : env_q.outbox) a.on_datagram(*Endpoint::parse("8.8.4.4:9"), s.data);
  for (auto& s : env_a.outbox) q.on_datagram(ep_a, s.data);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), 3u);  // 5.6.7.8, 9.9.9.9, 2001:db8::5
  for (auto& c : *got) EXPECT_FALSE(c.endpoint.is_private_or_loopback()) << c.endpoint.to_string();
  // A private requester gets everything.
  got.reset();
  env_q.outbox.clear();
  env_a.outbox.clear();
  q.request(ca, Method::kFindNode, dht::encode_id_request(dht_key("x")), [&](RpcResult&& r) {
    if (r.ok()) got = dht::decode_contacts(r.payload);
  });
  // From a new, unproven address the long answer waits for the address proof (challenge, echo): pump both ways.
  for (int round = 0; round < 4 && !got; ++round) {
    auto from_q = std::move(env_q.outbox);
    env_q.outbox.clear();
    for (auto& s : from_q) a.on_datagram(*Endpoint::parse("10.9.9.9:9"), s.data);
    auto from_a = std::move(env_a.outbox);
    env_a.outbox.clear();
    for (auto& s : from_a) q.on_datagram(ep_a, s.data);
  }
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), from.size());  // the requester itself is never included
}

// A request sender with an unproven address: a's answer carries an address challenge, and the sender's echo
// (one datagram) admits it at once. Without the echo (lost, or a forged source) it is pinged: after one
// request attempt's time while its bucket holds fewer than k/2 contacts (the table needs it now: a join, the
// node everyone bootstraps through), and after DhtConfig::newcomer_wait (1 s by default) once its bucket holds
// k/2 (our own lookups usually prove it meanwhile).
namespace {
// Node a and peers in its bucket 0 (first bit unlike a's), each from its own /24 (the address-block limits allow
// 2). peer i pings a with ping(i), and both sides' datagrams are carried until nothing is left (a's check ping
// included; a's datagrams to anyone else are lost).
struct Newcomers {
  explicit Newcomers(NodeConfig cfg, size_t count) : env_a(1), a(env_a, Identity::from_seed(seed_of(201, 0)), cfg) {
    ca = Contact::from_key(a.public_key(), ep_a);
    for (int s = 1; peers.size() < count; ++s) {
      Identity id = Identity::from_seed(seed_of(s, 7));
      if (((id.id() ^ a.id()).bytes()[0] & 0x80) == 0) continue;
      envs.push_back(std::make_unique<test::ManualEnv>(10 + s));
      peers.push_back(std::make_unique<Engine>(*envs.back(), std::move(id)));
      from.push_back(Endpoint::v4(0x05000001 + (static_cast<uint32_t>(peers.size()) << 8), 1000));
    }
  }
  static std::array<uint8_t, 32> seed_of(int a, int b) {
    std::array<uint8_t, 32> seed{};
    seed[0] = static_cast<uint8_t>(a);
    seed[1] = static_cast<uint8_t>(b);
    return seed;
  }
  void exchange(size_t i) {
    for (int round = 0; round < 4; ++round) {
      auto to_a = std::move(envs[i]->outbox);
      envs[i]->outbox.clear();
      for (auto& s : to_a) a.on_datagram(from[i], s.data);
      auto from_a = std::move(env_a.outbox);
      env_a.outbox.clear();
      for (auto& s : from_a)
        if (s.to == from[i]) peers[i]->on_datagram(ep_a, s.data);
    }
  }
  void ping(size_t i) {
    peers[i]->ping(ca, [](auto) {});
    exchange(i);
  }
  // Peer i pings a, and a's answer (with its address challenge) is lost: no echo comes.
  void ask(size_t i) {
    peers[i]->ping(ca, [](auto) {});
    for (auto& s : envs[i]->outbox) a.on_datagram(from[i], s.data);
    envs[i]->outbox.clear();
    env_a.outbox.clear();
  }
  // a's datagrams to every peer delivered, and theirs back, until nothing is left.
  void deliver() {
    for (int round = 0; round < 4; ++round) {
      auto from_a = std::move(env_a.outbox);
      env_a.outbox.clear();
      for (auto& s : from_a)
        for (size_t i = 0; i < peers.size(); ++i)
          if (s.to == from[i]) peers[i]->on_datagram(ep_a, s.data);
      for (size_t i = 0; i < peers.size(); ++i) {
        auto to_a = std::move(envs[i]->outbox);
        envs[i]->outbox.clear();
        for (auto& s : to_a) a.on_datagram(from[i], s.data);
      }
    }
  }
  uint64_t asked() { return a.dht().stats().verify_asked; }
  void wait(Duration d) {  // a's clock moves on, and a wakes
    env_a.advance(d);
    a.on_wake();
  }
  uint64_t pings() { return a.dht().stats().verify_pings; }
  test::ManualEnv env_a;
  Node a;
  Endpoint ep_a = Endpoint::v4(0x01020304, 4000);
  Contact ca;
  std::vector<std::unique_ptr<test::ManualEnv>> envs;
  std::vector<std::unique_ptr<Engine>> peers;
  std::vector<Endpoint> from;
};
}  // namespace

TEST(DhtNewcomers, TheEchoOfTheChallengeOnOurAnswerAdmitsThemAtOnceWithoutAPing) {
  NodeConfig cfg;
  cfg.dht.rpc_timeout = 10s;  // the lookup below outlasts the wait
  const size_t half = cfg.dht.k / 2;
  Newcomers n(cfg, half + 1);
  for (size_t i = 0; i < half; ++i) n.ping(i);
  EXPECT_EQ(n.asked(), half);
  EXPECT_EQ(n.pings(), 0u);
  EXPECT_EQ(n.a.dht().peers().size(), half);
  n.a.dht().get("a lookup that runs", [](GetResult) {});  // its requests are lost: it runs for seconds
  n.ping(half);  // the bucket holds k/2 and a lookup of a's runs: the echo admits it all the same
  EXPECT_EQ(n.asked(), half + 1);
  EXPECT_EQ(n.pings(), 0u);
  EXPECT_EQ(n.a.dht().peers().size(), half + 1);
  n.wait(n.a.dht().config().newcomer_wait);  // the wait ends: nothing left to ping
  n.deliver();
  EXPECT_EQ(n.pings(), 0u);
  EXPECT_EQ(n.a.dht().stats().verify_spared, half + 1);
}

TEST(DhtNewcomers, WithoutTheEchoPingedAfterOneAttemptWhileTheirBucketIsThinAndAfterTheWaitOnceItHoldsHalf) {
  NodeConfig cfg;
  cfg.dht.rpc_timeout = 10s;  // the lookup below outlasts the wait
  cfg.dht.rpc_attempts = 20;  // one attempt: 500 ms, half the wait
  const size_t half = cfg.dht.k / 2;
  Newcomers n(cfg, half + 1);
  ASSERT_GT(n.a.dht().config().newcomer_wait, Duration{});
  for (size_t i = 0; i < half; ++i) n.ask(i);
  EXPECT_EQ(n.asked(), half);
  EXPECT_EQ(n.pings(), 0u);
  n.wait(499ms);
  EXPECT_EQ(n.pings(), 0u);
  n.wait(1ms);
  EXPECT_EQ(n.pings(), half);  // one attempt's time: the bucket was thin
  n.deliver();
  EXPECT_EQ(n.a.dht().peers().size(), half);
  n.a.dht().get("a lookup that runs", [](GetResult) {});  // its requests are lost: it runs for seconds
  n.ask(half);
  EXPECT_EQ(n.pings(), half);  // the bucket holds k/2 and a lookup of a's runs: it waits
  n.wait(n.a.dht().config().newcomer_wait / 2);  // far more than a few round trips: still waiting
  EXPECT_EQ(n.pings(), half);
  n.wait(n.a.dht().config().newcomer_wait / 2);
  n.exchange(half);
  EXPECT_EQ(n.pings(), half + 1);
  EXPECT_EQ(n.a.dht().peers().size(), half + 1);
}

// The full wait is for a's own lookups: with none running a newcomer whose echo did not come waits one request
// attempt's time (a few round trips when they take longer), and one waiting when the last lookup ends is
// pinged then, before its wait is over.
TEST(DhtNewcomers, WithoutTheEchoPingedAfterOneAttemptWhenNoLookupRunsAndWhenTheLastOneEnds) {
  NodeConfig cfg;
  cfg.dht.rpc_timeout = 100ms;  // the lookup below ends (its requests lost) well before the 1 s wait
  cfg.dht.newcomer_wait = 1s;
  const size_t half = cfg.dht.k / 2;
  Newcomers n(cfg, half + 2);
  for (size_t i = 0; i < half; ++i) n.ping(i);
  ASSERT_EQ(n.a.dht().peers().size(), half);
  n.ask(half);  // no lookup runs: one attempt (50 ms)
  EXPECT_EQ(n.pings(), 0u);
  n.wait(49ms);
  EXPECT_EQ(n.pings(), 0u);
  n.wait(1ms);
  n.exchange(half);
  EXPECT_EQ(n.pings(), 1u);
  EXPECT_EQ(n.a.dht().peers().size(), half + 1);
  bool ended = false;
  n.a.dht().get("a lookup that ends", [&](GetResult) { ended = true; });
  n.ask(half + 1);
  EXPECT_EQ(n.pings(), 1u);  // waits for the lookup
  Duration waited{};
  while (!ended && waited < cfg.dht.newcomer_wait) {
    n.env_a.advance(10ms);
    waited += 10ms;
    n.env_a.outbox.clear();  // the lookup's requests are lost
    n.a.on_wake();
  }
  ASSERT_TRUE(ended);
  n.wait(Duration{});
  n.exchange(half + 1);
  EXPECT_LT(waited, cfg.dht.newcomer_wait);
  EXPECT_EQ(n.pings(), 2u);  // pinged when the lookup ended
  EXPECT_EQ(n.a.dht().peers().size(), half + 2);
}

// A forged source (or a node that only sends): neither the challenge on our answer nor our ping reaches it, and
// it never enters the table.
TEST(DhtNewcomers, ANewcomerThatNeitherEchoesNorAnswersNeverEnters) {
  NodeConfig cfg;
  Newcomers n(cfg, 1);
  n.ask(0);
  EXPECT_EQ(n.asked(), 1u);
  for (int i = 0; i < 40; ++i) {  // 4 s: the wait, the ping and its retries
    n.wait(100ms);
    n.env_a.outbox.clear();  // nothing reaches it
  }
  EXPECT_EQ(n.pings(), 1u);
  EXPECT_TRUE(n.a.dht().peers().empty());
  EXPECT_EQ(n.a.dht().peer_count(), 0u);
}
