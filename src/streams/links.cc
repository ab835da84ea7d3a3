#include "streams/links.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "crypto/session.h"
#include "engine/engine.h"
#include "storjnet/conn_provider.h"
#include "streams/record_cipher.h"
#include "wire/datagram.h"

namespace storjnet::streams {

namespace {
// Plaintext head: type (1) | reserved (7, zero) | stream id (32) | offset or limit (u64): 48 bytes, three
// cipher blocks, so a data record's bytes start on a block boundary and decrypt straight into their buffer.
constexpr size_t kHead = 48;
constexpr size_t kMaxPlain = kHead + Links::kMaxData;
constexpr size_t kMaxSealed = kMaxPlain + RecordCipher::kTagSize;
constexpr size_t kHelloSize = 4 + 32 + 32 + 1;          // magic, public key, salt, cipher
constexpr uint8_t kMagic[4] = {'S', 'J', 'T', '1'};
using Suite = RecordCipher::Suite;
// The ready record: empty, zero stream id and value; the first record each way, and only the first.
constexpr auto kReady = RecordType(5);
constexpr Duration kRetry = 10s;                        // after a failed connection, datagrams only for this long
constexpr Duration kBudgetWindow = 1s;                  // the handshake budgets' accounting period

// A direction's key and cipher, kept for the records held sealed (it lives as long as any of them), wiped
// when freed.
struct WipedKey {
  RecordCipher::Key key;
  Suite suite;
  WipedKey(const RecordCipher::Key& k, Suite s) : key(k), suite(s) {}
  ~WipedKey() { sodium_memzero(key.data(), key.size()); }
  WipedKey(const WipedKey&) = delete;
  WipedKey& operator=(const WipedKey&) = delete;
};

// A data record sealed straight from the writer's bytes (Links::send_data): length (u32) | ciphertext | tag,
// written by the connection from this buffer, kept by the stream until acknowledged. open() decrypts it again
// with the direction's key and the record's counter.
class SealedRecord final : public SealedChunk {
 public:
  SealedRecord(size_t data_size, std::shared_ptr<const WipedKey> key, uint64_t counter)
      : size_(4 + kHead + data_size + RecordCipher::kTagSize), data_size_(data_size),
        bytes_(std::make_unique_for_overwrite<uint8_t[]>(size_)), key_(std::move(key)), counter_(counter) {}
  uint8_t* bytes() { return bytes_.get(); }
  ByteView wire() const { return ByteView(bytes_.get(), size_); }
  size_t size() const override { return data_size_; }
  Bytes open() const override {
    RecordCipher cipher(key_->suite, key_->key, RecordCipher::Direction::kOpen, counter_);
    const uint8_t* sealed = bytes_.get() + 4;
    uint8_t head[kHead];
    Bytes out(data_size_);
    cipher.begin_open();
    size_t hn = cipher.decrypt(sealed, kHead, head);  // whole blocks: all of it, as when receiving
    size_t n = cipher.decrypt(sealed + kHead, data_size_, out.data());
    // Only memory corruption could fail this: the bytes are this node's own, never shown to anyone to change.
    if (hn != kHead || !cipher.finish_open(sealed + kHead + data_size_, out.data() + n))
      throw std::logic_error("a record this node sealed does not open");
    return out;
  }

 private:
  size_t size_, data_size_;
  std::unique_ptr<uint8_t[]> bytes_;
  std::shared_ptr<const WipedKey> key_;
  uint64_t counter_;
};

// Why a connection ends; each is counted once.
enum class Why { kPeerClosed, kBadInput, kHandshakeTimeout, kIdle, kAckTimeout, kOverflow, kHandshakeLimited };
}  // namespace

struct Links::Impl final : ConnListener {
  struct Link {
    uint64_t conn = 0;
    bool inbound = false;
    bool ready = false;    // a record from the peer authenticated (its ready record)
    bool closing = false;  // past link_send_cap: closes after the current event, takes no more records
    NodeId peer{};
    Endpoint::Prefix prefix{};  // inbound: the peer's network, for max_links_per_prefix
    TimePoint opened{}, last_heard{};
    std::deque<TimePoint> unanswered;  // send times of data records the peer has not acked yet, in order
    PublicKey expect{};
    std::array<uint8_t, 32> my_salt{}, peer_salt{};
    Suite suite = Suite::kAes256Ocb;  // AES-128-OCB only when both hellos asked for it
    std::unique_ptr<RecordCipher> tx, rx;  // set once both hellos are known
    std::shared_ptr<const WipedKey> tx_key;  // tx's, for the records kept sealed (SealedRecord)
    Bytes in;  // an incomplete unit (hello or record), at most one
  };

  Engine& engine;
  Events& events;
  const StreamsConfig cfg;
  ConnProvider* net;
  std::unordered_map<uint64_t, Link> links;
  std::unordered_map<Endpoint::Prefix, size_t> inbound_per_prefix;
  // Inbound handshake budgets: hellos answered in the current window, node-wide and by prefix (at most
  // link_handshakes_per_second entries).
  TimePoint budget_window{};
  uint32_t budget_used = 0;
  std::unordered_map<Endpoint::Prefix, uint32_t> budget_by_prefix;
  TimerId sweep_timer;
  std::unordered_map<NodeId, uint64_t> link_of;     // peer -> usable connection
  std::unordered_map<NodeId, uint64_t> connecting;  // peer -> connection we are setting up
  std::unordered_map<NodeId, TimePoint> retry_after;
  StreamsFastPathStats stats;
  Engine::Scope scope;  // the sweep and deferred closes: they die with Impl

  Impl(Engine& e, Events& ev, const StreamsConfig& c)
      : engine(e), events(ev), cfg(c), net(dynamic_cast<ConnProvider*>(&e.env())), scope(e.scope()) {
    if (net) net->set_conn_listener(this);
  }
  ~Impl() override {
    scope.end();
    if (!net) return;
    net->set_conn_listener(nullptr);
    for (auto& [c, l] : links) net->conn_close(c);
  }

  // ------------------------------------------------------------ connection events
  void on_conn_open(uint64_t c, bool inbound, const Endpoint& remote) override {
    if (!inbound) return;  // ours: the hello is already queued
    auto prefix = remote.prefix();
    size_t& from_prefix = inbound_per_prefix[prefix];
    if (links.size() >= cfg.max_links || from_prefix >= cfg.max_links_per_prefix) {
      if (from_prefix == 0) inbound_per_prefix.erase(prefix);
      ++stats.links_refused;
      return net->conn_close(c);
    }
    ++from_prefix;
    Link& l = links[c];
    l.conn = c;
    l.inbound = true;
    l.prefix = prefix;
    l.opened = engine.now();
    arm_sweep();
  }
  void on_conn_data(uint64_t c, ByteView bytes) override {
    receive(c, bytes);
    events.after_events();
  }
  void on_conn_closed(uint64_t c) override {
    close(c, Why::kPeerClosed);
    events.after_events();
  }

  void ensure(const Contact& peer) {
    if (!net || link_of.count(peer.id) || connecting.count(peer.id) || links.size() >= cfg.max_links) return;
    auto r = retry_after.find(peer.id);
    if (r != retry_after.end()) {
      if (engine.now() < r->second) return;
      retry_after.erase(r);
    }
    uint64_t c = net->conn_connect(peer.endpoint);
    if (!c) return;
    Link& l = links[c];
    l.conn = c;
    l.peer = peer.id;
    l.expect = peer.key;
    l.opened = engine.now();
    connecting[peer.id] = c;
    send_hello(l);  // queued by the driver until the connection is up
    arm_sweep();
  }

  // ------------------------------------------------------------ bounds
  // One sweep for every connection's deadlines: handshake, idle, unanswered data.
  void arm_sweep() {
    if (sweep_timer || links.empty()) return;
    Duration shortest = std::min({cfg.link_handshake_timeout, cfg.link_idle_timeout, cfg.link_ack_timeout});
    sweep_timer = engine.schedule(scope, std::clamp<Duration>(shortest / 4, 10ms, 1s), [this] {
      sweep_timer = TimerId{};
      sweep();
      arm_sweep();
    });
  }

  void sweep() {
    TimePoint now = engine.now();
    std::vector<std::pair<uint64_t, Why>> expired;
    for (auto& [c, l] : links) {
      if (!l.ready && now - l.opened >= cfg.link_handshake_timeout)
        expired.emplace_back(c, Why::kHandshakeTimeout);
      else if (l.ready && !l.unanswered.empty() && now - l.unanswered.front() >= cfg.link_ack_timeout)
        expired.emplace_back(c, Why::kAckTimeout);
      else if (l.ready && now - l.last_heard >= cfg.link_idle_timeout)
        expired.emplace_back(c, Why::kIdle);
    }
    for (auto [c, why] : expired) close(c, why);
    if (!expired.empty()) events.after_events();
  }

  // Takes one inbound handshake from the node-wide and the prefix budget; false when either is spent.
  bool take_handshake(const Endpoint::Prefix& p) {
    TimePoint now = engine.now();
    if (now - budget_window >= kBudgetWindow) {
      budget_window = now;
      budget_used = 0;
      budget_by_prefix.clear();
    }
    if (budget_used >= cfg.link_handshakes_per_second) return false;
    uint32_t& used = budget_by_prefix[p];
    if (used >= cfg.link_handshakes_per_prefix) return false;
    ++used;
    ++budget_used;
    return true;
  }

  uint64_t ready(const NodeId& peer) const {
    auto it = link_of.find(peer);
    return it == link_of.end() ? 0 : it->second;
  }

  void send_hello(Link& l) {
    engine.env().random(l.my_salt);
    Bytes h(kMagic, kMagic + 4);
    auto& pk = engine.identity().public_key();
    h.insert(h.end(), pk.begin(), pk.end());
    h.insert(h.end(), l.my_salt.begin(), l.my_salt.end());
    h.push_back(static_cast<uint8_t>(cfg.aes256_records ? Suite::kAes256Ocb : Suite::kAes128Ocb));
    net->conn_send(l.conn, std::move(h));
  }

  // Direction keys: BLAKE2b-256(pair key || opener salt || acceptor salt || d), d = 1 opener to acceptor.
  void derive(Link& l, const crypto::SessionKey& pair) {
    auto key = [&](uint8_t dir) {
      RecordCipher::Key out;
      crypto_generichash_state st;
      crypto_generichash_init(&st, nullptr, 0, out.size());
      crypto_generichash_update(&st, pair.data(), pair.size());
      const auto& opener = l.inbound ? l.peer_salt : l.my_salt;
      const auto& acceptor = l.inbound ? l.my_salt : l.peer_salt;
      crypto_generichash_update(&st, opener.data(), opener.size());
      crypto_generichash_update(&st, acceptor.data(), acceptor.size());
      crypto_generichash_update(&st, &dir, 1);
      crypto_generichash_final(&st, out.data(), out.size());
      return out;
    };
    l.tx_key = std::make_shared<const WipedKey>(key(l.inbound ? 2 : 1), l.suite);
    l.tx = std::make_unique<RecordCipher>(l.suite, l.tx_key->key, RecordCipher::Direction::kSeal);
    l.rx = std::make_unique<RecordCipher>(l.suite, key(l.inbound ? 1 : 2), RecordCipher::Direction::kOpen);
  }

  // The peer's hello; false with the reason when the connection must close.
  std::optional<Why> on_hello(Link& l, const uint8_t* p) {
    const uint8_t theirs = p[68];
    if (std::memcmp(p, kMagic, 4) != 0) return Why::kBadInput;
    if (theirs != static_cast<uint8_t>(Suite::kAes256Ocb) && theirs != static_cast<uint8_t>(Suite::kAes128Ocb))
      return Why::kBadInput;
    // Either end asking for AES-256 gets it; the acceptor's hello (sent below) states its own wish the same way.
    l.suite = theirs == static_cast<uint8_t>(Suite::kAes128Ocb) && !cfg.aes256_records ? Suite::kAes128Ocb
                                                                                      : Suite::kAes256Ocb;
    PublicKey pk;
    std::memcpy(pk.data(), p + 4, 32);
    std::memcpy(l.peer_salt.data(), p + 36, 32);
    if (!l.inbound && pk != l.expect) return Why::kBadInput;
    // Answering costs an X25519 before the peer proved anything: budgeted, node-wide and per prefix.
    if (l.inbound && !take_handshake(l.prefix)) return Why::kHandshakeLimited;
    crypto::SessionKey pair;
    // An acceptor's claimed key is not proven yet: do not let it into the process-wide cache.
    if (!crypto::derive_session_key(engine.identity(), pk, pair, !l.inbound)) return Why::kBadInput;
    if (l.inbound) {
      l.peer = Identity::id_of(pk);
      send_hello(l);
    }
    derive(l, pair);
    // Neither side is ready yet: each waits for the other's ready record, which only the holder of the
    // peer's secret key can seal.
    send(l.conn, Record{kReady, {}, 0, 0, 0, {}});
    return std::nullopt;
  }

  void mark_ready(Link& l) {
    auto co = connecting.find(l.peer);
    if (co != connecting.end() && co->second == l.conn) connecting.erase(co);
    l.ready = true;
    l.last_heard = engine.now();
    link_of[l.peer] = l.conn;
    ++stats.links_up;
    if (l.suite == Suite::kAes256Ocb) ++stats.links_aes256;
    events.on_link_up(l.peer);
  }

  // ------------------------------------------------------------ receive
  // Units on a connection: first the peer's hello, then records (length u32 | sealed plaintext). At most
  // one incomplete unit is held per connection (l.in); complete ones are opened straight from the
  // driver's buffer.

  // Bytes the next unit takes, judged from its first bytes; 0 when its length is out of range.
  static size_t unit_size(const Link& l, ByteView start) {
    if (!l.rx) return kHelloSize;
    if (start.size() < 4) return 4;
    size_t len = wire::get_u32(start.data());
    return len < kHead + RecordCipher::kTagSize || len > kMaxSealed ? 0 : 4 + len;
  }

  void receive(uint64_t c, ByteView bytes) {
    for (auto it = links.find(c); it != links.end(); it = links.find(c)) {  // a handler may close it
      Link& l = it->second;
      ByteView from = l.in.empty() ? bytes : ByteView(l.in);
      size_t need = from.empty() ? 4 : unit_size(l, from);
      if (need == 0) return close(c, Why::kBadInput);
      if (!l.in.empty() && l.in.size() < need) {  // complete the held unit first
        size_t take = std::min(need - l.in.size(), bytes.size());
        l.in.insert(l.in.end(), bytes.begin(), bytes.begin() + static_cast<long>(take));
        bytes = bytes.subspan(take);
        if (l.in.size() < need && bytes.empty()) return;
        continue;  // its size may be known only now
      }
      if (l.in.empty()) {
        if (bytes.empty()) return;
        if (bytes.size() < need) return l.in.assign(bytes.begin(), bytes.end());
        bytes = bytes.subspan(need);
        if (!unit(c, from.first(need))) return;
      } else {
        if (!unit(c, from.first(need))) return;
        if (auto again = links.find(c); again != links.end()) again->second.in.clear();
      }
    }
  }

  // A spent buffer for `n` received bytes, neither allocated nor zero-filled, or an empty one. Only one at most
  // an eighth larger is taken: the receive budget counts a chunk's size, so a peer's small records must not
  // hold big buffers; a smaller one would be reallocated, its stale bytes copied. Others go back.
  Bytes spent_buffer_for(size_t n) {
    Bytes b = net->conn_buffer();
    if (b.capacity() >= n && b.capacity() - n <= n / 8) return b;
    if (b.capacity() > 0) net->conn_recycle(std::move(b));
    return {};
  }

  // Handles one complete unit; false when the connection was closed.
  bool unit(uint64_t c, ByteView u) {
    Link& l = links.at(c);
    if (!l.rx) {
      if (auto why = on_hello(l, u.data())) return close(c, *why), false;
      return true;
    }
    const uint8_t* sealed = u.data() + 4;
    size_t plain = u.size() - 4 - RecordCipher::kTagSize;  // >= kHead (unit_size)
    size_t rest = plain - kHead;
    uint8_t head[kHead + 16 + 16];  // an ack's 16 body bytes, and room for a block held back by the cipher
    Bytes data;
    l.rx->begin_open();
    size_t hn = l.rx->decrypt(sealed, kHead, head);
    bool ok;
    if (head[0] == uint8_t(RecordType::kData) && hn == kHead) {
      data = spent_buffer_for(rest);
      data.resize(rest);
      size_t dn = l.rx->decrypt(sealed + kHead, rest, data.data());
      ok = l.rx->finish_open(sealed + plain, data.data() + dn);
    } else if (rest <= 16) {
      hn += l.rx->decrypt(sealed + kHead, rest, head + hn);
      ok = l.rx->finish_open(sealed + plain, head + hn);
    } else {
      return close(c, Why::kBadInput), false;
    }
    if (!ok) return close(c, Why::kBadInput), false;
    auto r = parse(head, kHead + rest, data);
    // The first record each way is the ready record, and only the first.
    if (!r || (r->type == kReady) == l.ready) return close(c, Why::kBadInput), false;
    if (r->type == kReady) {  // the peer proved it holds the pair key
      mark_ready(l);
      return links.count(c) > 0;
    }
    l.last_heard = engine.now();
    if ((r->type == RecordType::kAck || r->type == RecordType::kError) && !l.unanswered.empty())
      l.unanswered.pop_front();
    stats.bytes_received += data.size();
    events.on_record(c, l.peer, *r, std::move(data));
    return true;
  }

  static std::optional<Record> parse(const uint8_t* p, size_t n, const Bytes& data) {
    Record r;
    r.type = RecordType(p[0]);
    for (int i = 1; i < 8; ++i)
      if (p[i] != 0) return std::nullopt;  // reserved
    std::memcpy(r.id.data(), p + 8, 32);
    uint64_t v = wire::get_u64(p + 40);
    size_t body = n - kHead;
    switch (r.type) {
      case RecordType::kData:
        r.offset = v;
        r.data = data;
        return r;
      case RecordType::kAck:
        if (body != 16) return std::nullopt;
        r.offset = v, r.received = wire::get_u64(p + kHead), r.limit = wire::get_u64(p + kHead + 8);
        return r;
      case RecordType::kWindow:
        if (body != 0) return std::nullopt;
        r.limit = v;
        return r;
      case RecordType::kError:
        if (body != 0) return std::nullopt;
        r.offset = v;
        return r;
    }
    if (r.type == kReady && body == 0 && v == 0 && r.id == StreamId{}) return r;
    return std::nullopt;
  }

  // ------------------------------------------------------------ send
  // The usable link on connection `c` to send on, or null.
  Link* sendable(uint64_t c) {
    auto it = links.find(c);
    return it == links.end() || !it->second.tx || it->second.closing ? nullptr : &it->second;
  }

  // Writes a record's plaintext head (and an ack's body) to `head`; returns its size.
  static size_t head_of(const Record& r, uint8_t (&head)[kHead + 16]) {
    std::memset(head, 0, sizeof head);
    head[0] = uint8_t(r.type);
    std::memcpy(head + 8, r.id.data(), 32);
    switch (r.type) {
      case RecordType::kAck:
        wire::put_u64(head + 40, r.offset);
        wire::put_u64(head + kHead, r.received);
        wire::put_u64(head + kHead + 8, r.limit);
        return kHead + 16;
      case RecordType::kWindow:
        wire::put_u64(head + 40, r.limit);
        return kHead;
      default:  // data, error: the offset
        wire::put_u64(head + 40, r.offset);
        return kHead;
    }
  }

  void send(uint64_t c, const Record& r) {
    Link* l = sendable(c);
    if (!l) return;
    uint8_t head[kHead + 16];
    size_t hn = head_of(r, head);
    ByteView data;
    if (r.type == RecordType::kData) {
      data = r.data.first(std::min(r.data.size(), kMaxData));
      stats.bytes_sent += data.size();
      l->unanswered.push_back(engine.now());
    }
    size_t len = hn + data.size() + RecordCipher::kTagSize;
    // A data record reuses a spent buffer when the driver has one: no allocation, no zero-fill.
    Bytes out = data.empty() ? Bytes() : net->conn_buffer();
    out.resize(4 + len);
    wire::put_u32(out.data(), static_cast<uint32_t>(len));
    l->tx->seal({ByteView(head, hn), data}, out.data() + 4);
    net->conn_send(c, std::move(out));
    bound_queue(*l);
  }

  std::shared_ptr<const SealedChunk> send_data(uint64_t c, const StreamId& id, uint64_t offset, ByteView data) {
    Link* l = sendable(c);
    if (!l || data.empty()) return nullptr;
    data = data.first(std::min(data.size(), kMaxData));
    uint8_t head[kHead + 16];
    head_of(Record::data_at(id, offset, data), head);
    auto rec = std::make_shared<SealedRecord>(data.size(), l->tx_key, l->tx->counter());
    wire::put_u32(rec->bytes(), static_cast<uint32_t>(rec->wire().size() - 4));
    l->tx->seal({ByteView(head, kHead), data}, rec->bytes() + 4);
    stats.bytes_sent += data.size();
    ++stats.records_sealed_at_write;
    l->unanswered.push_back(engine.now());
    net->conn_send_kept(c, rec->wire(), rec);
    bound_queue(*l);
    return rec;
  }

  // A peer that does not read: our queue to it is bounded. Closed from a fresh event, since the caller
  // may be walking its own state (on_link_down re-sends what this connection carried).
  void bound_queue(Link& l) {
    if (net->conn_queued(l.conn) <= cfg.link_send_cap) return;
    l.closing = true;
    engine.schedule(scope, Duration(0), [this, c = l.conn] {
      close(c, Why::kOverflow);
      events.after_events();
    });
  }

  // ------------------------------------------------------------ closing
  // Ends connection `c` (closing it unless the peer did), counts why, and tells the owner when it was usable.
  void close(uint64_t c, Why why) {
    auto it = links.find(c);
    if (it == links.end()) return;
    if (why != Why::kPeerClosed) net->conn_close(c);
    switch (why) {
      case Why::kPeerClosed: break;
      case Why::kBadInput: ++stats.bad_records; break;
      case Why::kHandshakeTimeout: ++stats.handshake_timeouts; break;
      case Why::kIdle: ++stats.idle_closed; break;
      case Why::kAckTimeout: ++stats.ack_timeouts; break;
      case Why::kOverflow: ++stats.send_overflows; break;
      case Why::kHandshakeLimited: ++stats.handshakes_limited; break;
    }
    ++stats.links_failed;
    NodeId peer = it->second.peer;
    bool was_ready = it->second.ready;
    // An idle link is not a failure: the next stream to the peer may connect again at once.
    if (!it->second.inbound && why != Why::kIdle) {
      if (retry_after.size() >= 4 * cfg.max_links)
        std::erase_if(retry_after, [&](auto& e) { return e.second <= engine.now(); });
      retry_after[peer] = engine.now() + kRetry;
    }
    if (it->second.inbound) {
      auto pp = inbound_per_prefix.find(it->second.prefix);
      if (pp != inbound_per_prefix.end() && --pp->second == 0) inbound_per_prefix.erase(pp);
    }
    links.erase(it);
    auto lo = link_of.find(peer);
    if (lo != link_of.end() && lo->second == c) link_of.erase(lo);
    auto co = connecting.find(peer);
    if (co != connecting.end() && co->second == c) connecting.erase(co);
    if (was_ready) events.on_link_down(c, peer);
  }
};

Links::Links(Engine& engine, Events& events, const StreamsConfig& config)
    : impl_(std::make_unique<Impl>(engine, events, config)) {}
Links::~Links() = default;
bool Links::available() const { return impl_->net != nullptr; }
void Links::ensure(const Contact& peer) { impl_->ensure(peer); }
uint64_t Links::ready(const NodeId& peer) const { return impl_->ready(peer); }
void Links::send(uint64_t conn, const Record& r) { impl_->send(conn, r); }
void Links::recycle(Bytes bytes) {
  if (impl_->net) impl_->net->conn_recycle(std::move(bytes));
}
std::shared_ptr<const SealedChunk> Links::send_data(uint64_t conn, const StreamId& id, uint64_t offset,
                                                    ByteView data) {
  return impl_->send_data(conn, id, offset, data);
}
const StreamsFastPathStats& Links::stats() const { return impl_->stats; }

}  // namespace storjnet::streams
