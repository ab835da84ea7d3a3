#include "engine/message.h"

#include <cstring>

#include "wire/frame.h"

namespace storjnet::msg {

Bytes make(uint8_t type, uint32_t rpc_id, uint8_t method, ByteView payload) {
  Bytes m(kHeader + payload.size());
  m[0] = type;
  wire::put_u32(m.data() + 1, rpc_id);
  m[5] = method;
  if (!payload.empty()) std::memcpy(m.data() + kHeader, payload.data(), payload.size());
  return m;
}

Bytes relay_forward(const NodeId& target, ByteView inner) {
  Bytes b(NodeId::kSize + inner.size());
  std::memcpy(b.data(), target.view().data(), NodeId::kSize);
  if (!inner.empty()) std::memcpy(b.data() + NodeId::kSize, inner.data(), inner.size());
  return b;
}

std::optional<RelayForward> parse_relay_forward(ByteView body) {
  if (body.size() <= NodeId::kSize || body.size() - NodeId::kSize > wire::kMaxDatagram) return std::nullopt;
  return RelayForward{NodeId::from_bytes(body.first(NodeId::kSize)), body.subspan(NodeId::kSize)};
}

Bytes token(uint8_t type, uint64_t t) {
  uint8_t b[8];
  wire::put_u64(b, t);
  return make(type, 0, 0, ByteView(b, sizeof b));
}

Bytes seal(uint32_t network_id, const PublicKey& sender, const crypto::SessionKey& key, const wire::Nonce& nonce,
           ByteView frame, const wire::Cookie* cookie) {
  Bytes dg;
  dg.reserve(wire::kSealedOverhead + wire::kCookieSize + frame.size());
  wire::encode_sealed_header(network_id, sender, nonce, dg, cookie);
  crypto::seal(key, nonce, {dg.data(), dg.size()}, frame, dg);
  return dg;
}

Bytes whole_frame(ByteView message) {
  Bytes f(1 + message.size());
  f[0] = wire::kFrameWhole;
  if (!message.empty()) std::memcpy(f.data() + 1, message.data(), message.size());
  return f;
}

}  // namespace storjnet::msg
