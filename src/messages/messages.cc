// Messages: the sender side (per-destination queue, batching, one message_notify in flight per
// destination) and the wiring of the receiver side (Inbox) to the engine.
#include "storjnet/messages.h"

#include <algorithm>
#include <deque>
#include <unordered_map>

#include "common/once.h"
#include "engine/engine.h"
#include "messages/codec.h"
#include "messages/inbox.h"
#include "dht/resolver.h"
#include "storjnet/dht.h"

namespace storjnet {

using messages::Inbox;

namespace {
constexpr Duration kAttemptInterval = 250ms;   // retransmission interval of a batch
constexpr Duration kMinBatchTimeout = 300ms;   // a batch always gets at least this long
constexpr Duration kSweepInterval = 100ms;     // expiry check of queued messages
constexpr size_t kMaxOutgoing = 1 << 20;       // queued outgoing messages, all destinations
constexpr size_t kMaxOutgoingBytes = 256u << 20;
}  // namespace

struct Messages::Impl {
  struct Outgoing {
    std::string json;
    std::function<void(bool)> cb;
    TimePoint deadline;
  };
  struct Peer {
    std::deque<Outgoing> queue;
    std::optional<Contact> contact;
    bool in_flight = false, resolving = false;
    size_t in_flight_count = 0;
  };

  Engine& engine;
  Dht& dht;
  MessagesConfig config;
  Inbox inbox;
  Resolver resolver;
  uint64_t epoch;
  uint64_t next_batch = 1;
  std::unordered_map<NodeId, Peer> peers;
  size_t outgoing = 0, outgoing_bytes = 0;
  TimerId sweep;
  Engine::Scope scope;  // the batches in flight, the lookups waited for, the sweep

  Impl(Engine& e, Dht& d, MessagesConfig c)
      : engine(e), dht(d), config(c), inbox(c), resolver(d),
        epoch(std::max<uint64_t>(1, e.env().unix_us())), scope(e.scope()) {
    engine.set_handler(Method::kMessageNotify, [this](const IncomingRequest& req, const Reply& reply) {
      on_notify(req, reply);
    });
  }
  ~Impl() {
    scope.end();
    engine.set_handler(Method::kMessageNotify, nullptr);
    // Every message still queued answers false now (its Once, see send), while the rest of Impl is intact.
    auto dying = std::move(peers);
  }

  void on_notify(const IncomingRequest& req, const Reply& reply) {
    auto b = messages::decode_batch(req.payload);
    if (!b) return reply.error("bad message_notify body");
    auto d = inbox.deliver(req.from.id, req.from.endpoint.prefix(), *b, engine.now());
    if (d.refusal == messages::Refusal::kRateLimited) return reply.error(messages::refusal_text(d.refusal));
    resolver.remember(req.from);
    // Nothing queued: a clear error. Some queued: the count; the sender fails the rest.
    if (d.accepted == 0 && d.refusal != messages::Refusal::kNone) return reply.error(messages::refusal_text(d.refusal));
    reply.ok(messages::encode_ack(d.accepted));
  }

  void send(const NodeId& to, std::string json, std::function<void(bool)> user_cb) {
    Once<bool> cb(std::move(user_cb), false);
    if (!messages::valid_message(json)) return cb(false);
    if (to == engine.id()) return cb(inbox.push_local(to, std::move(json)));
    if (outgoing >= kMaxOutgoing || outgoing_bytes + json.size() > kMaxOutgoingBytes) return cb(false);
    ++outgoing;
    outgoing_bytes += json.size();
    peers[to].queue.push_back({std::move(json), std::move(cb), engine.now() + config.send_timeout});
    arm_sweep();
    pump(to);
  }

  void finish(Outgoing& m, bool ok, std::vector<std::pair<std::function<void(bool)>, bool>>& done) {
    --outgoing;
    outgoing_bytes -= m.json.size();
    done.emplace_back(std::move(m.cb), ok);
  }
  static void run(std::vector<std::pair<std::function<void(bool)>, bool>>& done) {
    for (auto& [cb, ok] : done) cb(ok);
  }

  void pump(const NodeId& to) {
    auto it = peers.find(to);
    if (it == peers.end()) return;
    Peer& p = it->second;
    if (p.in_flight || p.resolving) return;
    if (p.queue.empty()) {
      peers.erase(it);
      return;
    }
    if (!p.contact) {
      p.resolving = true;
      resolver.resolve(to, scope.bind<std::optional<Contact>>([this, to](std::optional<Contact> c) {
        auto it = peers.find(to);
        if (it == peers.end()) return;
        it->second.resolving = false;
        if (!c) {
          std::vector<std::pair<std::function<void(bool)>, bool>> done;
          for (auto& m : it->second.queue) finish(m, false, done);
          peers.erase(it);
          return run(done);
        }
        it->second.contact = c;
        pump(to);
      }));
      return;
    }
    // One batch: as many queued messages as fit, oldest first.
    std::vector<const std::string*> msgs;
    size_t bytes = 0;
    for (auto& m : p.queue) {
      if (msgs.size() == messages::kMaxBatchMessages || (bytes + m.json.size() > messages::kMaxBatchBytes)) break;
      bytes += m.json.size();
      msgs.push_back(&m.json);
    }
    uint64_t batch = next_batch++;
    Bytes body = messages::encode_batch(epoch, batch, msgs);
    size_t n = msgs.size();
    Duration left = p.queue.front().deadline - engine.now();
    Duration timeout = std::clamp<Duration>(left, kMinBatchTimeout, config.send_timeout);
    RpcOptions opts;
    opts.timeout = timeout;
    opts.attempts = static_cast<int>(std::clamp<int64_t>(timeout / kAttemptInterval, 1, 20));
    p.in_flight = true;
    p.in_flight_count = n;
    engine.request(scope, *p.contact, Method::kMessageNotify, body, [this, to, n](RpcResult&& r) { on_ack(to, n, r); },
                   opts);
  }

  void on_ack(const NodeId& to, size_t n, const RpcResult& r) {
    auto it = peers.find(to);
    if (it == peers.end()) return;
    Peer& p = it->second;
    p.in_flight = false;
    p.in_flight_count = 0;
    size_t accepted = 0;
    if (r.ok()) {
      accepted = std::min<size_t>(n, messages::decode_ack(r.payload).value_or(0));
      if (r.from.endpoint.valid()) {
        resolver.remember(r.from);
        p.contact = r.from;  // where it answers from: a punch may have moved it (the next batch goes there too)
      }
    } else if (r.status == RpcStatus::kTimeout) {
      // Maybe it moved: look it up again next time.
      resolver.forget(to);
      p.contact.reset();
    }
    std::vector<std::pair<std::function<void(bool)>, bool>> done;
    done.reserve(n);
    for (size_t i = 0; i < n && !p.queue.empty(); ++i) {
      finish(p.queue.front(), i < accepted, done);
      p.queue.pop_front();
    }
    pump(to);
    run(done);
  }

  void arm_sweep() {
    if (sweep) return;
    sweep = engine.schedule(scope, kSweepInterval, [this] {
      sweep = TimerId{};
      expire();
      if (outgoing) arm_sweep();
    });
  }

  // Fails queued (not yet sent) messages whose send_timeout passed: a slow peer or lookup cannot hold
  // message_send longer than that.
  void expire() {
    TimePoint now = engine.now();
    std::vector<std::pair<std::function<void(bool)>, bool>> done;
    for (auto& [id, p] : peers) {
      // The in-flight batch sits at the front and has its own timeout; deadlines behind it are in order.
      while (p.queue.size() > p.in_flight_count && p.queue[p.in_flight_count].deadline <= now) {
        finish(p.queue[p.in_flight_count], false, done);
        p.queue.erase(p.queue.begin() + static_cast<long>(p.in_flight_count));
      }
    }
    run(done);
  }
};

Messages::Messages(Engine& engine, Dht& dht, MessagesConfig config)
    : impl_(std::make_unique<Impl>(engine, dht, config)) {}
Messages::~Messages() = default;

void Messages::send(const NodeId& to, std::string json, std::function<void(bool)> cb) {
  impl_->send(to, std::move(json), std::move(cb));
}
std::map<NodeId, std::vector<std::string>> Messages::take_all() { return impl_->inbox.take_all(); }
size_t Messages::queued() const { return impl_->inbox.queued(); }
MessagesStats Messages::stats() const { return impl_->inbox.stats(); }
void Messages::remember(const Contact& c) { impl_->resolver.remember(c); }

}  // namespace storjnet
