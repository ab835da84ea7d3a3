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

Bytes encode_punch(const PunchMessage& m) {
  Bytes out{static_cast<uint8_t>(m.kind)};
  if (m.kind == PunchKind::kAsk) {
    auto v = m.target.view();
    out.insert(out.end(), v.begin(), v.end());
  } else if (m.kind == PunchKind::kIntro) {
    out.insert(out.end(), m.initiator.begin(), m.initiator.end());
    Bytes ep = encode_punch_endpoint(m.endpoint);
    out.insert(out.end(), ep.begin(), ep.end());
  }
  return out;
}

std::optional<PunchMessage> decode_punch(ByteView in) {
  if (in.empty()) return std::nullopt;
  PunchMessage m;
  ByteView rest = in.subspan(1);
  switch (in[0]) {
    case static_cast<uint8_t>(PunchKind::kAsk):
      if (rest.size() != NodeId::kSize) return std::nullopt;
      m.kind = PunchKind::kAsk;
      m.target = NodeId::from_bytes(rest);
      return m;
    case static_cast<uint8_t>(PunchKind::kIntro): {
      if (rest.size() < m.initiator.size()) return std::nullopt;
      m.kind = PunchKind::kIntro;
      std::copy(rest.begin(), rest.begin() + static_cast<ptrdiff_t>(m.initiator.size()), m.initiator.begin());
      auto ep = decode_punch_endpoint(rest.subspan(m.initiator.size()));
      if (!ep) return std::nullopt;
      m.endpoint = *ep;
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
