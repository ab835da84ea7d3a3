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
  BloomFilter(size_t bits, size_t hashes);
  static size_t round_bits(size_t bits);

  size_t bits() const { return words_.size() * 64; }
  size_t hashes() const { return hashes_; }
  void add(const TopicHash& t);
  bool contains(const TopicHash& t) const;
  // Union; filters of another size are ignored (returns false).
  bool merge(const BloomFilter& o);
  void clear();
  void set_bit(size_t i) { words_[i / 64] |= uint64_t{1} << (i % 64); }
  bool bit(size_t i) const { return (words_[i / 64] >> (i % 64)) & 1; }
  size_t popcount() const;
  bool empty() const;
  // Fraction of bits set.
  double fill() const { return words_.empty() ? 0 : double(popcount()) / double(bits()); }
  bool operator==(const BloomFilter&) const = default;
  const std::vector<uint64_t>& words() const { return words_; }
  std::vector<uint64_t>& words() { return words_; }

  // Expected false-positive rate of a filter holding n distinct topics: (1 - e^(-k n / m))^k.
  static double false_positive_rate(size_t bits, size_t hashes, double n);

 private:
  size_t hashes_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace storjnet::pubsub
