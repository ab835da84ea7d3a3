// Wire bodies of quasar_update and quasar_notify (docs/protocol.md, section 8), with bounded decoders.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pubsub/bloom.h"
#include "storjnet/bytes.h"
#include "storjnet/contact.h"
#include "storjnet/identity.h"

namespace storjnet::pubsub {

using EventId = std::array<uint8_t, 16>;

// quasar_update kinds.
enum class UpdateKind : uint8_t {
  kFilter = 0,    // a neighbour's attenuated Bloom filter (one-way)
  kRegister = 1,  // rendezvous (un)subscription routed towards the topic key (request)
  kReplica = 2,   // rendezvous (un)subscription copied to a holder (request)
};

// quasar_notify kinds.
enum class NotifyKind : uint8_t {
  kQuasar = 0,   // Quasar: followed filter gradients (one-way)
  kWalk = 1,     // Quasar: random walk step, no filter matched (one-way)
  kRoute = 2,    // rendezvous: routed greedily towards the topic key (request)
  kHolder = 3,   // rendezvous: to a replica holder, not forwarded (request)
  kDeliver = 4,  // rendezvous: holder to subscriber (request)
  kServe = 5,    // direct rendezvous: publisher to a holder, naming its holders (request)
};

// Holders a registration can name (direct rendezvous: the subscriber's lookup's picks).
constexpr size_t kMaxRegisterHolders = 32;

struct FilterBody {
  std::vector<BloomFilter> levels;
};

// A (un)registration is a statement signed by the subscriber (Ed25519 over register_statement()), so no
// forwarder can make or undo one for anyone else. Only `hops` and `endpoint` may change on the way.
struct RegisterBody {
  UpdateKind kind = UpdateKind::kRegister;
  NodeId topic_key;
  bool subscribe = true;
  uint32_t hops = 0;
  PublicKey subscriber{};            // who (un)registers, and whose signature this is
  std::optional<Endpoint> endpoint;  // nullopt when sent by the subscriber itself: the receiver fills it in
  uint64_t issued_us = 0;            // the subscriber's wall clock (µs) when it signed
  // Direct: the holders the subscriber registered at, from its own lookup (at most kMaxRegisterHolders);
  // a holder serves it only when ranked among them (pubsub/serving.h). Empty: every holder serves it.
  std::vector<NodeId> holders;
  Signature signature{};

  NodeId subscriber_id() const { return Identity::id_of(subscriber); }
};

// The bytes a subscriber signs: "storjnet pubsub register" (24) | network id (4, BE) | topic key (20) |
// subscribe (1: 0 or 1) | issued_us (8, BE) | holder count (1) | holders (20 each).
Bytes register_statement(uint32_t network_id, const RegisterBody& r);

struct NotifyBody {
  NotifyKind kind = NotifyKind::kQuasar;
  EventId id{};
  std::string topic;
  std::string event;  // JSON text
  uint32_t ttl = 0;
  // Quasar: nodes already sent the event; kHolder: subscribers served; kServe: the publisher's holders
  std::vector<NodeId> publishers;
};

struct WireLimits {
  size_t filter_bits = 8192;  // exact size expected (rounded as BloomFilter::round_bits)
  size_t filter_hashes = 4;
  size_t depth = 3;
  uint32_t max_ttl = 64;
  size_t max_publishers = 64;
  size_t max_holder_list = 4096;  // kHolder: subscribers the terminal already served
};

enum class DecodeStatus {
  kOk,
  kMalformed,      // not our layout
  kWrongSize,      // filter of another size, hash count or depth
  kTooLarge,       // topic or event over the limit
  kBadEvent,       // event is not JSON
};

// Counters for what decoding had to bound.
struct DecodeNotes {
  bool ttl_clamped = false;
  bool publishers_truncated = false;
};

Bytes encode_filter(const FilterBody& f);
Bytes encode_register(const RegisterBody& r);
Bytes encode_notify(const NotifyBody& n);

// Which quasar_update kind a body carries (nullopt: malformed).
std::optional<UpdateKind> peek_update_kind(ByteView body);
DecodeStatus decode_filter(ByteView body, const WireLimits& lim, FilterBody& out);
DecodeStatus decode_register(ByteView body, RegisterBody& out);
DecodeStatus decode_notify(ByteView body, const WireLimits& lim, NotifyBody& out, DecodeNotes* notes = nullptr);

}  // namespace storjnet::pubsub
