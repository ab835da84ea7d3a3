// kademlia_punch bodies (src/dht/punch_codec.h, docs/protocol.md 5.2).
#include "dht/punch_codec.h"

#include <algorithm>

namespace storjnet::dht {

Bytes encode_punch_endpoint(const Endpoint& ep) {
  Bytes out;
  bool v4 = ep.family == Endpoint::Family::kV4;
  out.push_back(v4 ? 4 : 6);
  out.insert(out.end(), ep.addr.begin(), ep.addr.begin() + (v4 ? 4 : 16));
  out.push_back(static_cast<uint8_t>(ep.port >> 8));
  out.push_back(static_cast<uint8_t>(ep.port & 0xff));
  return out;
}

std::optional<Endpoint> decode_punch_endpoint(ByteView in) {
  if (in.empty()) return std::nullopt;
  size_t n = in[0] == 4 ? 4 : in[0] == 6 ? 16 : 0;
  if (n == 0 || in.size() != 1 + n + 2) return std::nullopt;
  Endpoint ep;
  ep.family = n == 4 ? Endpoint::Family::kV4 : Endpoint::Family::kV6;
  std::copy(in.begin() + 1, in.begin() + 1 + static_cast<ptrdiff_t>(n), ep.addr.begin());
  ep.port = static_cast<uint16_t>((in[1 + n] << 8) | in[2 + n]);
  if (ep.port == 0 || ep.is_unspecified()) return std::nullopt;
  return ep;
}

bool lan_address(const Endpoint& ep) {
  return ep.valid() && !ep.is_unspecified() && !ep.is_loopback() && ep.is_private_or_loopback();
}

namespace {
size_t endpoint_size(ByteView in) { return in.empty() ? 0 : in[0] == 4 ? 7 : in[0] == 6 ? 19 : 0; }

void append_lan(Bytes& out, const Endpoint& lan) {
  if (!lan.valid()) return;
  Bytes ep = encode_punch_endpoint(lan);
  out.insert(out.end(), ep.begin(), ep.end());
}

// `in` is empty (no LAN address) or exactly one LAN address.
bool decode_lan(ByteView in, Endpoint& lan) {
  if (in.empty()) return true;
  auto ep = decode_punch_endpoint(in);
  if (!ep || !lan_address(*ep)) return false;
  lan = *ep;
  return true;
}
}  // namespace

Bytes encode_punch_answer(const PunchAnswer& a) {
  Bytes out = encode_punch_endpoint(a.target);
  if (a.same_address) out.push_back(1);
  return out;
}

std::optional<PunchAnswer> decode_punch_answer(ByteView in) {
  PunchAnswer a;
  size_t n = endpoint_size(in);
  if (n == 0 || in.size() < n) return std::nullopt;
  auto ep = decode_punch_endpoint(in.first(n));
  if (!ep) return std::nullopt;
  a.target = *ep;
  ByteView rest = in.subspan(n);
  if (rest.size() > 1 || (rest.size() == 1 && rest[0] != 1)) return std::nullopt;
  a.same_address = rest.size() == 1;
  return a;
}

Bytes encode_punch(const PunchMessage& m) {
  Bytes out;
  out.reserve(1 + 32 + 2 * 19);
  out.push_back(static_cast<uint8_t>(m.kind));
  if (m.kind == PunchKind::kAsk) {
    auto v = m.target.view();
    out.insert(out.end(), v.begin(), v.end());
    append_lan(out, m.lan);
  } else if (m.kind == PunchKind::kIntro) {
    out.insert(out.end(), m.initiator.begin(), m.initiator.end());
    Bytes ep = encode_punch_endpoint(m.endpoint);
    out.insert(out.end(), ep.begin(), ep.end());
    append_lan(out, m.lan);
  } else if (m.kind == PunchKind::kSync) {
    out.push_back(m.mapping);
    if (m.mapping != 0) {
      Bytes ep = encode_punch_endpoint(m.endpoint);
      out.insert(out.end(), ep.begin(), ep.end());
    }
  }
  return out;
}

std::optional<PunchMessage> decode_punch(ByteView in) {
  if (in.empty()) return std::nullopt;
  PunchMessage m;
  ByteView rest = in.subspan(1);
  switch (in[0]) {
    case static_cast<uint8_t>(PunchKind::kAsk):
      if (rest.size() < NodeId::kSize || !decode_lan(rest.subspan(NodeId::kSize), m.lan)) return std::nullopt;
      m.kind = PunchKind::kAsk;
      m.target = NodeId::from_bytes(rest.first(NodeId::kSize));
      return m;
    case static_cast<uint8_t>(PunchKind::kIntro): {
      if (rest.size() < m.initiator.size()) return std::nullopt;
      m.kind = PunchKind::kIntro;
      std::copy(rest.begin(), rest.begin() + static_cast<ptrdiff_t>(m.initiator.size()), m.initiator.begin());
      ByteView eps = rest.subspan(m.initiator.size());
      size_t n = endpoint_size(eps);
      if (n == 0 || eps.size() < n) return std::nullopt;
      auto ep = decode_punch_endpoint(eps.first(n));
      if (!ep || !decode_lan(eps.subspan(n), m.lan)) return std::nullopt;
      m.endpoint = *ep;
      return m;
    }
    case static_cast<uint8_t>(PunchKind::kSync): {
      if (rest.empty() || rest[0] > 2) return std::nullopt;
      m.kind = PunchKind::kSync;
      m.mapping = rest[0];
      ByteView ep = rest.subspan(1);
      if (m.mapping == 0) return ep.empty() ? std::optional<PunchMessage>(m) : std::nullopt;
      // Independent: an endpoint. Dependent: an address, port 0 (decoded with a stand-in port).
      bool dependent = m.mapping == 2;
      if (endpoint_size(ep) != ep.size() || ep.size() < 3) return std::nullopt;
      bool port0 = ep[ep.size() - 1] == 0 && ep[ep.size() - 2] == 0;
      if (port0 != dependent) return std::nullopt;
      Bytes copy(ep.begin(), ep.end());
      if (dependent) copy.back() = 1;
      auto e = decode_punch_endpoint(copy);
      if (!e) return std::nullopt;
      m.endpoint = *e;
      if (dependent) m.endpoint.port = 0;
      return m;
    }
    case static_cast<uint8_t>(PunchKind::kHole):
    case static_cast<uint8_t>(PunchKind::kKeepalive):
      if (!rest.empty()) return std::nullopt;
      m.kind = static_cast<PunchKind>(in[0]);
      return m;
    default:
      return std::nullopt;
  }
}

}  // namespace storjnet::dht
