// DialBack on a network that lives on one host (make run, storjnetd --nodes, the benches): every contact is
// on a loopback address, where nothing NATs and no helper at another address can probe.
#include <gtest/gtest.h>

#include "dht/dial_back.h"
#include "test_env.h"

using namespace storjnet;
using namespace storjnet::dht;
using storjnet::test::ManualEnv;

namespace {

struct Node {
  ManualEnv env;
  Engine engine;
  RoutingTable table;
  DhtConfig cfg;
  DialBack dial_back;
  explicit Node(uint64_t n)
      : env(n), engine(env, test::test_identity(n, 0x44)), table(engine.id(), 20), dial_back(engine, table, cfg) {}
  // Contacts first..last-1, each on 127.0.0.1 at port 4000 + its number.
  void add_loopback_peers(uint64_t first, uint64_t last) {
    for (uint64_t n = first; n < last; ++n) table.seen(contact_at(n, Endpoint::v4(0x7f000001, 4000 + n)), engine.now());
  }
  DhtStats stats() const {
    DhtStats st;
    dial_back.fill(st);
    return st;
  }
  static Contact contact_at(uint64_t n, Endpoint ep) {
    return Contact::from_key(test::test_identity(n, 0x45).public_key(), ep);
  }
};

Contact contact_at(uint64_t n, Endpoint ep) { return Node::contact_at(n, ep); }

}  // namespace

TEST(DialBackLoopback, ALoopbackContactIsConfirmedWithoutAProbe) {
  Node v(1);
  Contact s = contact_at(2, Endpoint::v4(0x7f000001, 4002));
  ASSERT_EQ(v.table.seen(s, v.engine.now()), RoutingTable::Seen::kAdded);
  v.dial_back.check(s);
  EXPECT_TRUE(v.table.confirmed(s.id));
  EXPECT_TRUE(v.env.outbox.empty());  // no verdict asked: nothing NATs on this host
  DhtStats st = v.stats();
  EXPECT_EQ(st.dial_back_confirmed, 1u);
  EXPECT_EQ(st.dial_back_verdicts_asked, 0u);
}

TEST(DialBackLoopback, ANodeWhosePeersAreAllOnLoopbackIsReachable) {
  Node v(1);
  EXPECT_FALSE(v.dial_back.reachable());  // no peers yet: nothing known
  v.add_loopback_peers(2, 6);
  EXPECT_TRUE(v.dial_back.reachable());
  DhtStats st = v.stats();
  EXPECT_TRUE(st.reachable);
}

TEST(DialBackLoopback, OneContactElsewhereNeedsAProbeAgain) {
  // A node on a host that also has peers out there may sit behind a NAT: only a stranger's probe tells.
  Node v(1);
  v.add_loopback_peers(2, 6);
  Contact out_there = contact_at(9, Endpoint::v4(0x5d000001, 4000));
  v.table.seen(out_there, v.engine.now());
  EXPECT_FALSE(v.dial_back.reachable());
  EXPECT_EQ(v.dial_back.verdict(Endpoint::Family::kV4), DialBackVerdict::kUnknown);  // no self-check yet
  v.dial_back.check(out_there);
  EXPECT_FALSE(v.table.confirmed(out_there.id));
  v.env.advance(DialBack::kFirstVerdict);
  v.engine.on_wake();
  // A self-check ask (it is the one helper not on this host) and a verdict request went to it, nothing else.
  ASSERT_FALSE(v.env.outbox.empty());
  for (const auto& sent : v.env.outbox) EXPECT_EQ(sent.to, out_there.endpoint);
  DhtStats st = v.stats();
  EXPECT_EQ(st.dial_back_self_checks, 1u);
  EXPECT_EQ(st.dial_back_verdicts_asked, 1u);
}

TEST(DialBackLoopback, ANetworkOnOneHostRunsNoSelfCheck) {
  // Every contact on loopback: nothing to prove, no helper at another address. Nothing is sent; the verdict
  // is "reachable".
  Node v(1);
  v.add_loopback_peers(2, 8);
  for (int i = 0; i < 20; ++i) {
    v.env.advance(std::chrono::seconds(30));
    v.engine.on_wake();
  }
  EXPECT_TRUE(v.env.outbox.empty());
  EXPECT_EQ(v.dial_back.verdict(Endpoint::Family::kV4), DialBackVerdict::kReachable);
  DhtStats st = v.stats();
  EXPECT_EQ(st.dial_back_self_checks, 0u);
}
