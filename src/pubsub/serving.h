// Which holders serve which subscriber (direct rendezvous, docs/protocol.md section 8.3).
//
// A subscriber registers at the `holders` nodes its own lookup found closest to the topic key and names them in
// its signed registration; a publisher sends each event (kind 5, serve) to the holders its lookup found, naming
// them. A holder then delivers to a subscriber only when it is among the first `serving` of the holders both
// named, ranked by SipHash-2-4 keyed by the event id over (subscriber id, holder id): every holder computes the
// same answer, the choice changes with every event (an attacker cannot place ids that are chosen for every
// event), and each subscriber is sent at most `serving` copies however many holders there are. Pure functions.
#pragma once
#include <cstddef>
#include <unordered_set>
#include <vector>

#include "pubsub/wire.h"
#include "storjnet/keyed_hash.h"
#include "storjnet/node_id.h"

namespace storjnet::pubsub {

using HolderSet = std::unordered_set<NodeId, KeyedHash>;

// The rank score of `holder` for `subscriber` under event `id`.
uint64_t serving_score(const EventId& id, const NodeId& subscriber, const NodeId& holder);

// Whether holder `me` delivers event `id` to `subscriber`, who registered naming `subscriber_holders`, when the
// publisher named `publisher_holders`: `me` is one of the holders both named (the shared ones) and among the
// first `serving` of them by serving_score. Every shared holder serves when fewer than 2 x `serving` are
// shared (the lookups disagreed, so attackers may be most of them). True also when the two lists share
// nobody (a registration held from an older holder set: every holder that has it serves) or the subscriber
// named nobody (greedy registrations).
bool serves(const EventId& id, const NodeId& me, const NodeId& subscriber, const std::vector<NodeId>& subscriber_holders,
            const HolderSet& publisher_holders, size_t serving);

// A distance (an XOR of two ids) as a fraction of the id space, from its leading 64 bits.
double distance_fraction(const NodeId& distance);

// How many times denser than the network's density the nodes a lookup `found` near `key` are. The density is
// what the caller sees where it stands: its own k-th closest contact is `own_radius` away, so the n-th
// closest node to any key is expected about own_radius * n / k away. The result is that expectation for the
// farthest of `found` over its distance: about 1 in an honest network (its spread is that of two k-th
// neighbour distances, a factor 1.5 either way is common, 2 is rare), and large when ids were placed near the
// key. 0 when it cannot be judged (fewer than k / 2 found, or a zero radius).
double crowding(const NodeId& key, const std::vector<NodeId>& found, const NodeId& own_radius, size_t k);

// The dedupe key of an event as sent by `sender` (a holder handles the publisher's copy even when another
// node sent the same id first).
EventId per_sender(const EventId& id, const NodeId& sender);

// The dedupe key of a delivery: BLAKE2b-128 of (id, topic, event). A node that learns an event id cannot make
// a subscriber drop the real event by sending other content under the same id first.
EventId content_key(const NotifyBody& ev);

}  // namespace storjnet::pubsub
