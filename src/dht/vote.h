// How a get chooses among the values a lookup collected (docs/protocol.md section 5, "Operations", and 10.8).
// Pure functions of the lookup's result: no I/O, no state.
#pragma once
#include <optional>
#include <vector>

#include "dht/lookup.h"
#include "storjnet/dht.h"

namespace storjnet::dht {

// The values a get votes with: those the k closest answering nodes returned (the nodes that should hold the
// key). However many colluding nodes a lookup is led to, those farther away do not outvote them; only when
// none of the k closest returned a value do the farther ones count.
std::vector<FoundValue> voters(const LookupResult& res);

// One entry per owner among `found` (and our own copy): its newest value and how many nodes held it; the owner
// the key is the self-named key of (dht/value_store.h) first, then most holders, then newest, then smallest
// owner key.
std::vector<OwnedValue> tally(const std::vector<FoundValue>& found, const std::optional<StoredValue>& local);

}  // namespace storjnet::dht
