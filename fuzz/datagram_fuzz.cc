// datagram_fuzz: arbitrary bytes against the datagram codec, the frame codec and a real Engine.
//
// Each input is used three ways:
//   1. raw: wire::decode and wire::decode_frame on the bytes, then Engine::on_datagram with the bytes;
//   2. sealed: the bytes (cut to the plaintext limit) as the plaintext of a correctly sealed datagram from a
//      fixed peer identity P, so the frame, reassembly and message parsing behind the AEAD get fuzzed;
//   3. program: the bytes drive a short sequence of operations (raw datagrams, sealed frames and messages from
//      P with chosen counters and epochs, fragmented messages with loss/duplication/reordering, tampering,
//      requests from the engine, time advances, and real traffic with a second Engine B).
// Invariants checked: no crash or sanitizer report; reassembly memory, held answers (anti-amplification) and
// sessions within their bounds; every request, ping and hello callback runs exactly once. The first-contact
// budget is tiny, so cookie replies and SEALED_COOKIE datagrams (real and fuzzed cookies) are exercised.
#include "fuzz_check.h"
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "crypto/session.h"
#include "engine/engine.h"
#include "wire/datagram.h"
#include "wire/frame.h"

using namespace storjnet;

namespace {


// A deterministic environment: manual clock, captured sends, counter "randomness" (so hello challenges are
// small, guessable numbers the fuzzer can reach).
class FuzzEnv final : public Environment {
 public:
  TimePoint now() override { return *clock_; }
  uint64_t unix_us() override { return 1'700'000'000'000'000ull + clock_->count() / 1000; }
  void send(const Endpoint& to, ByteView d) override { outbox.push_back({to, Bytes(d.begin(), d.end())}); }
  void wake_at(TimePoint at) override { wake = at; }
  void random(std::span<uint8_t> out) override {
    for (size_t i = 0; i < out.size(); i += 8) {
      uint64_t v = ++counter_;
      std::memcpy(out.data() + i, &v, std::min<size_t>(8, out.size() - i));
    }
  }
  explicit FuzzEnv(TimePoint* clock) : clock_(clock) {}

  struct Sent {
    Endpoint to;
    Bytes data;
  };
  std::vector<Sent> outbox;
  TimePoint wake = TimePoint::max();

 private:
  TimePoint* clock_;
  uint64_t counter_ = 0;
};

Identity identity(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed[0] = n;
  seed[31] = 0xf2;
  return Identity::from_seed(seed);
}

struct Fixed {
  Identity a = identity(1), b = identity(2), p = identity(3);
  crypto::SessionKey p_to_a{};
  // More hand-driven peers, so session eviction (max_sessions = 4) gets exercised.
  static constexpr int kExtra = 6;
  std::vector<Identity> extra;
  std::vector<crypto::SessionKey> extra_to_a;
  Endpoint ep_a = *Endpoint::parse("10.0.0.1:4000"), ep_b = *Endpoint::parse("10.0.0.2:4000"),
           ep_p = *Endpoint::parse("10.0.0.3:4000"), ep_x = *Endpoint::parse("[2001:db8::9]:7");
  EngineConfig cfg;
  Fixed() {
    if (!crypto::derive_session_key(p, a.public_key(), p_to_a)) abort();
    for (int i = 0; i < kExtra; ++i) {
      extra.push_back(identity(static_cast<uint8_t>(10 + i)));
      extra_to_a.emplace_back();
      if (!crypto::derive_session_key(extra.back(), a.public_key(), extra_to_a.back())) abort();
    }
    cfg.max_sessions = 4;
    cfg.max_pending_rpcs = 8;
    cfg.peer_request_rate = 1;
    cfg.peer_request_burst = 3;
    cfg.reassembly.max_message = 8 * 1024;
    cfg.reassembly.max_per_peer = 12 * 1024;
    cfg.reassembly.max_total = 20 * 1024;
    cfg.reassembly.timeout = 500ms;
    cfg.new_key_rate = 1;
    cfg.new_key_burst = 2;
    cfg.new_key_prefix_rate = 1;
    cfg.new_key_prefix_burst = 2;
    cfg.failed_key_cache = 3;
    cfg.cookies_kept = 2;
    cfg.amplification.max_entries = 4;
    cfg.amplification.hold_per_address = 20 * 1024;
    cfg.amplification.hold_per_prefix = 30 * 1024;
    cfg.amplification.hold_total = 40 * 1024;
    cfg.amplification.hold_timeout = 700ms;
  }
};
const Fixed& fixed() {
  static const Fixed f;
  return f;
}

// The sending side of peer P towards A, built by hand so any plaintext can be sealed.
struct ManualPeer {
  const Identity* id = &fixed().p;
  const crypto::SessionKey* key = &fixed().p_to_a;
  uint64_t epoch = 1'700'000'000'000'000ull, salt = 0x5a17, counter = 0;
  Bytes last;  // last datagram built

  const Bytes& seal(ByteView plain, uint32_t network_id, uint64_t ctr, const wire::Cookie* cookie = nullptr) {
    if (plain.size() > wire::kMaxSealedPlaintext) plain = plain.first(wire::kMaxSealedPlaintext);
    wire::Nonce nonce = wire::make_nonce(epoch, salt, ctr);
    last.clear();
    last.shrink_to_fit();  // no spare capacity: seal() must cope with `out` moving under the header
    wire::encode_sealed_header(network_id, id->public_key(), nonce, last, cookie);
    crypto::seal(*key, nonce, {last.data(), last.size()}, plain, last);
    return last;
  }
  const Bytes& next(ByteView plain, uint32_t network_id) { return seal(plain, network_id, counter++); }
};

Bytes message(uint8_t type, uint32_t rpc_id, uint8_t method, ByteView payload) {
  Bytes m(6);
  m[0] = type;
  wire::put_u32(m.data() + 1, rpc_id);
  m[5] = method;
  m.insert(m.end(), payload.begin(), payload.end());
  return m;
}

Bytes whole(ByteView m) {
  Bytes f{wire::kFrameWhole};
  f.insert(f.end(), m.begin(), m.end());
  return f;
}

struct Harness {
  const Fixed& f = fixed();
  TimePoint clock{1'000'000'000};
  FuzzEnv env_a{&clock}, env_b{&clock};
  Engine a{env_a, f.a, f.cfg};
  Engine b{env_b, f.b, f.cfg};
  Contact ca = Contact::from_key(f.a.public_key(), f.ep_a);
  Contact cb = Contact::from_key(f.b.public_key(), f.ep_b);
  Contact cp = Contact::from_key(f.p.public_key(), f.ep_p);
  ManualPeer peer;
  std::vector<ManualPeer> extra{Fixed::kExtra};
  uint64_t issued = 0, completed = 0;
  std::optional<wire::Cookie> last_cookie;  // the last cookie A sent to anyone

  Harness() {
    for (int i = 0; i < Fixed::kExtra; ++i) {
      extra[i].id = &f.extra[i];
      extra[i].key = &f.extra_to_a[i];
    }
    for (Engine* e : {&a, &b}) {
      e->set_handler(Method::kStore, [e](const IncomingRequest& r, const Reply& rep) {
        e->prove_on_answer(r.from);  // the answer carries an address challenge (PROVING_RESPONSE) while unproven
        rep.ok(r.payload);
      });
      e->set_handler(Method::kFindNode, [](const IncomingRequest&, const Reply& rep) { rep.error("nope"); });
      e->set_handler(Method::kFindValue, [](const IncomingRequest& r, const Reply& rep) {
        rep.ok(Bytes(r.payload.size() * 3 % 20000, 0xab));  // large answers get fragmented
      });
      e->set_handler(Method::kMessageNotify, [](const IncomingRequest&, const Reply& rep) { rep.ok({}); });
      e->set_rate_limited(Method::kFindValue);
      e->set_rate_limited(Method::kMessageNotify);
    }
  }

  RpcCallback counted() {
    ++issued;
    return [this](RpcResult&&) { ++completed; };
  }

  void to_a(const Endpoint& from, ByteView d) { a.on_datagram(from, d); }

  // Delivers A<->B traffic (anything A sends elsewhere is lost) for a bounded number of rounds.
  void pump() {
    for (int round = 0; round < 16 && (!env_a.outbox.empty() || !env_b.outbox.empty()); ++round) {
      auto out_a = std::move(env_a.outbox);
      env_a.outbox.clear();
      for (auto& s : out_a) {
        if (s.data.size() == wire::kCookieReplySize) {
          auto r = wire::decode(s.data, f.cfg.network_id);
          if (r.datagram && std::holds_alternative<wire::CookieReply>(*r.datagram))
            last_cookie = std::get<wire::CookieReply>(*r.datagram).cookie;
        }
        if (s.to == f.ep_b) b.on_datagram(f.ep_a, s.data);
      }
      auto out_b = std::move(env_b.outbox);
      env_b.outbox.clear();
      for (auto& s : out_b)
        if (s.to == f.ep_a) a.on_datagram(f.ep_b, s.data);
    }
    env_a.outbox.clear();
    env_b.outbox.clear();
  }

  void advance(Duration d) {
    clock += d;
    if (env_a.wake <= clock) a.on_wake();
    if (env_b.wake <= clock) b.on_wake();
    pump();
  }

  void check() {
    FUZZ_CHECK(a.reassembly_bytes() <= f.cfg.reassembly.max_total);
    FUZZ_CHECK(b.reassembly_bytes() <= f.cfg.reassembly.max_total);
    FUZZ_CHECK(a.session_count() <= f.cfg.max_sessions);
    FUZZ_CHECK(a.pending_rpcs() <= f.cfg.max_pending_rpcs);
    FUZZ_CHECK(a.held_bytes() <= f.cfg.amplification.hold_total && b.held_bytes() <= f.cfg.amplification.hold_total);
    FUZZ_CHECK(completed <= issued);
  }

  // A fragmented message from P: payload of `size` bytes, fragments delivered per `mask` bits.
  void fragmented(FuzzedDataProvider& in, uint32_t net) {
    uint8_t type = in.ConsumeIntegralInRange<uint8_t>(0, 4);
    uint32_t rpc = in.ConsumeIntegralInRange<uint32_t>(0, 4);
    uint8_t method = in.ConsumeIntegral<uint8_t>();
    size_t size = in.ConsumeIntegralInRange<size_t>(wire::kMaxWhole + 1, 10 * 1024);
    uint32_t msg_id = in.ConsumeIntegralInRange<uint32_t>(0, 3);
    uint64_t mask = in.ConsumeIntegral<uint64_t>();
    bool reverse = in.ConsumeBool();
    Bytes m = message(type, rpc, method, Bytes(size, static_cast<uint8_t>(size)));
    auto frames = wire::encode_frames(m, msg_id);
    if (reverse) std::reverse(frames.begin(), frames.end());
    for (size_t i = 0; i < frames.size(); ++i) {
      unsigned bits = (mask >> (2 * (i % 32))) & 3;  // 0: lose, 1: once, 2-3: twice
      for (unsigned k = 0; k < (bits == 0 ? 0 : bits == 1 ? 1 : 2); ++k) to_a(f.ep_p, peer.next(frames[i], net));
    }
  }

  void run(const uint8_t* data, size_t size) {
    const uint32_t net = f.cfg.network_id;
    ByteView all(data, size);

    // 1 + 2: the whole input, raw and sealed.
    to_a(f.ep_x, all);
    to_a(f.ep_p, peer.next(all, net));
    pump();
    check();

    // 3: the input as a program.
    FuzzedDataProvider in(data, size);
    for (int step = 0; step < 48 && in.remaining_bytes() > 0; ++step) {
      switch (in.ConsumeIntegralInRange<int>(0, 15)) {
        case 0: {  // raw datagram from an arbitrary address, or claiming to be B
          auto d = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 1400));
          to_a(in.ConsumeBool() ? f.ep_b : f.ep_x, d);
          break;
        }
        case 1: {  // sealed frame (arbitrary plaintext) from P, next counter
          auto plain = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(1, wire::kMaxSealedPlaintext));
          if (!plain.empty()) to_a(f.ep_p, peer.next(plain, net));
          break;
        }
        case 2: {  // sealed frame from P with a chosen counter / epoch: replay window and session ordering
          uint64_t ctr = in.ConsumeIntegralInRange<uint64_t>(0, 3000);
          int de = in.ConsumeIntegralInRange<int>(-1, 1);
          peer.epoch += de;
          if (in.ConsumeBool()) peer.salt ^= 1;
          auto plain = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(1, 64));
          if (plain.empty()) plain.push_back(wire::kFrameWhole);
          to_a(f.ep_p, peer.seal(plain, net, ctr));
          break;
        }
        case 3: {  // well-formed WHOLE message from P with fuzzed header fields and payload
          uint8_t type = in.ConsumeIntegralInRange<uint8_t>(0, 6);  // 4, 5: address challenge / echo
          uint32_t rpc = in.ConsumeIntegralInRange<uint32_t>(0, 6);
          uint8_t method = in.ConsumeIntegralInRange<uint8_t>(0, 70);
          auto payload = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 300));
          to_a(in.ConsumeBool() ? f.ep_p : f.ep_x, peer.next(whole(message(type, rpc, method, payload)), net));
          break;
        }
        case 4: fragmented(in, net); break;
        case 5: {  // FRAGMENT frame with fuzzed header from P
          Bytes fr(wire::kFragmentHeaderSize);
          fr[0] = wire::kFrameFragment;
          wire::put_u32(fr.data() + 1, in.ConsumeIntegralInRange<uint32_t>(0, 3));
          wire::put_u16(fr.data() + 5, in.ConsumeIntegralInRange<uint16_t>(0, 8));
          wire::put_u16(fr.data() + 7, in.ConsumeIntegralInRange<uint16_t>(0, 8));
          auto chunk = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, wire::kMaxChunk));
          fr.insert(fr.end(), chunk.begin(), chunk.end());
          to_a(f.ep_p, peer.next(fr, net));
          break;
        }
        case 6: {  // A sends a request to P (whose answers come from the fuzzer) or to B
          auto method = static_cast<Method>(in.ConsumeIntegralInRange<uint8_t>(1, 5));
          auto payload = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 3000));
          RpcOptions o;
          o.attempts = in.ConsumeIntegralInRange<int>(0, 3);
          a.request(in.ConsumeBool() ? cp : cb, method, payload, counted(), o);
          break;
        }
        case 7: {  // time passes: retries, timeouts, reassembly expiry
          advance(std::chrono::milliseconds(in.ConsumeIntegralInRange<int>(0, 2500)));
          break;
        }
        case 8: {  // tampering: flip one bit of P's last datagram and resend it (also a plain replay)
          if (peer.last.empty()) break;
          Bytes d = peer.last;
          size_t pos = in.ConsumeIntegralInRange<size_t>(0, d.size());
          if (pos < d.size()) d[pos] ^= static_cast<uint8_t>(1u << in.ConsumeIntegralInRange<int>(0, 7));
          to_a(f.ep_p, d);
          break;
        }
        case 9: {  // first contact and built-ins between the real engines
          switch (in.ConsumeIntegralInRange<int>(0, 3)) {
            case 0: ++issued; a.hello(f.ep_b, [this](auto) { ++completed; }); break;
            case 1: ++issued; b.ping(ca, [this](auto) { ++completed; }); break;
            case 2: ++issued; b.stun(ca, [this](auto) { ++completed; }); break;
            case 3: ++issued; a.hello(f.ep_x, [this](auto) { ++completed; }); break;
          }
          break;
        }
        case 10: {  // B sends A a request or one-way message
          auto method = static_cast<Method>(in.ConsumeIntegralInRange<uint8_t>(1, 64));
          auto payload = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 4000));
          if (in.ConsumeBool()) b.notify(ca, method, payload);
          else b.request(ca, method, payload, counted());
          break;
        }
        case 11: {  // HELLO / HELLO_REPLY with a fuzzed (small) challenge, e.g. answering A's hello
          uint64_t challenge = in.ConsumeIntegralInRange<uint64_t>(0, 40);
          PublicKey k = in.ConsumeBool() ? f.p.public_key() : f.a.public_key();
          Endpoint from = in.ConsumeBool() ? f.ep_x : f.ep_b;
          to_a(from, in.ConsumeBool() ? wire::encode_hello(net, {k, challenge})
                                      : wire::encode_hello_reply(net, {k, challenge}));
          break;
        }
        case 12: {  // sealed datagram from P under another network id (must be dropped before crypto)
          auto plain = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(1, 32));
          if (!plain.empty()) to_a(f.ep_p, peer.next(plain, net ^ 1));
          break;
        }
        case 13: {  // a message from one of several other peers (new sessions, eviction, per-peer limits)
          ManualPeer& q = extra[in.ConsumeIntegralInRange<int>(0, Fixed::kExtra - 1)];
          uint8_t type = in.ConsumeIntegralInRange<uint8_t>(0, 3);
          uint8_t method = in.ConsumeIntegralInRange<uint8_t>(1, 16);
          auto payload = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 64));
          to_a(f.ep_x, q.next(whole(message(type, 1, method, payload)), net));
          break;
        }
        case 14: {  // SEALED_COOKIE from another peer: the last cookie A gave out, or a fuzzed one
          ManualPeer& q = extra[in.ConsumeIntegralInRange<int>(0, Fixed::kExtra - 1)];
          wire::Cookie c{};
          if (in.ConsumeBool() && last_cookie) c = *last_cookie;
          else c[0] = in.ConsumeIntegral<uint8_t>();
          auto payload = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 64));
          to_a(in.ConsumeBool() ? f.ep_x : f.ep_p, q.seal(whole(message(0, 1, 1, payload)), net, q.counter++, &c));
          break;
        }
        case 15: {  // COOKIE_REPLY claiming to come from B or P, echoing a fuzzed nonce
          wire::CookieReply r;
          r.responder = in.ConsumeBool() ? f.b.public_key() : f.p.public_key();
          auto nb = in.ConsumeBytes<uint8_t>(wire::kNonceSize);
          std::copy(nb.begin(), nb.end(), r.nonce.begin());
          r.cookie[0] = in.ConsumeIntegral<uint8_t>();
          to_a(in.ConsumeBool() ? f.ep_b : f.ep_p, wire::encode_cookie_reply(net, r));
          break;
        }
      }
      pump();
      check();
    }

    // Let every timer run out: each request/hello callback must have run exactly once.
    for (int i = 0; i < 8; ++i) advance(f.cfg.rpc_timeout);
    check();
    FUZZ_CHECK(completed == issued);
    FUZZ_CHECK(a.pending_rpcs() == 0 && b.pending_rpcs() == 0);
    FUZZ_CHECK(a.reassembly_bytes() == 0 && b.reassembly_bytes() == 0);
    FUZZ_CHECK(a.held_bytes() == 0 && b.held_bytes() == 0);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Pure decoders first.
  ByteView in(data, size);
  auto r = wire::decode(in, fixed().cfg.network_id);
  FUZZ_CHECK(r.datagram.has_value() != (r.drop != DropReason::kCount));
  if (r.datagram) FUZZ_CHECK(size <= wire::kMaxDatagram);
  if (auto* s = r.datagram ? std::get_if<wire::Sealed>(&*r.datagram) : nullptr)
    FUZZ_CHECK(s->header.size() == wire::kSealedHeaderSize + (s->cookie ? wire::kCookieSize : 0) &&
               s->ciphertext.size() > wire::kTagSize);
  if (r.datagram && std::holds_alternative<wire::CookieReply>(*r.datagram)) FUZZ_CHECK(size == wire::kCookieReplySize);
  if (auto fr = wire::decode_frame(in)) {
    FUZZ_CHECK(fr->whole() || (fr->index < fr->count && fr->count <= wire::kMaxFragments && !fr->body.empty()));
    if (fr->type == wire::kFramePadded) {
      // The body round-trips through encode_padded (when it fits one) and every byte after it is zero.
      FUZZ_CHECK(fr->body.size() + wire::kPaddedHeaderSize <= size);
      if (size == wire::kMaxSealedPlaintext) FUZZ_CHECK(wire::encode_padded(fr->body) == Bytes(data, data + size));
    }
    FUZZ_CHECK(fr->body.data() >= data && fr->body.data() + fr->body.size() <= data + size);
  }

  Harness h;
  h.run(data, size);
  return 0;
}
