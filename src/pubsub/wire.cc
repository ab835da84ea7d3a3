#include "pubsub/wire.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/msgpack_util.h"
#include "storjnet/pubsub.h"

namespace storjnet::pubsub {
namespace {

using Packer = msgpack::packer<BytesWriter>;

void pack_bin(Packer& p, const uint8_t* data, size_t n) {
  p.pack_bin(static_cast<uint32_t>(n));
  p.pack_bin_body(reinterpret_cast<const char*>(data), static_cast<uint32_t>(n));
}

void pack_level(Packer& p, const BloomFilter& f) {
  size_t ones = f.popcount();
  // Sparse (array of set bit positions) when that is smaller than the dense bitmap.
  if (ones * 3 < f.bits() / 8) {
    p.pack_array(static_cast<uint32_t>(ones));
    for (size_t i = 0; i < f.bits(); ++i)
      if (f.word(i / 64) && f.bit(i)) p.pack(static_cast<uint32_t>(i));
    return;
  }
  Bytes dense(f.bits() / 8);
  for (size_t w = 0; w < f.word_count(); ++w)
    for (int b = 0; b < 8; ++b) dense[w * 8 + b] = static_cast<uint8_t>(f.word(w) >> (8 * b));
  pack_bin(p, dense.data(), dense.size());
}

bool get_uint(const msgpack::object& o, uint64_t& v) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  v = o.via.u64;
  return true;
}

bool get_node_id(const msgpack::object& o, NodeId& id) {
  ByteView b;
  if (o.type != msgpack::type::BIN || !as_bytes_view(o, b) || b.size() != NodeId::kSize) return false;
  std::array<uint8_t, NodeId::kSize> a;
  std::memcpy(a.data(), b.data(), a.size());
  id = NodeId(a);
  return true;
}

void pack_endpoint(Packer& p, const Endpoint& ep) {
  p.pack_array(2);
  size_t n = ep.family == Endpoint::Family::kV6 ? 16 : 4;
  pack_bin(p, ep.addr.data(), n);
  p.pack(ep.port);
}

bool get_endpoint(const msgpack::object& o, Endpoint& ep) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) return false;
  ByteView addr;
  uint64_t port;
  if (o.via.array.ptr[0].type != msgpack::type::BIN || !as_bytes_view(o.via.array.ptr[0], addr) ||
      (addr.size() != 4 && addr.size() != 16))
    return false;
  if (!get_uint(o.via.array.ptr[1], port) || port == 0 || port > 65535) return false;
  ep = Endpoint{};
  ep.family = addr.size() == 4 ? Endpoint::Family::kV4 : Endpoint::Family::kV6;
  std::memcpy(ep.addr.data(), addr.data(), addr.size());
  ep.port = static_cast<uint16_t>(port);
  return !ep.is_unspecified();
}

template <size_t N>
bool get_fixed_bin(const msgpack::object& o, std::array<uint8_t, N>& out) {
  ByteView b;
  if (o.type != msgpack::type::BIN || !as_bytes_view(o, b) || b.size() != N) return false;
  std::memcpy(out.data(), b.data(), N);
  return true;
}

}  // namespace

Bytes encode_filter(const FilterBody& f) {
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  size_t bits = f.levels.empty() ? 0 : f.levels[0].bits();
  size_t hashes = f.levels.empty() ? 0 : f.levels[0].hashes();
  p.pack_array(4);
  p.pack(static_cast<uint8_t>(UpdateKind::kFilter));
  p.pack(static_cast<uint32_t>(bits));
  p.pack(static_cast<uint32_t>(hashes));
  p.pack_array(static_cast<uint32_t>(f.levels.size()));
  for (const auto& l : f.levels) pack_level(p, l);
  return out;
}

Bytes encode_register(const RegisterBody& r) {
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  p.pack_array(9);
  p.pack(static_cast<uint8_t>(r.kind));
  pack_bin(p, r.topic_key.bytes().data(), NodeId::kSize);
  p.pack(r.subscribe);
  p.pack(r.hops);
  pack_bin(p, r.subscriber.data(), r.subscriber.size());
  if (r.endpoint)
    pack_endpoint(p, *r.endpoint);
  else
    p.pack_nil();
  p.pack(r.issued_us);
  p.pack_array(static_cast<uint32_t>(r.holders.size()));
  for (const auto& id : r.holders) pack_bin(p, id.bytes().data(), NodeId::kSize);
  pack_bin(p, r.signature.data(), r.signature.size());
  return out;
}

Bytes register_statement(uint32_t network_id, const RegisterBody& r) {
  static constexpr std::string_view kContext = "storjnet pubsub register";
  Bytes out(kContext.begin(), kContext.end());
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(network_id >> (8 * i)));
  out.insert(out.end(), r.topic_key.bytes().begin(), r.topic_key.bytes().end());
  out.push_back(r.subscribe ? 1 : 0);
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<uint8_t>(r.issued_us >> (8 * i)));
  out.push_back(static_cast<uint8_t>(r.holders.size()));
  for (const auto& id : r.holders) out.insert(out.end(), id.bytes().begin(), id.bytes().end());
  return out;
}

Bytes encode_notify(const NotifyBody& n) {
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  p.pack_array(6);
  p.pack(static_cast<uint8_t>(n.kind));
  pack_bin(p, n.id.data(), n.id.size());
  p.pack(n.topic);
  p.pack(n.event);
  p.pack(n.ttl);
  p.pack_array(static_cast<uint32_t>(n.publishers.size()));
  for (const auto& id : n.publishers) pack_bin(p, id.bytes().data(), NodeId::kSize);
  return out;
}

std::optional<UpdateKind> peek_update_kind(ByteView body) {
  // The first byte after the array header is the kind (a positive fixint).
  if (body.size() < 2 || (body[0] & 0xf0) != 0x90) return std::nullopt;
  if (body[1] > static_cast<uint8_t>(UpdateKind::kReplica)) return std::nullopt;
  return static_cast<UpdateKind>(body[1]);
}

DecodeStatus decode_filter(ByteView body, const WireLimits& lim, FilterBody& out) {
  auto oh = unpack_wire(body);
  if (!oh) return DecodeStatus::kMalformed;
  const auto& o = oh->get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) return DecodeStatus::kMalformed;
  const auto* a = o.via.array.ptr;
  uint64_t kind, bits, hashes;
  if (!get_uint(a[0], kind) || kind != 0 || !get_uint(a[1], bits) || !get_uint(a[2], hashes))
    return DecodeStatus::kMalformed;
  if (a[3].type != msgpack::type::ARRAY) return DecodeStatus::kMalformed;
  const size_t want_bits = BloomFilter::round_bits(lim.filter_bits);
  if (bits != want_bits || hashes != lim.filter_hashes || a[3].via.array.size != lim.depth)
    return DecodeStatus::kWrongSize;
  out.levels.assign(lim.depth, BloomFilter(want_bits, lim.filter_hashes));
  for (size_t l = 0; l < lim.depth; ++l) {
    const auto& lv = a[3].via.array.ptr[l];
    auto& f = out.levels[l];
    if (lv.type == msgpack::type::BIN) {
      if (lv.via.bin.size != want_bits / 8) return DecodeStatus::kWrongSize;
      const auto* p = reinterpret_cast<const uint8_t*>(lv.via.bin.ptr);
      for (size_t w = 0; w < f.word_count(); ++w) {
        uint64_t v = 0;
        for (int b = 0; b < 8; ++b) v |= uint64_t{p[w * 8 + b]} << (8 * b);
        f.set_word(w, v);
      }
    } else if (lv.type == msgpack::type::ARRAY) {
      for (uint32_t i = 0; i < lv.via.array.size; ++i) {
        uint64_t pos;
        if (!get_uint(lv.via.array.ptr[i], pos)) return DecodeStatus::kMalformed;
        if (pos >= want_bits) return DecodeStatus::kWrongSize;
        f.set_bit(pos);
      }
    } else {
      return DecodeStatus::kMalformed;
    }
  }
  return DecodeStatus::kOk;
}

DecodeStatus decode_register(ByteView body, RegisterBody& out) {
  auto oh = unpack_wire(body);
  if (!oh) return DecodeStatus::kMalformed;
  const auto& o = oh->get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 9) return DecodeStatus::kMalformed;
  const auto* a = o.via.array.ptr;
  uint64_t kind, hops;
  if (!get_uint(a[0], kind) || (kind != 1 && kind != 2)) return DecodeStatus::kMalformed;
  out.kind = static_cast<UpdateKind>(kind);
  if (!get_node_id(a[1], out.topic_key)) return DecodeStatus::kMalformed;
  if (a[2].type != msgpack::type::BOOLEAN) return DecodeStatus::kMalformed;
  out.subscribe = a[2].via.boolean;
  if (!get_uint(a[3], hops) || hops > 1024) return DecodeStatus::kMalformed;
  out.hops = static_cast<uint32_t>(hops);
  if (!get_fixed_bin(a[4], out.subscriber)) return DecodeStatus::kMalformed;
  if (a[5].type == msgpack::type::NIL) {
    out.endpoint.reset();
  } else {
    Endpoint ep;
    if (!get_endpoint(a[5], ep)) return DecodeStatus::kMalformed;
    out.endpoint = ep;
  }
  if (!get_uint(a[6], out.issued_us)) return DecodeStatus::kMalformed;
  if (a[7].type != msgpack::type::ARRAY || a[7].via.array.size > kMaxRegisterHolders) return DecodeStatus::kMalformed;
  out.holders.resize(a[7].via.array.size);
  for (uint32_t i = 0; i < a[7].via.array.size; ++i)
    if (!get_node_id(a[7].via.array.ptr[i], out.holders[i])) return DecodeStatus::kMalformed;
  if (!get_fixed_bin(a[8], out.signature)) return DecodeStatus::kMalformed;
  return DecodeStatus::kOk;
}

DecodeStatus decode_notify(ByteView body, const WireLimits& lim, NotifyBody& out, DecodeNotes* notes) {
  auto oh = unpack_wire(body);
  if (!oh) return DecodeStatus::kMalformed;
  const auto& o = oh->get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 6) return DecodeStatus::kMalformed;
  const auto* a = o.via.array.ptr;
  uint64_t kind, ttl;
  if (!get_uint(a[0], kind) || kind > static_cast<uint64_t>(NotifyKind::kServe)) return DecodeStatus::kMalformed;
  out.kind = static_cast<NotifyKind>(kind);
  if (a[1].type != msgpack::type::BIN || a[1].via.bin.size != out.id.size()) return DecodeStatus::kMalformed;
  std::memcpy(out.id.data(), a[1].via.bin.ptr, out.id.size());
  if (a[2].type != msgpack::type::STR || a[3].type != msgpack::type::STR) return DecodeStatus::kMalformed;
  if (a[2].via.str.size == 0) return DecodeStatus::kMalformed;
  if (a[2].via.str.size > kMaxTopic || a[3].via.str.size > kMaxEventJson) return DecodeStatus::kTooLarge;
  out.topic.assign(a[2].via.str.ptr, a[2].via.str.size);
  out.event.assign(a[3].via.str.ptr, a[3].via.str.size);
  if (!get_uint(a[4], ttl)) return DecodeStatus::kMalformed;
  if (ttl > lim.max_ttl) {
    ttl = lim.max_ttl;
    if (notes) notes->ttl_clamped = true;
  }
  out.ttl = static_cast<uint32_t>(ttl);
  if (a[5].type != msgpack::type::ARRAY) return DecodeStatus::kMalformed;
  const auto& pubs = a[5].via.array;
  // Keep the most recent entries (the list grows at its end).
  const size_t cap = out.kind == NotifyKind::kHolder  ? lim.max_holder_list
                    : out.kind == NotifyKind::kServe ? kMaxRegisterHolders
                                                     : lim.max_publishers;
  size_t skip = pubs.size > cap ? pubs.size - cap : 0;
  if (skip && notes) notes->publishers_truncated = true;
  out.publishers.clear();
  out.publishers.reserve(pubs.size - skip);
  for (uint32_t i = 0; i < pubs.size; ++i) {
    NodeId id;
    if (!get_node_id(pubs.ptr[i], id)) return DecodeStatus::kMalformed;
    if (i >= skip) out.publishers.push_back(id);
  }
  if (!nlohmann::json::accept(out.event)) return DecodeStatus::kBadEvent;
  return DecodeStatus::kOk;
}

}  // namespace storjnet::pubsub
