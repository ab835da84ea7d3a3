// Bodies of the DHT's network RPCs (docs/protocol.md section 5), msgpack encoded.
//
//   kademlia_find_node  request [target: bin 20] or [target: bin 20, flags: uint]   response [contact...]
//                       flags bit 0 (kFindNodePlacement): name the closest contacts whatever their dial-back
//                       confirmation (a put placing a value, docs/protocol.md 5); bit 1 (kFindNodeVerdict): add
//                       the dial-back verdict, response [[contact...], verdict: uint 0 | 1 | 2]; bit 2
//                       (kFindNodeMarks, with bit 1): mark the contacts the answerer's dial-back has not
//                       confirmed, response [[contact...], verdict, unconfirmed: uint] (bit i: the i-th contact
//                       sent); other bits are ignored
//   kademlia_find_value request [key: bin 20]               response [1, value: bin, version: uint,
//                                                                     owner: bin 32, signature: bin 64]
//                                                                     or [0, [contact...]]
//   kademlia_store      request [key: bin 20, value: bin, version: uint, owner: bin 32, signature: bin 64]
//                       response true (stored, or the same signed value held) | false (the owner's newer
//                       value is held) | error (another owner holds the key, quota, storage failure, ...)
//   kademlia_dial_back  request [2, nonce: bin 16, ip, port]  self-check ask (S -> helper H1)   response bool
//                       request [3, nonce: bin 16, contact]   probe-for (H1 -> H2: probe S)     response bool
//                       request [4, nonce: bin 16]            probe (H2 -> S)                   response true
//                       request [5]                           verdict (V -> S)   response uint 0 | 1 | 2
// Values over kMaxValueSize are malformed. Signatures are checked by the caller (dht/signed_value.h).
//   contact = [public key: bin 32, ip: bin 4 or 16, port: uint]   (node id = BLAKE2b-160(public key))
//           or [public key, ip, port, ip2, port2]: a second address, of the other family (dual-stack nodes;
//           a dial-back probe-for always names one address)
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

// find_node's request: the target, whether the asker places a value (kFindNodePlacement), whether it
// wants the answerer's dial-back verdict with the contacts (kFindNodeVerdict), and whether it wants the contacts
// the answerer has not confirmed marked (kFindNodeMarks: a put, which stores on them but need not ask them).
constexpr uint64_t kFindNodePlacement = 1;
constexpr uint64_t kFindNodeVerdict = 2;
constexpr uint64_t kFindNodeMarks = 4;
struct FindNodeRequest {
  NodeId target;
  bool placement = false;
  bool verdict = false;
  bool marks = false;
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
// kademlia_dial_back's sub-kinds (docs/protocol.md 5.1; 0 and 1 were version 3's ask and probe).
enum class DialBackKind : uint8_t {
  kSelfCheck = 2,  // S -> H1: "have a stranger probe me"     [2, nonce: bin 16, ip, port]  -> bool
  kProbeFor = 3,   // H1 -> H2: "probe this contact"           [3, nonce: bin 16, contact]   -> bool
  kProbe = 4,      // H2 -> S: the probe                        [4, nonce: bin 16]            -> true
  kVerdict = 5,    // V -> S: "can strangers reach you?"        [5]                           -> uint verdict
};
struct DialBackRequest {
  DialBackKind kind = DialBackKind::kVerdict;
  DialBackNonce nonce{};  // self-check, probe-for, probe: S's, new for every self-check ask
  Endpoint via;           // self-check: the address S sent the ask to (H1's, as S holds it)
  Contact target;         // probe-for: S, at the address H1 heard the self-check ask from
};
Bytes encode_dial_back_request(const DialBackRequest& r);
std::optional<DialBackRequest> decode_dial_back_request(ByteView body);

// S's answer to a verdict request, about the family the request came over.
enum class DialBackVerdict : uint8_t {
  kUnreachable = 0,  // no stranger's probe came in unsolicited within DialBack::kReachableFor
  kReachable = 1,    // one did
  kUnknown = 2,      // S has not finished a self-check over that family yet: ask again later
};
Bytes encode_dial_back_verdict(DialBackVerdict v);
std::optional<DialBackVerdict> decode_dial_back_verdict(ByteView body);

// find_node's answer: [contact...], or [[contact...], verdict] when the request carried kFindNodeVerdict (the
// verdict about the family the request came over, as a kVerdict request would answer it), or [[contact...],
// verdict, unconfirmed] when it carried kFindNodeMarks too. The decoder takes every shape: an answerer of an
// older version ignores the flags. `unconfirmed` has bit i set for contacts[i] (the decoder re-indexes it past
// contacts it skipped); bits at or past the number of contacts sent are malformed. Encoding one without a verdict
// sends kUnknown.
struct FindNodeAnswer {
  std::vector<Contact> contacts;
  std::optional<DialBackVerdict> verdict;
  std::optional<uint32_t> unconfirmed = std::nullopt;
};
Bytes encode_find_node_answer(const FindNodeAnswer& a);
// The marks of `sent` (bit i: sent[i]) carried over to `kept`, the contacts of `sent` the asker kept, in the same
// order (by id: the asker may have turned a kept contact's address): bit j for kept[j].
uint32_t marks_of_kept(const std::vector<Contact>& sent, uint32_t marks, const std::vector<Contact>& kept);
std::optional<FindNodeAnswer> decode_find_node_answer(ByteView body);

Bytes encode_bool(bool b);
std::optional<bool> decode_bool(ByteView body);

}  // namespace storjnet::dht
