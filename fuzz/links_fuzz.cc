// links_fuzz: the streams fast path's connection decoder (src/streams/links.cc) between two real Links.
//
// Two engines in one fake environment whose byte connections are in-memory pipes. A opens a connection to
// B (hellos, each side asking for AES-128- or AES-256-OCB as the input says, then a ready record each way);
// the input then drives a sequence of operations: A sends a record of a fuzzed type, stream id, numbers and
// data length (a data record by send, or sealed and kept by send_data, which must open again to its bytes);
// the bytes in flight are delivered to B cut at fuzzed boundaries; now and then one byte is flipped or
// fuzzed bytes are injected. Invariants: no crash or sanitizer report; while the byte stream is untouched, B
// receives exactly the records A sent, in order, and counts nothing bad; once it was touched, B never
// delivers a record that A did not send, or out of order (a flipped byte closes the connection; injected
// bytes may also leave it waiting for a record that never completes).
#include "fuzz_check.h"
#include <fuzzer/FuzzedDataProvider.h>

#include <deque>
#include <map>
#include <vector>

#include "engine/engine.h"
#include "storjnet/conn_provider.h"
#include "streams/links.h"

using namespace storjnet;
using streams::Record;
using streams::RecordType;

namespace {

struct Side;

// One environment per node; byte connections are pipes to the other side.
struct Env final : Environment, ConnProvider {
  Side* self = nullptr;
  Side* other = nullptr;
  ConnListener* listener = nullptr;
  uint64_t rng = 1;
  TimePoint now() override { return TimePoint(0); }
  uint64_t unix_us() override { return 1; }
  void send(const Endpoint&, ByteView) override {}
  void wake_at(TimePoint) override {}
  void random(std::span<uint8_t> out) override {
    for (auto& b : out) b = uint8_t((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 56);
  }
  uint64_t conn_connect(const Endpoint&) override;
  void conn_send(uint64_t, Bytes bytes) override;
  void conn_close(uint64_t) override;
  size_t conn_queued(uint64_t) const override { return 0; }
  // Spent buffers (B's consumed records), so received records also land in reused buffers of stale bytes.
  std::vector<Bytes> pool;
  Bytes conn_buffer() override {
    if (pool.empty()) return {};
    Bytes b = std::move(pool.back());
    pool.pop_back();
    return b;
  }
  void conn_recycle(Bytes b) override {
    if (pool.size() < 4) pool.push_back(std::move(b));
  }
  void set_conn_listener(ConnListener* l) override { listener = l; }
};

struct Sent {
  RecordType type;
  StreamId id;
  uint64_t offset, received, limit;
  Bytes data;
};

struct Side final : streams::Links::Events {
  Env env;
  Engine engine;
  streams::Links links;
  Bytes inbox;  // bytes sent to this side, not yet delivered
  bool closed = false;
  std::deque<Sent> got;
  Side(uint64_t seed, bool aes256)
      : engine(env, Identity::from_seed(seed_of(seed))), links(engine, *this, config(aes256)) {
    env.self = this;
  }
  static StreamsConfig config(bool aes256) {
    StreamsConfig c;
    c.aes256_records = aes256;
    return c;
  }
  static std::array<uint8_t, 32> seed_of(uint64_t s) {
    std::array<uint8_t, 32> a{};
    a[0] = uint8_t(s);
    return a;
  }
  void on_link_up(const NodeId&) override {}
  void on_link_down(uint64_t, const NodeId&) override { closed = true; }
  void on_record(uint64_t, const NodeId&, const Record& r, Bytes data) override {
    FUZZ_CHECK(r.type != RecordType::kData || Bytes(r.data.begin(), r.data.end()) == data);
    got.push_back({r.type, r.id, r.offset, r.received, r.limit, std::move(data)});
  }
  void after_events() override {}
};

uint64_t Env::conn_connect(const Endpoint&) {
  other->env.listener->on_conn_open(1, true, *Endpoint::parse("127.0.0.1:10"));
  listener->on_conn_open(1, false, *Endpoint::parse("127.0.0.1:9"));
  return 1;
}
void Env::conn_send(uint64_t, Bytes bytes) {
  if (!other->closed) other->inbox.insert(other->inbox.end(), bytes.begin(), bytes.end());
}
void Env::conn_close(uint64_t) { self->closed = true; }  // (the other side may be gone already)

// Delivers up to n bytes of `to`'s inbox.
void deliver(Side& to, size_t n) {
  n = std::min(n, to.inbox.size());
  if (n == 0 || to.closed) return;
  Bytes piece(to.inbox.begin(), to.inbox.begin() + static_cast<long>(n));
  to.inbox.erase(to.inbox.begin(), to.inbox.begin() + static_cast<long>(n));
  to.env.listener->on_conn_data(1, piece);
}

bool same(const Sent& a, const Sent& b) {
  if (a.type != b.type || a.id != b.id) return false;
  switch (a.type) {
    case RecordType::kData: return a.offset == b.offset && a.data == b.data;
    case RecordType::kAck: return a.offset == b.offset && a.received == b.received && a.limit == b.limit;
    case RecordType::kWindow: return a.limit == b.limit;
    case RecordType::kError: return a.offset == b.offset;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  // Either cipher: AES-128-OCB when neither side asks for AES-256-OCB.
  const uint8_t ciphers = fdp.ConsumeIntegral<uint8_t>();
  Side a(1, ciphers & 1), b(2, ciphers & 2);
  a.env.other = &b;
  b.env.other = &a;
  a.links.ensure(Contact{b.engine.id(), b.engine.identity().public_key(), *Endpoint::parse("127.0.0.1:9")});
  // Hellos both ways, cut at a fuzzed point, then each side's ready record.
  deliver(b, fdp.ConsumeIntegralInRange<size_t>(0, 69));
  deliver(b, 69);
  FUZZ_CHECK(a.links.ready(b.engine.id()) == 0);  // the opener waits for an authenticated record
  deliver(a, a.inbox.size());
  FUZZ_CHECK(a.links.ready(b.engine.id()) == 1);
  FUZZ_CHECK(b.links.ready(a.engine.id()) == 0);
  deliver(b, b.inbox.size());
  FUZZ_CHECK(b.links.ready(a.engine.id()) == 1);
  std::deque<Sent> sent;
  bool touched = false;
  while (fdp.remaining_bytes() > 0 && !b.closed) {
    switch (fdp.ConsumeIntegralInRange<int>(0, 5)) {
      case 0:
      case 1: {  // A sends a record
        Sent s{RecordType(fdp.ConsumeIntegralInRange<int>(1, 4)), {}, 0, 0, 0, {}};
        s.id[0] = fdp.ConsumeIntegral<uint8_t>();
        s.offset = fdp.ConsumeIntegral<uint64_t>();
        if (s.type == RecordType::kData) {
          s.data.resize(fdp.ConsumeIntegralInRange<size_t>(0, fdp.ConsumeBool() ? 64 : streams::Links::kMaxData));
          for (size_t i = 0; i < s.data.size(); ++i) s.data[i] = uint8_t(i * 13);
        } else if (s.type == RecordType::kAck) {
          s.received = fdp.ConsumeIntegral<uint64_t>();
          s.limit = fdp.ConsumeIntegral<uint64_t>();
        } else if (s.type == RecordType::kWindow) {
          s.limit = s.offset;
          s.offset = 0;
        }
        if (s.type == RecordType::kData && !s.data.empty() && fdp.ConsumeBool()) {
          // Sealed straight from the bytes and kept: the kept record opens to them.
          auto kept = a.links.send_data(1, s.id, s.offset, s.data);
          FUZZ_CHECK(kept && kept->size() == s.data.size() && kept->open() == s.data);
        } else {
          a.links.send(1, {s.type, s.id, s.offset, s.received, s.limit, s.data});
        }
        sent.push_back(std::move(s));
        break;
      }
      case 2:
      case 3:  // deliver part of what is in flight
        deliver(b, fdp.ConsumeIntegralInRange<size_t>(1, 300000));
        break;
      case 4:  // flip one byte in flight
        if (!b.inbox.empty()) {
          b.inbox[fdp.ConsumeIntegralInRange<size_t>(0, b.inbox.size() - 1)] ^= uint8_t(1 + fdp.ConsumeIntegral<uint8_t>() % 255);
          touched = true;
        }
        break;
      case 5: {  // inject bytes
        auto junk = fdp.ConsumeBytes<uint8_t>(fdp.ConsumeIntegralInRange<size_t>(1, 64));
        b.inbox.insert(b.inbox.end(), junk.begin(), junk.end());
        touched = true;
        break;
      }
    }
    // Whatever B received must be exactly the next records A sent.
    while (!b.got.empty()) {
      FUZZ_CHECK(!sent.empty() && same(b.got.front(), sent.front()));
      b.links.recycle(std::move(b.got.front().data));
      b.got.pop_front();
      sent.pop_front();
    }
  }
  deliver(b, b.inbox.size());
  while (!b.got.empty()) {
    FUZZ_CHECK(!sent.empty() && same(b.got.front(), sent.front()));
    b.got.pop_front();
    sent.pop_front();
  }
  auto st = b.links.stats();
  if (!touched) FUZZ_CHECK(sent.empty() && st.bad_records == 0 && !b.closed);
  return 0;
}
