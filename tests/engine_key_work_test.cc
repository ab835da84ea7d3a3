// First-contact key work off the node's thread (src/engine/engine_key_work.cc): the engine driven by hand
// with a ManualEnv that offloads, so each job runs exactly when the test says.
#include <gtest/gtest.h>

#include "crypto/key_cache.h"
#include "engine/engine.h"
#include "test_env.h"
#include "wire/datagram.h"

using namespace storjnet;
using storjnet::test::Forger;
using storjnet::test::ManualEnv;
using storjnet::test::test_identity;

namespace {

struct KeyWork : ::testing::Test {
  ManualEnv ea{1}, eb{2};
  Engine a{ea, test_identity(1, 0x4b)}, b{eb, test_identity(2, 0x4b)};
  Endpoint ep_a = *Endpoint::parse("10.0.0.1:4000"), ep_b = *Endpoint::parse("10.0.0.2:4000");
  Contact ca = Contact::from_key(a.identity().public_key(), ep_a);
  Contact cb = Contact::from_key(b.identity().public_key(), ep_b);
  std::vector<std::string> served;  // B's handler: request bodies in the order served

  KeyWork() {
    crypto::clear_key_caches();  // the pair keys of these identities may be cached by an earlier test
    b.set_handler(Method::kMessageNotify, [this](const IncomingRequest& q, const Reply& r) {
      served.emplace_back(q.payload.begin(), q.payload.end());
      r.ok(q.payload);
    });
  }
  void pump() { test::pump(ea, a, ep_a, eb, b, ep_b); }
  std::vector<std::string> send_three() {
    auto answers = std::make_shared<std::vector<std::string>>();
    for (const char* body : {"one", "two", "three"})
      a.request(cb, Method::kMessageNotify, as_bytes(body), [answers](RpcResult&& r) {
        answers->emplace_back(r.ok() ? std::string(r.payload.begin(), r.payload.end()) : "failed");
      });
    pump();
    ea.run_jobs();
    eb.run_jobs();
    pump();
    return *answers;
  }
};

}  // namespace

// A's messages to a peer it never talked to wait for the pair key, derived off the node's thread, and then
// leave in the order they were sent; B answers each.
TEST_F(KeyWork, SendsToANewPeerWaitForItsKeyAndLeaveInOrder) {
  ea.offloads = true;
  a.request(cb, Method::kMessageNotify, as_bytes("one"), [](RpcResult&&) {});
  a.request(cb, Method::kMessageNotify, as_bytes("two"), [](RpcResult&&) {});
  EXPECT_TRUE(ea.outbox.empty());
  EXPECT_EQ(ea.jobs.size(), 1u);  // one job for the peer, whatever waits on it
  EXPECT_EQ(a.session_count(), 0u);
  ea.jobs.front().first();  // the work is done on the other core; the node has not heard yet
  EXPECT_TRUE(ea.outbox.empty());
  ea.jobs.front().second();
  ea.jobs.clear();
  EXPECT_EQ(ea.outbox.size(), 2u);
  EXPECT_EQ(a.stats().key_work_offloaded, 1u);
  pump();
  EXPECT_EQ(served, (std::vector<std::string>{"one", "two"}));
  // The session exists now: the next request leaves at once.
  a.request(cb, Method::kMessageNotify, as_bytes("three"), [](RpcResult&&) {});
  EXPECT_EQ(ea.outbox.size(), 1u);
  EXPECT_TRUE(ea.jobs.empty());
}

// B's key work for a new sender happens off its thread: the sender's datagrams wait for it and are then
// handled in the order they came, the first-contact budget paid once. (The sender is a Forger: an engine
// sending from this process would have put the pair key in the process-wide cache, sparing B the work.)
TEST_F(KeyWork, FirstDatagramsOfANewSenderWaitForItsKeyAndAreHandledInOrder) {
  eb.offloads = true;
  Forger sender(test_identity(60, 0x4b), b.identity().public_key());
  uint32_t rpc = 1;
  for (const char* body : {"one", "two", "three"})
    b.on_datagram(ep_a, sender.request(Method::kMessageNotify, as_bytes(body), rpc++));
  EXPECT_TRUE(served.empty());
  EXPECT_TRUE(eb.outbox.empty());
  EXPECT_EQ(eb.run_jobs(), 1u);
  EXPECT_EQ(served, (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(eb.outbox.size(), 3u);  // three answers
  EXPECT_EQ(b.stats().key_work_offloaded, 1u);
  EXPECT_EQ(b.stats().key_derivations, 1u);
  EXPECT_EQ(b.session_count(), 1u);
  // The session exists now: the next datagram is handled at once.
  b.on_datagram(ep_a, sender.request(Method::kMessageNotify, as_bytes("four"), rpc++));
  EXPECT_EQ(served.size(), 4u);
  EXPECT_TRUE(eb.jobs.empty());
}

TEST_F(KeyWork, BothEndsOffloadingTalkAsWithout) {
  ea.offloads = eb.offloads = true;
  EXPECT_EQ(send_three(), (std::vector<std::string>{"one", "two", "three"}));
  // A's key work put the pair key in the process-wide cache: B found it there and had none to do.
  EXPECT_EQ(a.stats().key_work_offloaded, 1u);
  EXPECT_EQ(b.stats().key_work_offloaded, 0u);
}

// A send's key work caches the peer's key conversion (point checks that cost more than the X25519), as the same
// work in place would: another node of the process that meets the peer does not convert it again. The pair key is
// cached only when the work is back on the node's thread, so no datagram of the peer opens ahead of those held
// for the job. The key work for a sender not authenticated yet caches nothing: fresh keys must not fill the
// process-wide cache.
TEST_F(KeyWork, ASendsKeyWorkCachesThePeersConversionAFirstDatagramsDoesNot) {
  Forger sender(test_identity(61, 0x4b), b.identity().public_key());  // converts B's key, uncached
  const uint64_t before = crypto::conversions_computed();
  ea.offloads = true;
  a.request(cb, Method::kMessageNotify, as_bytes("one"), [](RpcResult&&) {});
  ASSERT_EQ(ea.jobs.size(), 1u);
  ea.jobs.front().first();  // the work, on the other core
  EXPECT_EQ(crypto::conversions_computed(), before + 1);  // B's key
  crypto::SessionKey key;
  EXPECT_FALSE(crypto::cached_pair_key(a.identity().public_key(), b.identity().public_key(), key));
  ea.jobs.front().second();  // back on A's thread
  ea.jobs.clear();
  EXPECT_TRUE(crypto::cached_pair_key(a.identity().public_key(), b.identity().public_key(), key));
  EXPECT_EQ(ea.outbox.size(), 1u);
  ManualEnv ec{3};
  Engine c{ec, test_identity(3, 0x4b)};
  c.request(cb, Method::kMessageNotify, as_bytes("two"), [](RpcResult&&) {});  // in place: a new pair
  EXPECT_EQ(ec.outbox.size(), 1u);
  EXPECT_EQ(crypto::conversions_computed(), before + 1);  // B's key was converted already
  eb.offloads = true;
  b.on_datagram(ep_a, sender.request(Method::kMessageNotify, as_bytes("three")));
  EXPECT_EQ(eb.run_jobs(), 1u);
  EXPECT_EQ(served, (std::vector<std::string>{"three"}));  // authentic, and served
  EXPECT_EQ(crypto::conversions_computed(), before + 2);  // the sender's key
  EXPECT_TRUE(crypto::x25519_of(sender.identity().public_key()));
  EXPECT_EQ(crypto::conversions_computed(), before + 3);  // not kept: converted again
}

// A forged datagram under a real key: the key work is done once, off the thread; the datagram is refused
// and the key remembered as failed, so more forgeries under it cost a tag check each and no more key work.
TEST_F(KeyWork, ForgeriesAfterTheKeyWorkAreRefusedWithoutMoreOfIt) {
  eb.offloads = true;
  Forger liar(test_identity(70, 0x4b), b.identity().public_key());
  auto forged = [&] {
    Bytes d = liar.request(Method::kMessageNotify, as_bytes("x"));
    d.back() ^= 1;
    return d;
  };
  b.on_datagram(ep_a, forged());
  b.on_datagram(ep_a, forged());
  EXPECT_EQ(eb.jobs.size(), 1u);
  EXPECT_EQ(eb.run_jobs(), 1u);
  EXPECT_EQ(b.drops().get(DropReason::kAuthFailed), 2u);
  b.on_datagram(ep_a, forged());
  EXPECT_TRUE(eb.jobs.empty());
  EXPECT_EQ(b.drops().get(DropReason::kAuthFailed), 3u);
  EXPECT_EQ(b.stats().key_derivations, 1u);
  EXPECT_TRUE(served.empty());
  EXPECT_EQ(b.session_count(), 0u);
  crypto::SessionKey key;  // nothing of the liar's key work entered the process-wide cache
  EXPECT_FALSE(crypto::cached_pair_key(liar.identity().public_key(), b.identity().public_key(), key));
}

// Bounds: datagrams held for one sender's key (beyond: dropped, counted), and jobs at once (beyond: the key
// work is done in place, as without offload); every held datagram of an honest sender is served.
TEST_F(KeyWork, HeldDatagramsAndJobsAreBounded) {
  eb.offloads = true;
  Forger one(test_identity(80, 0x4b), b.identity().public_key());
  for (uint32_t i = 1; i <= Engine::kMaxKeyJobQueue + 5; ++i)
    b.on_datagram(ep_a, one.request(Method::kMessageNotify, as_bytes("m"), i));
  EXPECT_EQ(b.drops().get(DropReason::kKeyBudget), 5u);
  for (uint64_t i = 0; i < Engine::kMaxKeyJobs + 3; ++i) {
    Forger f(test_identity(100 + i, 0x4b), b.identity().public_key());
    b.on_datagram(*Endpoint::from_ip("10.1." + std::to_string(i / 200) + "." + std::to_string(i % 200), 7),
                  f.request(Method::kMessageNotify, as_bytes("n")));
  }
  EXPECT_EQ(eb.jobs.size(), Engine::kMaxKeyJobs);
  EXPECT_EQ(served.size(), 4u);  // the senders past the cap, served at once with the work done in place
  EXPECT_EQ(b.stats().key_derivations, Engine::kMaxKeyJobs + 4);
  eb.run_jobs();
  EXPECT_EQ(served.size(), Engine::kMaxKeyJobQueue + 4 + Engine::kMaxKeyJobs - 1);
}

// An engine destroyed while its key work runs: the work's end reaches nothing.
TEST_F(KeyWork, KeyWorkEndingAfterItsEngineIsGoneDoesNothing) {
  ManualEnv ec{3};
  ec.offloads = true;
  {
    Engine c{ec, test_identity(3, 0x4b)};
    c.request(cb, Method::kMessageNotify, as_bytes("late"), [](RpcResult&&) { ADD_FAILURE() << "answered"; });
    ASSERT_EQ(ec.jobs.size(), 1u);
  }
  ec.run_jobs();
  EXPECT_TRUE(ec.outbox.empty());
}

// A sender key that is no usable point (order 4): its key work fails off the thread; its datagrams are
// refused as a bad key, and the key is remembered, so the next costs no key work.
TEST_F(KeyWork, AnUnusableSenderKeyIsRefusedAfterItsKeyWorkAndRemembered) {
  eb.offloads = true;
  const PublicKey unusable{};
  const crypto::SessionKey any{};
  auto datagram = [&](uint64_t counter) {
    Bytes m = msg::make(msg::kRequest, 1, static_cast<uint8_t>(Method::kMessageNotify), as_bytes("x"));
    return msg::seal(b.config().network_id, unusable, any, wire::make_nonce(1, 2, counter), msg::whole_frame(m));
  };
  b.on_datagram(ep_a, datagram(0));
  b.on_datagram(ep_a, datagram(1));
  EXPECT_EQ(eb.run_jobs(), 1u);
  EXPECT_EQ(b.drops().get(DropReason::kBadKey), 2u);
  b.on_datagram(ep_a, datagram(2));
  EXPECT_TRUE(eb.jobs.empty());
  EXPECT_EQ(b.drops().get(DropReason::kBadKey), 3u);
  EXPECT_TRUE(served.empty());
}
