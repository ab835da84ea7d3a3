// Engine messages (docs/protocol.md §3) and the sealing of one frame into a datagram (§1.4). Shared by the
// engine, the tests that forge traffic and the flood bench, so all build the same bytes.
#pragma once
#include <cstdint>
#include <optional>

#include "crypto/session.h"
#include "wire/datagram.h"

namespace storjnet::msg {

// Message types: request, response, error, one-way; address challenge and its echo (payload: 8-byte token); a
// response carrying an address challenge (payload: 8-byte token | the response's payload).
enum Type : uint8_t {
  kRequest = 0, kResponse = 1, kError = 2, kOneway = 3, kChallenge = 4, kEcho = 5, kProvingResponse = 6
};
constexpr size_t kHeader = 6;  // type (1) | rpc id (4, BE) | method (1)

Bytes make(uint8_t type, uint32_t rpc_id, uint8_t method, ByteView payload);
// A challenge or echo message carrying `token`.
Bytes token(uint8_t type, uint64_t token);
// A SEALED datagram (SEALED_COOKIE when `cookie` is given) carrying `frame`, sealed under `key`.
Bytes seal(uint32_t network_id, const PublicKey& sender, const crypto::SessionKey& key, const wire::Nonce& nonce,
           ByteView frame, const wire::Cookie* cookie = nullptr);
// relay_forward's body (docs/protocol.md 5.3): target id (20) | a sealed datagram for the target, unchanged.
// relay_deliver's body is the sealed datagram alone.
Bytes relay_forward(const NodeId& target, ByteView inner);
struct RelayForward {
  NodeId target;
  ByteView inner;  // into the parsed body
};
// nullopt unless the body holds a target id and a non-empty datagram of at most wire::kMaxDatagram bytes.
std::optional<RelayForward> parse_relay_forward(ByteView body);
// The WHOLE frame of a message of at most wire::kMaxWhole bytes.
Bytes whole_frame(ByteView message);

}  // namespace storjnet::msg
