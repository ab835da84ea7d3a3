// Small pieces of the real driver: its random source (src/real/fast_random.h) never repeats, re-keys from the
// OS as promised and after a fork; its pool of spent connection buffers (src/real/buffer_pool.h) is bounded;
// and its lazy wake timer (real_driver.cc, Host::wake_at) runs every engine timer on time whichever way the
// deadline moves.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <set>

#include "engine/engine.h"
#include "node/node_internals.h"
#include "real/buffer_pool.h"
#include "real/conn_out.h"
#include "real/fast_random.h"
#include "real/free_memory.h"
#include "storjnet/real_driver.h"

using namespace storjnet;

namespace {
uint64_t draw(real::FastRandom& r) {
  uint64_t v;
  r.fill({reinterpret_cast<uint8_t*>(&v), sizeof v});
  return v;
}
}  // namespace

TEST(RealPieces, FastRandomDoesNotRepeatAndReseedsFromTheOs) {
  real::FastRandom r;
  std::set<uint64_t> seen;
  const size_t n = 2 * real::FastRandom::kReseedBytes / 8 + 100;  // past two re-keys from the OS
  for (size_t i = 0; i < n; ++i) EXPECT_TRUE(seen.insert(draw(r)).second) << i;
  EXPECT_GE(r.reseeds(), 3u);
  // Odd sizes across block boundaries, and a large request (straight from the OS): no all-zero output.
  for (size_t len : {1ul, 7ul, 33ul, real::FastRandom::kLarge, real::FastRandom::kLarge + 1, 4096ul}) {
    Bytes b(len, 0);
    r.fill(b);
    Bytes z(len, 0);
    EXPECT_NE(b, z) << len;
  }
  // Two generators do not share a stream.
  real::FastRandom other;
  EXPECT_NE(draw(other), draw(r));
}

TEST(RealPieces, FastRandomForkedChildDoesNotRepeatTheParent) {
  real::FastRandom r;
  draw(r);  // keyed, with most of a block left
  int fd[2];
  ASSERT_EQ(::pipe(fd), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    uint64_t v = draw(r);
    ssize_t w = ::write(fd[1], &v, sizeof v);
    ::_exit(w == sizeof v ? 0 : 1);
  }
  uint64_t child = 0;
  ASSERT_EQ(::read(fd[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fd[0]);
  ::close(fd[1]);
  // The parent's next value: the child must not have produced it (nor the one after).
  uint64_t p1 = draw(r), p2 = draw(r);
  EXPECT_NE(child, p1);
  EXPECT_NE(child, p2);
}

TEST(RealPieces, BufferPoolIsBoundedAndKeepsSizes) {
  real::BufferPool pool;
  EXPECT_TRUE(pool.take().empty());
  pool.give(Bytes(100));                                          // too small to keep
  pool.give(Bytes(real::BufferPool::kMaxCapacity + 1));           // too large to keep
  EXPECT_EQ(pool.size(), 0u);
  for (size_t i = 0; i < 2 * real::BufferPool::kMax; ++i) pool.give(Bytes(128 * 1024 + i));
  EXPECT_EQ(pool.size(), real::BufferPool::kMax);
  Bytes b = pool.take();
  EXPECT_GE(b.size(), 128u * 1024);  // its old size: resizing it to a record's size writes nothing
  EXPECT_EQ(pool.size(), real::BufferPool::kMax - 1);
}

// A connection's send queue keeps owned and kept buffers in the order queued and counts their bytes; once
// written, owned buffers go to the pool and kept ones are let go (their holder's last reference frees them).
TEST(RealPieces, ConnOutWritesOwnedAndKeptBuffersInOrder) {
  real::ConnOut out;
  real::BufferPool pool;
  auto kept = std::make_shared<Bytes>(Bytes(8192, 2));
  std::weak_ptr<Bytes> watch = kept;
  out.push(Bytes(5000, 1));
  out.push_kept(ByteView(*kept), kept);
  kept.reset();  // only the queue holds it now
  out.push(Bytes(6000, 3));
  EXPECT_EQ(out.queued(), 5000u + 8192 + 6000);
  std::vector<ByteView> views;
  EXPECT_EQ(out.first(2, [&](ByteView v) { views.push_back(v); }), 2u);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].size(), 5000u);
  EXPECT_EQ(views[0][0], 1);
  EXPECT_EQ(views[1].size(), 8192u);
  EXPECT_EQ(views[1][0], 2);
  EXPECT_FALSE(watch.expired());
  out.written(2, pool);
  EXPECT_TRUE(watch.expired());  // the kept buffer is released, not pooled
  EXPECT_EQ(pool.size(), 1u);    // the owned one is
  EXPECT_EQ(pool.take().size(), 5000u);
  EXPECT_EQ(out.queued(), 6000u);
  EXPECT_FALSE(out.empty());
  auto again = std::make_shared<Bytes>(Bytes(100, 4));
  watch = again;
  out.push_kept(ByteView(*again), again);
  again.reset();
  out.clear();  // a connection shut with buffers queued
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(out.queued(), 0u);
  EXPECT_TRUE(watch.expired());
}

// Deadlines moving earlier, later and back, as the engine moves them on every request: each timer runs, and
// none before its time.
TEST(RealPieces, WakeTimerRunsEveryTimerOnTime) {
  RealDriver driver;
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  Node& n = driver.add_node(lo, Identity::generate());
  using Clock = std::chrono::steady_clock;
  struct Fired {
    Clock::time_point due, at;
  };
  const std::vector<int> delays_ms = {300, 40, 500, 10, 120, 60, 20, 250};
  std::vector<Fired> fired(delays_ms.size());
  std::promise<void> all;
  size_t count = 0;
  driver.post([&] {
    Engine& e = NodeInternals::engine(n);
    // One extra timer scheduled and cancelled: the deadline moves earlier and back later.
    TimerId early = e.schedule(std::chrono::milliseconds(5), [] { ADD_FAILURE() << "cancelled timer ran"; });
    for (size_t i = 0; i < delays_ms.size(); ++i) {
      fired[i].due = Clock::now() + std::chrono::milliseconds(delays_ms[i]);
      e.schedule(std::chrono::milliseconds(delays_ms[i]), [&, i] {
        fired[i].at = Clock::now();
        if (++count == delays_ms.size()) all.set_value();
      });
    }
    e.cancel(early);
  });
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  for (size_t i = 0; i < fired.size(); ++i) EXPECT_GE(fired[i].at, fired[i].due) << delays_ms[i] << " ms";
  // An earlier deadline is not held back by a later one armed before it: 10 ms runs long before 300 ms is due.
  EXPECT_LT(fired[3].at, fired[0].due);
  driver.stop();
}

// The receive batch's headers are set once and reset per use: a datagram too long for its buffer (truncated,
// skipped before the engine) leaves the next ones intact, in the same recvmmsg call and after.
TEST(RealPieces, TruncatedDatagramsDoNotDisturbTheReceiveBatch) {
  RealDriver driver;
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  Node& a = driver.add_node(lo, Identity::generate());
  Node& b = driver.add_node(lo, Identity::generate());
  Endpoint eb = driver.local_endpoint(b);
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(eb.port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Bytes big(3000, 0xab), small(10, 0xcd);
  for (const Bytes* d : {&big, &small, &big})
    ASSERT_EQ(::sendto(fd, d->data(), d->size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(d->size()));
  ::close(fd);
  // Queued behind those three: a HELLO and an authenticated ping from a.
  std::promise<std::optional<Contact>> p;
  driver.post([&] { a.ping_address(eb, [&p](auto c) { p.set_value(c); }); });
  auto c = p.get_future().get();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id, b.id());
  // The small datagram reached the engine (dropped: not our version); the two long ones did not (they would
  // count as oversized).
  auto drops = driver.call([&] { return b.stats().drops; });
  auto count = [&](std::string_view why) {
    for (auto& [name, n] : drops)
      if (name == why) return n;
    return uint64_t(0);
  };
  EXPECT_EQ(count("bad_version"), 1u);
  EXPECT_EQ(count("oversized"), 0u);
  driver.stop();
}

// FreeMemory (src/real/free_memory.h) trims once the resident bytes grew by a megabyte since the last trim and
// stopped growing, and not again while they stay put, whatever their level.
TEST(RealPieces, FreeMemoryTrimsOnceItGrewByAMegabyteAndStopped) {
  constexpr size_t M = real::FreeMemory::kMinGrowth;
  size_t resident = 0;
  int trims = 0;
  real::FreeMemory m({[&] { return resident; }, [&] { ++trims; }});
  resident = M - 1;
  EXPECT_FALSE(m.check());
  resident = 4 * M;  // a burst of work, still growing
  EXPECT_FALSE(m.check());
  resident = 8 * M;
  EXPECT_FALSE(m.check());
  resident = 8 * M + M / 8;  // it ended: its holes are left
  EXPECT_TRUE(m.check());
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(m.check());  // nothing was returned (all in use): no trim again
  resident = 2 * M;                                       // freed and returned: the floor follows it down
  EXPECT_FALSE(m.check());
  resident = 2 * M + M / 5;  // slow growth: a trim once it adds up to a megabyte
  for (int i = 0; i < 5; ++i, resident += M / 5) EXPECT_FALSE(m.check()) << i;  // up to a byte short of it
  EXPECT_TRUE(m.check());
  EXPECT_EQ(trims, 2);
  EXPECT_EQ(m.trims(), 2u);
  // A process already large when the checks start is not trimmed for what it held before them.
  real::FreeMemory later({[] { return 100 * M; }, [&] { ++trims; }});
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(later.check());
  EXPECT_EQ(trims, 2);
  // But what it gained between its start and the first check counts (a 200-node join is over before the
  // first check, a second after the driver started): trimmed once it stopped growing.
  size_t joined = 10 * M;
  real::FreeMemory early({[&] { return joined; }, [&] { ++trims; }});
  joined = 30 * M;
  EXPECT_FALSE(early.check());  // grew since it was made: maybe still growing
  EXPECT_TRUE(early.check());
  EXPECT_EQ(trims, 3);
}

// glibc()'s reading is the process's resident memory: touching 32 MiB raises it by about that much.
TEST(RealPieces, FreeMemoryReadsTheResidentBytes) {
  auto a = real::FreeMemory::glibc();
  size_t before = a.resident_bytes();
  ASSERT_GT(before, 0u);
  constexpr size_t kTouched = 32u << 20;
  std::unique_ptr<uint8_t[]> block(new uint8_t[kTouched]);
  volatile uint8_t* touch = block.get();  // writes the compiler must keep
  for (size_t i = 0; i < kTouched; i += 4096) touch[i] = static_cast<uint8_t>(1 + (i >> 12));
  size_t after = a.resident_bytes();
  EXPECT_GE(after, before + kTouched - (4u << 20)) << before << " -> " << after;
}

// The driver with its free-memory timer on a short period starts, serves and stops cleanly (the timer's pending
// handler outlives the driver's io threads; ASan checks the lifetimes).
TEST(RealPieces, DriverWithTheFreeMemoryTimerStopsCleanly) {
  RealDriver::Options o;
  o.return_free_memory_every = std::chrono::milliseconds(1);
  RealDriver driver(o);
  auto lo = *Endpoint::parse("127.0.0.1:1");
  lo.port = 0;
  Node& a = driver.add_node(lo, Identity::generate());
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(driver.call([&] { return a.id().hex(); }).empty());
}
