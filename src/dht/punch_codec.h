// Bodies of kademlia_punch (method 7), docs/protocol.md 5.2. Plain bytes, no msgpack: the first byte is the
// kind, the rest fixed-size fields. Every decoder refuses trailing bytes, unknown kinds, unspecified
// addresses and port 0.
//   ASK        01 | target node id (20)                          request, initiator -> rendezvous
//   ASK reply  endpoint                                          the target as the rendezvous sees it
//   INTRO      02 | initiator public key (32) | endpoint         one-way, rendezvous -> target
//   HOLE       03                                                one-way, target <-> initiator (opens NATs)
//   KEEPALIVE  04                                                one-way, NATed node -> its rendezvous peers
//   endpoint = 04 | IPv4 (4) | port (2, big-endian)  or  06 | IPv6 (16) | port (2, big-endian)
#pragma once
#include <optional>

#include "storjnet/bytes.h"
#include "storjnet/endpoint.h"
#include "storjnet/identity.h"
#include "storjnet/node_id.h"

namespace storjnet::dht {

enum class PunchKind : uint8_t { kAsk = 1, kIntro = 2, kHole = 3, kKeepalive = 4 };

struct PunchMessage {
  PunchKind kind = PunchKind::kHole;
  NodeId target;         // kAsk
  PublicKey initiator{};  // kIntro
  Endpoint endpoint;     // kIntro
  bool operator==(const PunchMessage&) const = default;
};

Bytes encode_punch(const PunchMessage& m);
std::optional<PunchMessage> decode_punch(ByteView in);

Bytes encode_punch_endpoint(const Endpoint& ep);
std::optional<Endpoint> decode_punch_endpoint(ByteView in);

}  // namespace storjnet::dht
