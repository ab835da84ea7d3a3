// Why an incoming datagram or message was dropped. Every drop is counted under exactly one reason.
#pragma once
#include <array>
#include <cstdint>
#include <string_view>

namespace storjnet {

enum class DropReason : uint8_t {
  kTruncated,          // shorter than its kind's fixed header
  kOversized,          // longer than the 1280-byte datagram limit
  kBadVersion,         // protocol version byte is not ours
  kWrongNetwork,       // network id differs from ours
  kBadKind,            // unknown datagram kind
  kBadKey,             // sender key is not a valid Ed25519 point, or is our own
  kAuthFailed,         // AEAD tag check failed: forged or altered
  kReplay,             // counter already seen (or too old) in the sender's session
  kStaleSession,       // datagram from a sender session older than the current one
  kBadFrame,           // decrypted frame malformed
  kReassemblyLimit,    // fragment refused: message, per-peer or total reassembly bound
  kReassemblyTimeout,  // partial message expired before completion
  kBadMessage,         // message header malformed
  kUnexpectedResponse, // response or hello reply that matches no outstanding request
  kUnknownMethod,      // request for a method this node does not serve
  kRateLimited,        // sender exceeded a per-peer or global rate limit
  kSessionLimit,       // no room for a new peer session
  // hostile traffic (engine guard): anti-amplification, first-contact budget, fair pending RPCs
  kAmplificationLimit, // send withheld: over 3x the bytes an unproven address sent us (request retried later)
  kHoldFull,           // answer to an unproven address not held: per-address, per-prefix or total bound
  kHoldExpired,        // held answer's address did not prove itself in time
  kBadEcho,            // address echo matching no challenge sent to that address and key
  kKeyBudget,          // unknown sender not processed: first-contact key budget spent (cookie sent instead), or
                       // over Engine::kMaxKeyJobQueue datagrams (or our messages to it) waiting for its key work
  kBadCookie,          // cookie invalid for the source address or expired; cookie reply matching no session
  kPendingShare,       // request refused: its peer or prefix already holds its share of pending RPCs
  kShortFragment,      // a fragment other than the last is not full-size (kMaxChunk)
  kReassemblyEvicted,  // partial message dropped to make room for a network holding less
  kCookieBudget,       // unknown sender dropped unanswered: cookie replies to its prefix, or in all, over budget
  kUnprovenLimit,      // request dropped unanswered: its peer's budget for an unproven address is spent
  // Sybil resistance (routing table admission, pubsub registrations): contacts and registrations refused.
  kIdPuzzle,           // a contact whose id does not solve the network's id puzzle
  kPrefixLimit,        // a contact or subscriber refused: its address block (/24, /48) has its share
  kForgedRegistration, // pubsub (un)registration not signed by the subscriber it names, or outside its window
  kSaturatedFilter,    // a neighbour's Bloom filter level with more than max_fill of its bits set: not trusted
  kDhtBadValue,        // DHT value (store or find_value answer) with a bad signature or a future version
  kDhtStoreRefused,    // kademlia_store refused: expired, too large, storage full, peer or prefix quota
  kDhtDialBackRefused, // kademlia_dial_back ask or probe refused (unproven asker, rates, probe bound), or a forged testimony
  kPunchRefused,       // kademlia_punch ask or introduction refused (malformed, unproven asker, rates, hole bounds)
  kRelayRefused,       // relay_reserve/forward/deliver refused (malformed, no reservation or circuit, budgets, caps)
  kCount
};

constexpr std::array<std::string_view, static_cast<size_t>(DropReason::kCount)> kDropReasonNames = {
    "truncated",        "oversized",          "bad_version",     "wrong_network",    "bad_kind",
    "bad_key",          "auth_failed",        "replay",          "stale_session",    "bad_frame",
    "reassembly_limit", "reassembly_timeout", "bad_message",     "unexpected_response",
    "unknown_method",   "rate_limited",       "session_limit",
    "amplification_limit", "hold_full",       "hold_expired",    "bad_echo",         "key_budget",
    "bad_cookie",       "pending_share",
    "short_fragment",   "reassembly_evicted", "cookie_budget",
    "unproven_limit",
    "id_puzzle",        "prefix_limit",       "forged_registration", "saturated_filter",
    "dht_bad_value",    "dht_store_refused",  "dht_dial_back_refused", "punch_refused",
    "relay_refused"};

struct DropCounters {
  std::array<uint64_t, static_cast<size_t>(DropReason::kCount)> by_reason{};
  void add(DropReason r, uint64_t n = 1) { by_reason[static_cast<size_t>(r)] += n; }
  uint64_t get(DropReason r) const { return by_reason[static_cast<size_t>(r)]; }
  uint64_t total() const {
    uint64_t t = 0;
    for (auto v : by_reason) t += v;
    return t;
  }
};

}  // namespace storjnet
