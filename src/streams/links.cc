#include "streams/links.h"

#include <sodium.h>

#include <cstring>
#include <optional>
#include <unordered_map>

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
constexpr uint8_t kCipherAes256Ocb = 2;
constexpr size_t kMaxLinks = 256;
constexpr Duration kRetry = 10s;                        // after a failed connection, datagrams only for this long
constexpr Duration kHandshake = 5s;                     // an accepted connection must authenticate within this
}  // namespace

struct Links::Impl final : ConnListener {
  struct Link {
    uint64_t conn = 0;
    bool inbound = false;
    bool ready = false;  // ours: the peer's hello matched; theirs: a record authenticated
    NodeId peer{};
    PublicKey expect{};
    std::array<uint8_t, 32> my_salt{}, peer_salt{};
    std::unique_ptr<RecordCipher> tx, rx;  // set once both hellos are known
    Bytes in;  // an incomplete unit (hello or record), at most one
  };

  Engine& engine;
  Events& events;
  ConnProvider* net;
  std::unordered_map<uint64_t, Link> links;
  std::unordered_map<NodeId, uint64_t> link_of;     // peer -> usable connection
  std::unordered_map<NodeId, uint64_t> connecting;  // peer -> connection we are setting up
  std::unordered_map<NodeId, TimePoint> retry_after;
  StreamsFastPathStats stats;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  Impl(Engine& e, Events& ev) : engine(e), events(ev), net(dynamic_cast<ConnProvider*>(&e.env())) {
    if (net) net->set_conn_listener(this);
  }
  ~Impl() override {
    if (!net) return;
    net->set_conn_listener(nullptr);
    for (auto& [c, l] : links) net->conn_close(c);
  }

  // ------------------------------------------------------------ connection events
  void on_conn_open(uint64_t c, bool inbound) override {
    if (!inbound) return;  // ours: the hello is already queued
    if (links.size() >= kMaxLinks) return net->conn_close(c);
    Link& l = links[c];
    l.conn = c;
    l.inbound = true;
    // A connection that never proves itself would hold a slot for good: close it after kHandshake.
    engine.schedule(kHandshake, [this, c, w = std::weak_ptr<bool>(alive)] {
      if (w.expired()) return;
      auto it = links.find(c);
      if (it == links.end() || it->second.ready) return;
      bad(c);
      events.after_events();
    });
  }
  void on_conn_data(uint64_t c, ByteView bytes) override {
    receive(c, bytes);
    events.after_events();
  }
  void on_conn_closed(uint64_t c) override {
    drop(c, false);
    events.after_events();
  }

  void ensure(const Contact& peer) {
    if (!net || link_of.count(peer.id) || connecting.count(peer.id) || links.size() >= kMaxLinks) return;
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
    connecting[peer.id] = c;
    send_hello(l);  // queued by the driver until the connection is up
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
    h.push_back(kCipherAes256Ocb);
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
    l.tx = std::make_unique<RecordCipher>(key(l.inbound ? 2 : 1), RecordCipher::Direction::kSeal);
    l.rx = std::make_unique<RecordCipher>(key(l.inbound ? 1 : 2), RecordCipher::Direction::kOpen);
  }

  bool on_hello(Link& l, const uint8_t* p) {
    if (std::memcmp(p, kMagic, 4) != 0 || p[68] != kCipherAes256Ocb) return false;
    PublicKey pk;
    std::memcpy(pk.data(), p + 4, 32);
    std::memcpy(l.peer_salt.data(), p + 36, 32);
    if (!l.inbound && pk != l.expect) return false;
    crypto::SessionKey pair;
    // An acceptor's claimed key is not proven yet: do not let it into the process-wide cache.
    if (!crypto::derive_session_key(engine.identity(), pk, pair, !l.inbound)) return false;
    if (l.inbound) {
      l.peer = Identity::id_of(pk);
      send_hello(l);
    }
    derive(l, pair);
    // Ours: the responder proved nothing yet, but only the holder of its secret key can read what we send.
    if (!l.inbound) mark_ready(l);
    return true;
  }

  void mark_ready(Link& l) {
    auto co = connecting.find(l.peer);
    if (co != connecting.end() && co->second == l.conn) connecting.erase(co);
    l.ready = true;
    link_of[l.peer] = l.conn;
    ++stats.links_up;
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
      if (need == 0) return bad(c);
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

  // Handles one complete unit; false when the connection was closed.
  bool unit(uint64_t c, ByteView u) {
    Link& l = links.at(c);
    if (!l.rx) {
      if (!on_hello(l, u.data())) return bad(c), false;
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
      data.resize(rest);
      size_t dn = l.rx->decrypt(sealed + kHead, rest, data.data());
      ok = l.rx->finish_open(sealed + plain, data.data() + dn);
    } else if (rest <= 16) {
      hn += l.rx->decrypt(sealed + kHead, rest, head + hn);
      ok = l.rx->finish_open(sealed + plain, head + hn);
    } else {
      return bad(c), false;
    }
    if (!ok) return bad(c), false;
    auto r = parse(head, kHead + rest, data);
    if (!r) return bad(c), false;
    if (l.inbound && !l.ready) mark_ready(l);  // the opener proved it holds the pair key
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
    return std::nullopt;
  }

  // ------------------------------------------------------------ send
  void send(uint64_t c, const Record& r) {
    auto it = links.find(c);
    if (it == links.end() || !it->second.tx) return;
    uint8_t head[kHead + 16] = {};
    head[0] = uint8_t(r.type);
    std::memcpy(head + 8, r.id.data(), 32);
    size_t hn = kHead;
    ByteView data;
    switch (r.type) {
      case RecordType::kData:
        wire::put_u64(head + 40, r.offset);
        data = r.data.first(std::min(r.data.size(), kMaxData));
        stats.bytes_sent += data.size();
        break;
      case RecordType::kAck:
        wire::put_u64(head + 40, r.offset);
        wire::put_u64(head + kHead, r.received);
        wire::put_u64(head + kHead + 8, r.limit);
        hn += 16;
        break;
      case RecordType::kWindow:
        wire::put_u64(head + 40, r.limit);
        break;
      case RecordType::kError:
        wire::put_u64(head + 40, r.offset);
        break;
    }
    size_t len = hn + data.size() + RecordCipher::kTagSize;
    Bytes out(4 + len);
    wire::put_u32(out.data(), static_cast<uint32_t>(len));
    it->second.tx->seal({ByteView(head, hn), data}, out.data() + 4);
    net->conn_send(c, std::move(out));
  }

  // ------------------------------------------------------------ failures
  void bad(uint64_t c) {
    net->conn_close(c);
    drop(c, true);
  }

  void drop(uint64_t c, bool bad_input) {
    auto it = links.find(c);
    if (it == links.end()) return;
    if (bad_input) ++stats.bad_records;
    ++stats.links_failed;
    NodeId peer = it->second.peer;
    bool was_ready = it->second.ready;
    if (!it->second.inbound) {
      if (retry_after.size() >= 4 * kMaxLinks) std::erase_if(retry_after, [&](auto& e) { return e.second <= engine.now(); });
      retry_after[peer] = engine.now() + kRetry;
    }
    links.erase(it);
    auto lo = link_of.find(peer);
    if (lo != link_of.end() && lo->second == c) link_of.erase(lo);
    auto co = connecting.find(peer);
    if (co != connecting.end() && co->second == c) connecting.erase(co);
    if (was_ready) events.on_link_down(c, peer);
  }
};

Links::Links(Engine& engine, Events& events) : impl_(std::make_unique<Impl>(engine, events)) {}
Links::~Links() = default;
bool Links::available() const { return impl_->net != nullptr; }
void Links::ensure(const Contact& peer) { impl_->ensure(peer); }
uint64_t Links::ready(const NodeId& peer) const { return impl_->ready(peer); }
void Links::send(uint64_t conn, const Record& r) { impl_->send(conn, r); }
const StreamsFastPathStats& Links::stats() const { return impl_->stats; }

}  // namespace storjnet::streams
