// Bodies of the DHT's network RPCs (docs/protocol.md section 5), msgpack encoded.
//
//   kademlia_find_node  request [target: bin 20] or [target: bin 20, flags: uint]   response [contact...]
//                       flags bit 0 (kFindNodePlacement): name the closest contacts whatever their dial-back
//                       confirmation (a put placing a value, docs/protocol.md 5); other bits are ignored
//   kademlia_find_value request [key: bin 20]               response [1, value: bin, version: uint,
//                                                                     owner: bin 32, signature: bin 64]
//                                                                     or [0, [contact...]]
//   kademlia_store      request [key: bin 20, value: bin, version: uint, owner: bin 32, signature: bin 64]
//                       response true (stored, or the same signed value held) | false (the owner's newer
//                       value is held) | error (another owner holds the key, quota, storage failure, ...)
//   kademlia_dial_back  request [0, nonce: bin 16, contact]  ask: "probe this contact" (verifier -> helper)
//                       request [1, nonce: bin 16]           probe (helper -> probed node)
//                       response [unsolicited: bool, signature: bin 64] (the probed node's testimony; the
//                       helper relays it as is) or [] (ask only: the probed node did not answer)
// Values over kMaxValueSize are malformed. Signatures are checked by the caller (dht/signed_value.h).
//   contact = [public key: bin 32, ip: bin 4 or 16, port: uint]   (node id = BLAKE2b-160(public key))
//           or [public key, ip, port, ip2, port2]: a second address, of the other family (dual-stack nodes;
//           a dial-back ask always names one address)
// Decoders return nullopt on anything malformed; contacts with unusable addresses are skipped.
#pragma once
#include <optional>
#include <vector>

#include "storjnet/contact.h"
#include "storjnet/dht_storage.h"

namespace storjnet::dht {

constexpr size_t kMaxContactsPerResponse = 32;

Bytes encode_id_request(const NodeId& id);
std::optional<NodeId> decode_id_request(ByteView body);

// find_node's request: the target, and whether the asker places a value (kFindNodePlacement).
constexpr uint64_t kFindNodePlacement = 1;
struct FindNodeRequest {
  NodeId target;
  bool placement = false;
};
Bytes encode_find_node_request(const FindNodeRequest& q);
std::optional<FindNodeRequest> decode_find_node_request(ByteView body);

Bytes encode_contacts(const std::vector<Contact>& contacts);
std::optional<std::vector<Contact>> decode_contacts(ByteView body);

struct FindValueResponse {
  std::optional<StoredValue> value;  // key, value, version, publisher set
  std::vector<Contact> contacts;
};
Bytes encode_find_value_response(const FindValueResponse& r);
std::optional<FindValueResponse> decode_find_value_response(ByteView body, const NodeId& key);

Bytes encode_store(const StoredValue& v);
std::optional<StoredValue> decode_store(ByteView body);

using DialBackNonce = std::array<uint8_t, 16>;
struct DialBackRequest {
  bool probe = false;        // false: an ask (target set); true: a probe
  DialBackNonce nonce{};
  Contact target;            // ask only
};
Bytes encode_dial_back_request(const DialBackRequest& r);
std::optional<DialBackRequest> decode_dial_back_request(ByteView body);

// The probed node's testimony, signed by it over testimony_signing_bytes; reached=false encodes [].
struct DialBackAnswer {
  bool reached = false;
  bool unsolicited = false;  // the probe came from an address the probed node had sent nothing to lately
  Signature signature{};
};
Bytes encode_dial_back_answer(const DialBackAnswer& a);
std::optional<DialBackAnswer> decode_dial_back_answer(ByteView body);
// What the probed node signs: "storjnet-dial-back-v2" | network id (4, big-endian) | nonce (16) |
// the helper's public key (32, the probe's authenticated sender) | the family the probe came over (1 byte, 4
// or 6) | unsolicited (1 byte, 0 or 1).
Bytes testimony_signing_bytes(uint32_t network_id, const DialBackNonce& nonce, const PublicKey& helper,
                              Endpoint::Family probed, bool unsolicited);

Bytes encode_bool(bool b);
std::optional<bool> decode_bool(ByteView body);

}  // namespace storjnet::dht
