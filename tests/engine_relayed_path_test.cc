// Relayed paths in the engine (src/engine/engine.h, docs/protocol.md 5.3): a direct datagram ends a peer's
// relayed path, and a relayed datagram the peer sent before it (late, or duplicated by the relay) neither sets
// the path again nor gets its answer sent to the relay's address (where nobody can open it): it is answered at
// the peer's direct address. Once the peer has not been heard directly for Engine::kDirectHold, a relayed
// datagram sets the path again (the direct one may have broken). Driven by hand.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "test_env.h"

using namespace storjnet;
using namespace std::chrono_literals;
using storjnet::test::ManualEnv;

namespace {

struct RelayedPath : ::testing::Test {
  ManualEnv env{1};
  Engine a{env, test::test_identity(1, 0x44)};
  test::Forger b{test::test_identity(2, 0x44), a.identity().public_key()};
  const PublicKey& bk = b.identity().public_key();
  Endpoint b_ep = *Endpoint::parse("198.51.100.2:4000");
  Contact relay = Contact::from_key(test::test_identity(3, 0x44).public_key(), *Endpoint::parse("198.51.100.3:4000"));
  int served = 0;
  uint32_t rpc = 0;

  void SetUp() override {
    a.set_handler(Method::kMessageNotify, [this](const IncomingRequest&, const Reply& r) {
      ++served;
      r.ok(as_bytes("ack"));
    });
  }
  Bytes request() { return b.request(Method::kMessageNotify, as_bytes("hi"), ++rpc); }
  // Where A's datagrams went since the last call: to B directly, to the relay.
  std::pair<size_t, size_t> sent() {
    size_t direct = 0, relayed = 0;
    for (const auto& s : env.outbox) {
      direct += s.to == b_ep;
      relayed += s.to == relay.endpoint;
    }
    env.outbox.clear();
    return {direct, relayed};
  }
};

}  // namespace

TEST_F(RelayedPath, ALateRelayedDatagramKeepsTheDirectPath) {
  a.on_datagram(b_ep, request());  // B first talks directly
  ASSERT_EQ(served, 1);
  sent();
  ASSERT_TRUE(a.on_relayed(relay, request()));  // then only through the relay: answered there
  ASSERT_EQ(served, 2);
  ASSERT_TRUE(a.via(bk));
  EXPECT_GT(sent().second, 0u);

  Bytes late = request();         // sent through the relay, still on its way
  a.on_datagram(b_ep, request());  // the direct path works again: it ends the relayed one
  ASSERT_EQ(served, 3);
  EXPECT_FALSE(a.via(bk));
  sent();
  ASSERT_TRUE(a.on_relayed(relay, late));
  EXPECT_EQ(served, 4);  // handled
  EXPECT_FALSE(a.via(bk)) << "a late relayed datagram set the relayed path again";
  auto [direct, relayed] = sent();
  EXPECT_GT(direct, 0u) << "answered at B's direct address";
  EXPECT_EQ(relayed, 0u);

  // Direct datagrams keep the hold; kDirectHold after the last one, the relayed path is taken again.
  env.advance(Engine::kDirectHold - 1s);
  a.on_datagram(b_ep, request());
  env.advance(Engine::kDirectHold - 1s);
  ASSERT_TRUE(a.on_relayed(relay, request()));
  EXPECT_FALSE(a.via(bk));
  env.advance(2s);
  ASSERT_TRUE(a.on_relayed(relay, request()));
  auto via = a.via(bk);
  ASSERT_TRUE(via);
  EXPECT_EQ(via->key, relay.key);
  EXPECT_EQ(served, 7);
}

TEST_F(RelayedPath, APathSetOnPurposeIsNotHeldBack) {
  a.on_datagram(b_ep, request());
  ASSERT_TRUE(a.on_relayed(relay, request()));
  a.on_datagram(b_ep, request());  // direct again: held
  ASSERT_FALSE(a.via(bk));
  a.set_via(bk, relay);  // the node chose the relay (a fallback): relayed datagrams keep it
  ASSERT_TRUE(a.on_relayed(relay, request()));
  ASSERT_TRUE(a.via(bk));
  EXPECT_TRUE(a.heard_via(bk));
}

// Engine::route names where datagrams for a peer go now (the /api/status streams' `route`): through its relay
// (unheard until a datagram came back through it), at its direct address after a relay ended, or directly.
TEST_F(RelayedPath, RouteNamesWhereDatagramsGo) {
  Contact at_b = Contact::from_key(bk, b_ep);
  Contact at_relay = Contact::from_key(bk, relay.endpoint);
  EXPECT_EQ(a.route(at_b), "direct 198.51.100.2:4000");
  a.set_via(bk, relay);
  EXPECT_EQ(a.route(at_b), "relayed via 198.51.100.3:4000 unheard");
  ASSERT_TRUE(a.on_relayed(relay, request()));
  EXPECT_EQ(a.route(at_b), "relayed via 198.51.100.3:4000");
  env.advance(10s);
  a.on_datagram(b_ep, request());  // the direct path ends the relayed one
  env.advance(1500ms);
  EXPECT_EQ(a.route(at_relay), "direct 198.51.100.2:4000 after a relay, heard 1500 ms ago");
}

// A peer heard once at its own address (never proven there) and now relayed: what A sends it goes to the relay,
// so the anti-amplification budget of the peer's own address does not apply (that of the relay's does, in the
// relay_forward). Before, A withheld its larger requests to such a peer and challenged its address through the
// relay, whose echo came from the relay's address and could never prove it: a relayed stream stalled for good
// (the netlab's sym3->rest3, 2026-12-05).
TEST_F(RelayedPath, ARelayedPeersOwnAddressBudgetDoesNotHoldItsDatagrams) {
  a.on_datagram(b_ep, request());  // B heard once at its own address, small: A may send it 3x that, unproven
  ASSERT_EQ(served, 1);
  a.set_via(bk, relay);
  sent();
  uint64_t challenges = a.stats().challenges_sent;
  Bytes big(1100, 0x33);
  for (int i = 0; i < 4; ++i) a.request(Contact::from_key(bk, b_ep), Method::kMessageNotify, big, [](RpcResult&&) {});
  size_t to_relay = 0;
  for (const auto& s : env.outbox)
    if (s.to == relay.endpoint) to_relay += s.data.size();
  EXPECT_EQ(a.drops().get(DropReason::kAmplificationLimit), 0u);
  EXPECT_EQ(a.stats().challenges_sent, challenges);
  EXPECT_GT(to_relay, 4 * big.size());  // every request, in relay_forwards
  EXPECT_EQ(sent().first, 0u);          // nothing to B's own address
}
