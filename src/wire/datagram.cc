#include "wire/datagram.h"

#include <cstring>

namespace storjnet::wire {

static void put_common(uint8_t* p, Kind kind, uint32_t network_id) {
  p[0] = kVersion;
  p[1] = static_cast<uint8_t>(kind);
  put_u32(p + 2, network_id);
}

DecodeResult decode(ByteView d, uint32_t network_id) {
  DecodeResult r;
  auto drop = [&](DropReason why) {
    r.drop = why;
    return r;
  };
  if (d.size() > kMaxDatagram) return drop(DropReason::kOversized);
  if (d.size() < kCommonHeaderSize) return drop(DropReason::kTruncated);
  if (d[0] != kVersion) return drop(DropReason::kBadVersion);
  if (get_u32(d.data() + 2) != network_id) return drop(DropReason::kWrongNetwork);
  switch (static_cast<Kind>(d[1])) {
    case Kind::kHello: {
      if (d.size() < kHelloSize) return drop(DropReason::kTruncated);
      if (d.size() > kHelloSize) return drop(DropReason::kOversized);
      Hello h;
      std::memcpy(h.sender.data(), d.data() + 6, 32);
      h.challenge = get_u64(d.data() + 38);
      r.datagram = h;
      return r;
    }
    case Kind::kHelloReply: {
      if (d.size() < kHelloReplySize) return drop(DropReason::kTruncated);
      if (d.size() > kHelloReplySize) return drop(DropReason::kOversized);
      HelloReply h;
      std::memcpy(h.responder.data(), d.data() + 6, 32);
      h.challenge = get_u64(d.data() + 38);
      r.datagram = h;
      return r;
    }
    case Kind::kSealed:
    case Kind::kSealedCookie: {
      size_t at = kCommonHeaderSize;
      Sealed s;
      if (static_cast<Kind>(d[1]) == Kind::kSealedCookie) {
        if (d.size() < kSealedOverhead + kCookieSize + 1) return drop(DropReason::kTruncated);
        s.cookie.emplace();
        std::memcpy(s.cookie->data(), d.data() + at, kCookieSize);
        at += kCookieSize;
      } else if (d.size() < kSealedOverhead + 1) {
        return drop(DropReason::kTruncated);
      }
      std::memcpy(s.sender.data(), d.data() + at, 32);
      std::memcpy(s.nonce.data(), d.data() + at + 32, kNonceSize);
      s.header = d.subspan(0, at + 32 + kNonceSize);
      s.ciphertext = d.subspan(at + 32 + kNonceSize);
      r.datagram = s;
      return r;
    }
    case Kind::kCookieReply: {
      if (d.size() < kCookieReplySize) return drop(DropReason::kTruncated);
      if (d.size() > kCookieReplySize) return drop(DropReason::kOversized);
      CookieReply c;
      std::memcpy(c.responder.data(), d.data() + 6, 32);
      std::memcpy(c.nonce.data(), d.data() + 38, kNonceSize);
      std::memcpy(c.cookie.data(), d.data() + 62, kCookieSize);
      r.datagram = c;
      return r;
    }
  }
  return drop(DropReason::kBadKind);
}

Bytes encode_hello(uint32_t network_id, const Hello& h) {
  Bytes out(kHelloSize, 0);
  put_common(out.data(), Kind::kHello, network_id);
  std::memcpy(out.data() + 6, h.sender.data(), 32);
  put_u64(out.data() + 38, h.challenge);
  return out;
}

Bytes encode_hello_reply(uint32_t network_id, const HelloReply& r) {
  Bytes out(kHelloReplySize, 0);
  put_common(out.data(), Kind::kHelloReply, network_id);
  std::memcpy(out.data() + 6, r.responder.data(), 32);
  put_u64(out.data() + 38, r.challenge);
  return out;
}

Bytes encode_cookie_reply(uint32_t network_id, const CookieReply& r) {
  Bytes out(kCookieReplySize, 0);
  put_common(out.data(), Kind::kCookieReply, network_id);
  std::memcpy(out.data() + 6, r.responder.data(), 32);
  std::memcpy(out.data() + 38, r.nonce.data(), kNonceSize);
  std::memcpy(out.data() + 62, r.cookie.data(), kCookieSize);
  return out;
}

void encode_sealed_header(uint32_t network_id, const PublicKey& sender, const Nonce& nonce, Bytes& out,
                          const Cookie* cookie) {
  size_t at = kCommonHeaderSize;
  out.resize(kSealedHeaderSize + (cookie ? kCookieSize : 0));
  put_common(out.data(), cookie ? Kind::kSealedCookie : Kind::kSealed, network_id);
  if (cookie) {
    std::memcpy(out.data() + at, cookie->data(), kCookieSize);
    at += kCookieSize;
  }
  std::memcpy(out.data() + at, sender.data(), 32);
  std::memcpy(out.data() + at + 32, nonce.data(), kNonceSize);
}

Nonce make_nonce(uint64_t epoch_us, uint64_t salt, uint64_t counter) {
  Nonce n;
  put_u64(n.data(), epoch_us);
  std::memcpy(n.data() + 8, &salt, 8);
  put_u64(n.data() + 16, counter);
  return n;
}

void split_nonce(const Nonce& n, uint64_t& epoch_us, uint64_t& salt, uint64_t& counter) {
  epoch_us = get_u64(n.data());
  std::memcpy(&salt, n.data() + 8, 8);
  counter = get_u64(n.data() + 16);
}

}  // namespace storjnet::wire
