// RealDriver with several io threads: nodes placed round-robin, each node's work and callbacks on its own
// thread, DHT put/get, messages and a stream between nodes of different threads, call(fn) with every node at
// hand, and the calls that could deadlock refused.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "crypto/key_cache.h"
#include "node/node_internals.h"
#include "storjnet/real_driver.h"

using namespace storjnet;

namespace {

Endpoint loopback_any() {
  auto e = *Endpoint::parse("127.0.0.1:1");
  e.port = 0;
  return e;
}

// Nodes on a driver with `threads` io threads, and the thread each node must run on.
struct Net {
  RealDriver driver;
  std::vector<Node*> nodes;
  std::vector<Endpoint> eps;
  std::vector<std::thread::id> home;  // node i's io thread
  std::atomic<int> wrong_thread{0};   // callbacks that ran off their node's thread
  std::atomic<int> checked{0};

  explicit Net(unsigned threads) : driver(RealDriver::Options{.threads = threads}) {}
  ~Net() { driver.stop(); }  // before the counters the callbacks use

  void add(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      nodes.push_back(&driver.add_node(loopback_any(), Identity::generate()));
      eps.push_back(driver.local_endpoint(*nodes.back()));
      home.push_back(driver.call(*nodes.back(), [] { return std::this_thread::get_id(); }));
    }
  }
  // Counts a callback of node i that runs on another thread.
  void on_home(size_t i) {
    ++checked;
    if (std::this_thread::get_id() != home[i]) ++wrong_thread;
  }
  // Starts `start(done)` on node i's thread and waits for `done`, which must run on node i's thread too.
  template <class T, class Start>
  T await(size_t i, Start start) {
    std::promise<T> p;
    auto f = p.get_future();
    driver.post(*nodes[i], [&, i] {
      on_home(i);
      start([&, i](T v) {
        on_home(i);
        p.set_value(std::move(v));
      });
    });
    if (f.wait_for(std::chrono::seconds(60)) != std::future_status::ready) throw std::runtime_error("timed out");
    return f.get();
  }
  bool join_all() {
    for (size_t i = 1; i < nodes.size(); ++i)
      if (!await<bool>(i, [&](auto done) { nodes[i]->dht().bootstrap({eps[0]}, done); })) return false;
    return true;
  }
};

}  // namespace

TEST(RealThreads, NodesArePlacedRoundRobinAndStayOnTheirThread) {
  Net net(3);
  net.add(7);
  EXPECT_EQ(net.driver.threads(), 3u);
  EXPECT_EQ(net.driver.size(), 7u);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(net.driver.thread_of(*net.nodes[i]), i % 3) << i;
  // Three distinct threads, none of them this one; the same one for nodes of one thread.
  EXPECT_NE(net.home[0], net.home[1]);
  EXPECT_NE(net.home[1], net.home[2]);
  EXPECT_NE(net.home[0], net.home[2]);
  EXPECT_EQ(net.home[0], net.home[3]);
  EXPECT_EQ(net.home[1], net.home[4]);
  EXPECT_NE(net.home[0], std::this_thread::get_id());
  EXPECT_FALSE(net.driver.on_io_thread());
  EXPECT_FALSE(net.driver.on_thread_of(*net.nodes[0]));
  net.driver.call(*net.nodes[1], [&] {
    EXPECT_TRUE(net.driver.on_io_thread());
    EXPECT_TRUE(net.driver.on_thread_of(*net.nodes[1]));
    EXPECT_TRUE(net.driver.on_thread_of(*net.nodes[4]));
    EXPECT_FALSE(net.driver.on_thread_of(*net.nodes[0]));
  });
  // Pings between every pair (first contact: key agreement on both threads), every callback on its node's.
  for (size_t i = 0; i < 7; ++i)
    for (size_t j = 0; j < 7; ++j)
      if (i != j) {
        auto c = net.await<std::optional<Contact>>(i, [&](auto done) { net.nodes[i]->ping_address(net.eps[j], done); });
        ASSERT_TRUE(c) << i << "->" << j;
      }
  EXPECT_EQ(net.wrong_thread.load(), 0);
  EXPECT_EQ(net.checked.load(), 2 * 42);
  // A node of another driver is refused.
  RealDriver other;
  EXPECT_THROW(other.thread_of(*net.nodes[0]), std::invalid_argument);
}

TEST(RealThreads, AddNodesMakesEachThreadsShareAtOnceInOrderAndReportsAFailedBind) {
  RealDriver driver(RealDriver::Options{.threads = 2});
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  Node& first = driver.add_node(lo, Identity::generate());  // thread 0: add_nodes goes on from thread 1
  std::vector<RealDriver::NodeSpec> specs;
  std::vector<NodeId> ids;
  for (int i = 0; i < 5; ++i) {
    specs.push_back({{lo}, Identity::generate()});
    ids.push_back(specs.back().identity.id());
  }
  auto nodes = driver.add_nodes(std::move(specs));
  ASSERT_EQ(nodes.size(), 5u);
  EXPECT_EQ(driver.size(), 6u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(driver.thread_of(*nodes[i]), (i + 1) % 2) << i;  // in turn, as add_node would
    EXPECT_EQ(driver.call(*nodes[i], [&] { return nodes[i]->id(); }), ids[i]) << i;  // in the order given
  }
  // Each one answers at its own address.
  for (size_t i = 0; i < 5; ++i) {
    std::promise<std::optional<Contact>> p;
    driver.post(first, [&] { first.ping_address(driver.local_endpoint(*nodes[i]), [&p](auto c) { p.set_value(c); }); });
    auto c = p.get_future().get();
    ASSERT_TRUE(c) << i;
    EXPECT_EQ(c->id, ids[i]);
  }
  // A taken port: the other nodes are made, and the failure is thrown.
  std::vector<RealDriver::NodeSpec> more;
  more.push_back({{lo}, Identity::generate()});
  more.push_back({{driver.local_endpoint(first)}, Identity::generate()});
  more.push_back({{lo}, Identity::generate()});
  try {
    driver.add_nodes(std::move(more));
    FAIL() << "a bind on a taken port succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot bind"), std::string::npos);
  }
  EXPECT_EQ(driver.size(), 8u);
  // From an io thread only that thread's share can be made: two nodes (one for each thread) are refused before
  // either is made.
  EXPECT_THROW(driver.call(first, [&] {
    std::vector<RealDriver::NodeSpec> two;
    two.push_back({{lo}, Identity::generate()});
    two.push_back({{lo}, Identity::generate()});
    driver.add_nodes(std::move(two));
  }), std::logic_error);
  EXPECT_EQ(driver.size(), 8u);
  std::vector<RealDriver::NodeSpec> none;
  none.push_back({{}, Identity::generate()});  // no address
  EXPECT_THROW(driver.add_nodes(std::move(none)), std::invalid_argument);
}

TEST(RealThreads, DhtMessagesAndAStreamBetweenThreads) {
  Net net(2);
  net.add(10);
  ASSERT_TRUE(net.join_all());
  // Puts from nodes of thread 0, gets from nodes of thread 1 (and the other way round).
  for (size_t j = 0; j < 10; ++j) {
    std::string key = "threads-key-" + std::to_string(j), value = "value-" + std::to_string(j * 3);
    size_t putter = j, getter = (j + 3) % 10;  // j + 3 is odd when j is even: always the other thread
    ASSERT_NE(net.driver.thread_of(*net.nodes[putter]), net.driver.thread_of(*net.nodes[getter]));
    auto put = net.await<PutResult>(putter, [&](auto done) {
      net.nodes[putter]->dht().put(key, as_bytes(value), [done](const PutResult& r) { done(r); });
    });
    EXPECT_TRUE(put.ok) << put.error;
    auto got = net.await<GetResult>(getter, [&](auto done) { net.nodes[getter]->dht().get(key, done); });
    ASSERT_TRUE(got.value) << key;
    EXPECT_EQ(std::string(got.value->begin(), got.value->end()), value);
  }
  // Messages by id (found through the DHT) from a node of thread 1 to one of thread 0.
  NodeId to = net.nodes[2]->id();  // ids are fixed at creation
  for (int k = 0; k < 5; ++k) {
    bool ok = net.await<bool>(5, [&](auto done) { net.nodes[5]->messages().send(to, std::to_string(k), done); });
    EXPECT_TRUE(ok) << k;
  }
  auto inbox = net.driver.call(*net.nodes[2], [&] { return net.nodes[2]->messages().take_all(); });
  EXPECT_EQ(inbox[net.nodes[5]->id()], (std::vector<std::string>{"0", "1", "2", "3", "4"}));

  // A stream from node 0 (thread 0) to node 7 (thread 1): 1 MiB, bit-exact, read as it arrives on node 7.
  const size_t a = 0, b = 7;
  auto sid = net.await<std::optional<StreamId>>(a, [&](auto done) { net.nodes[a]->streams().open(net.nodes[b]->id(), done); });
  ASSERT_TRUE(sid);
  Bytes data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + i / 251);
  Bytes got;
  std::promise<void> received;
  std::function<void()> read_more = [&] {
    net.on_home(b);
    auto r = net.nodes[b]->streams().read(*sid, std::nullopt);
    if (!r) return received.set_value();  // closed early: the comparison below fails
    got.insert(got.end(), r->begin(), r->end());
    if (got.size() >= data.size()) return received.set_value();
    net.nodes[b]->streams().on_readable(*sid, read_more);
  };
  net.driver.post(*net.nodes[b], [&] { net.nodes[b]->streams().on_readable(*sid, read_more); });
  size_t off = 0;
  while (off < data.size()) {
    auto n = net.await<std::optional<size_t>>(a, [&](auto done) {
      auto& st = net.nodes[a]->streams();
      size_t len = std::min<size_t>(data.size() - off, 64 * 1024);
      st.write(*sid, ByteView(data).subspan(off, len), [&st, id = *sid, done](std::optional<size_t> n) {
        if (n && *n == 0) return st.on_writable(id, [done] { done(size_t{0}); });
        done(n);
      });
    });
    ASSERT_TRUE(n);
    off += *n;
  }
  ASSERT_EQ(received.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(got, data);
  EXPECT_TRUE(net.await<bool>(a, [&](auto done) { net.nodes[a]->streams().close(*sid, done); }));
  EXPECT_EQ(net.wrong_thread.load(), 0);
  EXPECT_GT(net.checked.load(), 60);
}

TEST(RealThreads, CallWithoutANodeSeesEveryNodeAndRunsAlone) {
  Net net(3);
  net.add(6);
  // call(fn): every node at hand, inline calls to any node, and nothing else runs meanwhile.
  std::atomic<int> running{0}, overlap{0};
  std::vector<std::promise<void>> done(6 * 20);
  for (int round = 0; round < 20; ++round) {
    for (size_t i = 0; i < 6; ++i)
      net.driver.post(*net.nodes[i], [&, i, round] {
        if (running.load() != 0) ++overlap;
        done[round * 6 + i].set_value();
      });
    net.driver.post([&] {
      ++running;
      for (size_t i = 0; i < 6; ++i) {
        EXPECT_TRUE(net.driver.on_thread_of(*net.nodes[i]));
        net.driver.call(*net.nodes[i], [&] { (void)net.nodes[i]->dht().peers(); });  // inline: no deadlock
      }
      --running;
    });
  }
  size_t peers = net.driver.call([&] {
    size_t n = 0;
    for (auto* node : net.nodes) n += node->dht().peers().size();
    return n;
  });
  EXPECT_EQ(peers, 0u);
  for (auto& d : done) d.get_future().wait();
  EXPECT_EQ(overlap.load(), 0);
  // Waiting on another thread from an io thread could deadlock: refused.
  auto refused = net.driver.call(*net.nodes[0], [&] {
    int n = 0;
    try {
      net.driver.call(*net.nodes[1], [] {});
    } catch (const std::logic_error&) {
      ++n;
    }
    try {
      net.driver.call([] {});
    } catch (const std::logic_error&) {
      ++n;
    }
    net.driver.call(*net.nodes[3], [] {});  // same thread: inline
    return n;
  });
  EXPECT_EQ(refused, 2);
  // One thread: call(fn) and call(node, fn) are the same thread, inline from it, as before.
  Net one(1);
  one.add(2);
  EXPECT_EQ(one.home[0], one.home[1]);
  EXPECT_EQ(one.driver.call(*one.nodes[0], [&] { return one.driver.call([] { return std::this_thread::get_id(); }); }),
            one.home[0]);
}

TEST(RealThreads, ZeroThreadsMeansOnePerCore) {
  RealDriver driver(RealDriver::Options{.threads = 0});
  EXPECT_EQ(driver.threads(), std::max(1u, std::thread::hardware_concurrency()));
}

// First-contact key work (the pair key of a peer this process never talked to) runs on the driver's key
// threads while the io thread goes on, and the pings waiting for it leave in order once it is done; with no
// key threads it runs on the io thread. Either way every ping is answered.
TEST(RealThreads, FirstContactKeyWorkRunsOnTheKeyThreads) {
  for (unsigned key_threads : {2u, 0u}) {
    SCOPED_TRACE(key_threads);
    crypto::clear_key_caches();
    RealDriver driver(RealDriver::Options{.threads = 1, .key_threads = key_threads});
    Node& a = driver.add_node(loopback_any(), Identity::generate());
    Node& b = driver.add_node(loopback_any(), Identity::generate());
    Contact cb = Contact::from_key(b.public_key(), driver.local_endpoint(b));
    std::promise<std::vector<bool>> done;
    auto answers = std::make_shared<std::vector<bool>>();
    driver.post(a, [&, answers] {
      for (int i = 0; i < 3; ++i)
        a.ping(cb, [&, answers, id = b.id()](std::optional<NodeId> got) {
          answers->push_back(got == id);
          if (answers->size() == 3) done.set_value(*answers);
        });
    });
    auto f = done.get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    EXPECT_EQ(f.get(), std::vector<bool>(3, true));
    auto offloaded = [&](Node& n) { return driver.call(n, [&] { return NodeInternals::engine(n).stats(); }); };
    EngineStats sa = offloaded(a), sb = offloaded(b);
    // A derived the pair key for its pings (and cached it for the process: B found it there).
    EXPECT_EQ(sa.key_work_offloaded, key_threads ? 1u : 0u);
    EXPECT_EQ(sb.key_work_offloaded, 0u);
    driver.stop();
  }
}
