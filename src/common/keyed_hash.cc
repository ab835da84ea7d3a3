#include "storjnet/keyed_hash.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace storjnet {

namespace {
// Any constant works for simulation; it only has to be the same in every run.
constexpr uint8_t kSimulationKey[crypto_shorthash_KEYBYTES] = {'s', 't', 'o', 'r', 'j', 'n', 'e', 't',
                                                               '-', 's', 'i', 'm', '-', 'k', 'e', 'y'};
std::once_flag key_once;
uint8_t key[crypto_shorthash_KEYBYTES];
bool key_pinned = false;

const uint8_t* process_key() {
  std::call_once(key_once, [] {
    if (sodium_init() < 0) std::abort();
    randombytes_buf(key, sizeof key);
  });
  return key;
}
}  // namespace

uint64_t keyed_hash(const void* p, size_t n) noexcept {
  uint64_t h;
  crypto_shorthash(reinterpret_cast<uint8_t*>(&h), static_cast<const uint8_t*>(p), n, process_key());
  return h;
}

bool pin_keyed_hash_for_simulation() noexcept {
  std::call_once(key_once, [] {
    std::memcpy(key, kSimulationKey, sizeof key);
    key_pinned = true;
  });
  return key_pinned;
}

}  // namespace storjnet
