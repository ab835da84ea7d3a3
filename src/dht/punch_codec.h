// Bodies of kademlia_punch (method 7), docs/protocol.md 5.2. Plain bytes, no msgpack: the first byte is the
// kind, the rest fixed-size fields. Every decoder refuses trailing bytes, unknown kinds, unspecified
// addresses and port 0.
//   ASK        01 | target node id (20) [| lan]                  request, initiator -> rendezvous
//   ASK reply  endpoint [| 01]                                   the target as the rendezvous sees it [same IP]
//   INTRO      02 | initiator public key (32) | endpoint [| lan] one-way, rendezvous -> target
//   HOLE       03                                                one-way, target <-> initiator (opens NATs)
//   KEEPALIVE  04                                                one-way, NATed node -> its rendezvous peers
//   SYNC       05 | mapping (1) [| endpoint]                      request and its reply, over a relayed path
//                                                                (src/dht/birthday.h): the sender's NAT mapping
//                                                                (0 unknown: no endpoint; 1 independent: its
//                                                                public endpoint; 2 dependent: its public
//                                                                address, port 0)
//   endpoint = 04 | IPv4 (4) | port (2, big-endian)  or  06 | IPv6 (16) | port (2, big-endian)
//   lan = an endpoint that is private and not loopback: the initiator's LAN address, for a target behind the
//   same router (docs/protocol.md 5.2, "Same router"); the reply's trailing 01 says the rendezvous sees the
//   asker and the target at one public IP address.
#pragma once
#include <optional>

#include "storjnet/bytes.h"
#include "storjnet/endpoint.h"
#include "storjnet/identity.h"
#include "storjnet/node_id.h"

namespace storjnet::dht {

enum class PunchKind : uint8_t { kAsk = 1, kIntro = 2, kHole = 3, kKeepalive = 4, kSync = 5 };

struct PunchMessage {
  PunchKind kind = PunchKind::kHole;
  NodeId target;         // kAsk
  PublicKey initiator{};  // kIntro
  Endpoint endpoint;     // kIntro; kSync (none when mapping is 0, port 0 when it is 2)
  uint8_t mapping = 0;   // kSync: NatMapping (0 unknown, 1 independent, 2 dependent)
  Endpoint lan{};        // kAsk, kIntro: the initiator's LAN address, or none (family kNone)
  bool operator==(const PunchMessage&) const = default;
};

Bytes encode_punch(const PunchMessage& m);
std::optional<PunchMessage> decode_punch(ByteView in);

Bytes encode_punch_endpoint(const Endpoint& ep);
std::optional<Endpoint> decode_punch_endpoint(ByteView in);

// The ASK reply.
struct PunchAnswer {
  Endpoint target;           // as the rendezvous sees it
  bool same_address = false;  // the rendezvous sees the asker at the target's IP address
  bool operator==(const PunchAnswer&) const = default;
};
Bytes encode_punch_answer(const PunchAnswer& a);
std::optional<PunchAnswer> decode_punch_answer(ByteView in);

// Whether `ep` may be carried as a LAN address: valid, private, not loopback.
bool lan_address(const Endpoint& ep);

}  // namespace storjnet::dht
