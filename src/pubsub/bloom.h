// Bloom filter over topics, and the topic hash it is indexed by.
//
// A topic is hashed once (BLAKE2b-128 of the topic string) into two 64-bit halves; index i of the k indices
// is (h1 + i * h2) mod bits (Kirsch-Mitzenmacher double hashing). Sizes are multiples of 64 bits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace storjnet::pubsub {

struct TopicHash {
  uint64_t h1 = 0, h2 = 1;
  static TopicHash of(std::string_view topic);
};

class BloomFilter {
 public:
  static constexpr size_t kMaxBits = 1 << 20;

  BloomFilter() = default;
  // `bits` is rounded up to a multiple of 64 (at least 64, at most kMaxBits); `hashes` to [1, 32].
  // The bitmap is allocated on the first bit set and released by clear(): a filter with no bit set (most
  // levels of most neighbours) costs no heap.
  BloomFilter(size_t bits, size_t hashes);
  static size_t round_bits(size_t bits);

  size_t bits() const { return bits_; }
  size_t hashes() const { return hashes_; }
  void add(const TopicHash& t);
  bool contains(const TopicHash& t) const;
  // Union; filters of another size are ignored (returns false).
  bool merge(const BloomFilter& o);
  void clear() { std::vector<uint64_t>().swap(words_); }
  void set_bit(size_t i);
  bool bit(size_t i) const { return !words_.empty() && ((words_[i / 64] >> (i % 64)) & 1); }
  size_t popcount() const;
  bool empty() const;
  // Fraction of bits set.
  double fill() const { return bits_ ? double(popcount()) / double(bits_) : 0; }
  bool operator==(const BloomFilter& o) const;
  size_t word_count() const { return bits_ / 64; }
  uint64_t word(size_t w) const { return words_.empty() ? 0 : words_[w]; }
  void set_word(size_t w, uint64_t v);  // word w (< word_count()) becomes v
  size_t heap_bytes() const { return words_.capacity() * sizeof(uint64_t); }

  // Expected false-positive rate of a filter holding n distinct topics: (1 - e^(-k n / m))^k.
  static double false_positive_rate(size_t bits, size_t hashes, double n);

 private:
  uint32_t hashes_ = 0;
  uint32_t bits_ = 0;
  std::vector<uint64_t> words_;  // empty while no bit is set, else bits_ / 64 words
};

}  // namespace storjnet::pubsub
