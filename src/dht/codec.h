// Bodies of the DHT's network RPCs (docs/protocol.md section 5), msgpack encoded.
//
//   kademlia_find_node  request [target: bin 20]            response [contact...]
//   kademlia_find_value request [key: bin 20]               response [1, value: bin, version: uint,
//                                                                     owner: bin 32, signature: bin 64]
//                                                                     or [0, [contact...]]
//   kademlia_store      request [key: bin 20, value: bin, version: uint, owner: bin 32, signature: bin 64]
//                       response true (stored, or the same signed value held) | false (the owner's newer
//                       value is held) | error (another owner holds the key, quota, storage failure, ...)
// Values over kMaxValueSize are malformed. Signatures are checked by the caller (dht/signed_value.h).
//   contact = [public key: bin 32, ip: bin 4 or 16, port: uint]   (node id = BLAKE2b-160(public key))
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

Bytes encode_bool(bool b);
std::optional<bool> decode_bool(ByteView body);

}  // namespace storjnet::dht
