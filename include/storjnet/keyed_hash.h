// Keyed hashing for every hash table whose keys come from the network (node ids, public keys, DHT keys,
// topic keys, event ids, stream ids, endpoints), so a peer that chooses keys cannot make them collide
// ("hash flooding"). One helper for all: SipHash-2-4 (libsodium's crypto_shorthash) under a per-process
// secret key, random at first use.
//
// Determinism: a simulation pins the key to a fixed value before its first use (Simulator's constructor
// calls pin_keyed_hash_for_simulation()), so hash-table iteration order, and with it a run's trace, replays
// exactly by seed. A real process never pins: its key is random and unknown to peers.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storjnet {

// SipHash-2-4 of `n` bytes at `p` under the process key. Thread-safe.
uint64_t keyed_hash(const void* p, size_t n) noexcept;
// Fixes the process key to a constant if no key is in use yet; true when the key is (now) the fixed one.
bool pin_keyed_hash_for_simulation() noexcept;

// Hash functor for byte-like keys: std::array<uint8_t, N>, std::string, std::vector<uint8_t>, spans, and any
// type with a `view()` returning a byte span (NodeId). Use as the Hash of unordered containers.
struct KeyedHash {
  using is_transparent = void;
  template <size_t N>
  size_t operator()(const std::array<uint8_t, N>& a) const noexcept { return keyed_hash(a.data(), N); }
  size_t operator()(std::string_view s) const noexcept { return keyed_hash(s.data(), s.size()); }
  size_t operator()(const std::string& s) const noexcept { return keyed_hash(s.data(), s.size()); }
  size_t operator()(const std::vector<uint8_t>& b) const noexcept { return keyed_hash(b.data(), b.size()); }
  size_t operator()(std::span<const uint8_t> b) const noexcept { return keyed_hash(b.data(), b.size()); }
  template <class T>
    requires requires(const T& t) { t.view(); }
  size_t operator()(const T& t) const noexcept {
    auto v = t.view();
    return keyed_hash(v.data(), v.size());
  }
  // Integers from the network (stream ids, rpc ids): hashed too, never identity.
  size_t operator()(uint64_t v) const noexcept { return keyed_hash(&v, sizeof v); }
  size_t operator()(uint32_t v) const noexcept { return keyed_hash(&v, sizeof v); }
};

}  // namespace storjnet
