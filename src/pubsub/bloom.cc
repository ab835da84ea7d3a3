#include "pubsub/bloom.h"

#include <sodium.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace storjnet::pubsub {

TopicHash TopicHash::of(std::string_view topic) {
  uint8_t out[16];
  crypto_generichash(out, sizeof out, reinterpret_cast<const uint8_t*>(topic.data()), topic.size(), nullptr, 0);
  TopicHash h;
  std::memcpy(&h.h1, out, 8);
  std::memcpy(&h.h2, out + 8, 8);
  h.h2 |= 1;  // odd: the k indices are distinct modulo a power of two
  return h;
}

size_t BloomFilter::round_bits(size_t bits) { return std::clamp<size_t>((bits + 63) / 64 * 64, 64, kMaxBits); }

BloomFilter::BloomFilter(size_t bits, size_t hashes)
    : hashes_(static_cast<uint32_t>(std::clamp<size_t>(hashes, 1, 32))), bits_(static_cast<uint32_t>(round_bits(bits))) {}

void BloomFilter::set_bit(size_t i) {
  if (words_.empty()) words_.assign(word_count(), 0);
  words_[i / 64] |= uint64_t{1} << (i % 64);
}

void BloomFilter::set_word(size_t w, uint64_t v) {
  if (words_.empty()) {
    if (v == 0) return;
    words_.assign(word_count(), 0);
  }
  words_[w] = v;
}

bool BloomFilter::operator==(const BloomFilter& o) const {
  if (hashes_ != o.hashes_ || bits_ != o.bits_) return false;
  for (size_t w = 0; w < word_count(); ++w)
    if (word(w) != o.word(w)) return false;
  return true;
}

void BloomFilter::add(const TopicHash& t) {
  const uint64_t m = bits();
  if (!m) return;
  for (size_t i = 0; i < hashes_; ++i) set_bit((t.h1 + i * t.h2) % m);
}

bool BloomFilter::contains(const TopicHash& t) const {
  const uint64_t m = bits();
  if (!m) return false;
  for (size_t i = 0; i < hashes_; ++i)
    if (!bit((t.h1 + i * t.h2) % m)) return false;
  return true;
}

bool BloomFilter::merge(const BloomFilter& o) {
  if (o.bits_ != bits_) return false;
  if (o.words_.empty()) return true;
  if (words_.empty()) {
    words_ = o.words_;
    return true;
  }
  for (size_t i = 0; i < words_.size(); ++i) words_[i] |= o.words_[i];
  return true;
}

size_t BloomFilter::popcount() const {
  size_t n = 0;
  for (auto w : words_) n += std::popcount(w);
  return n;
}

bool BloomFilter::empty() const {
  return std::all_of(words_.begin(), words_.end(), [](uint64_t w) { return w == 0; });
}

double BloomFilter::false_positive_rate(size_t bits, size_t hashes, double n) {
  if (!bits) return 1;
  return std::pow(1 - std::exp(-double(hashes) * n / double(bits)), double(hashes));
}

}  // namespace storjnet::pubsub
