#include "dht/codec.h"

#include <algorithm>

#include "common/msgpack_util.h"
#include "storjnet/dht.h"

namespace storjnet::dht {

namespace {
using Packer = msgpack::packer<BytesWriter>;

void pack_bin(Packer& p, ByteView b) {
  p.pack_bin(static_cast<uint32_t>(b.size()));
  p.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<uint32_t>(b.size()));
}

void pack_address(Packer& p, const Endpoint& e) {
  pack_bin(p, {e.addr.data(), e.family == Endpoint::Family::kV4 ? size_t(4) : size_t(16)});
  p.pack_uint16(e.port);
}

// [key, ip, port] or, with an address of the other family, [key, ip, port, ip2, port2].
void pack_contact(Packer& p, const Contact& c, bool with_alt = true) {
  bool alt = with_alt && c.alt.valid() && c.alt.family != c.endpoint.family;
  p.pack_array(alt ? 5 : 3);
  pack_bin(p, {c.key.data(), c.key.size()});
  pack_address(p, c.endpoint);
  if (alt) pack_address(p, c.alt);
}

bool get_bin(const msgpack::object& o, size_t size, uint8_t* out) {
  ByteView v;
  if (o.type != msgpack::type::BIN || !as_bytes_view(o, v) || v.size() != size) return false;
  std::copy(v.begin(), v.end(), out);
  return true;
}

bool get_uint(const msgpack::object& o, uint64_t& out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  out = o.via.u64;
  return true;
}

// ip (bin 4 | bin 16) and port from a[0], a[1]: a usable address (port 0 and unspecified refused).
std::optional<Endpoint> unpack_address(const msgpack::object* a) {
  Endpoint e;
  ByteView ip;
  if (a[0].type != msgpack::type::BIN || !as_bytes_view(a[0], ip)) return std::nullopt;
  if (ip.size() == 4) e.family = Endpoint::Family::kV4;
  else if (ip.size() == 16) e.family = Endpoint::Family::kV6;
  else return std::nullopt;
  std::copy(ip.begin(), ip.end(), e.addr.begin());
  uint64_t port;
  if (!get_uint(a[1], port) || port == 0 || port > 65535) return std::nullopt;
  e.port = static_cast<uint16_t>(port);
  if (e.is_unspecified()) return std::nullopt;
  return e;
}

// A second address must be of the other family (at most one address per family).
std::optional<Contact> unpack_contact(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY || (o.via.array.size != 3 && o.via.array.size != 5)) return std::nullopt;
  auto* a = o.via.array.ptr;
  Contact c;
  if (!get_bin(a[0], 32, c.key.data())) return std::nullopt;
  auto ep = unpack_address(a + 1);
  if (!ep) return std::nullopt;
  c.endpoint = *ep;
  if (o.via.array.size == 5) {
    auto alt = unpack_address(a + 3);
    if (!alt || alt->family == ep->family) return std::nullopt;
    c.alt = *alt;
  }
  c.id = Identity::id_of(c.key);
  return c;
}

// [contact...]: the first kMaxContactsPerResponse of `contacts` (every answer that names contacts).
void pack_contacts(Packer& p, const std::vector<Contact>& contacts) {
  size_t n = std::min(contacts.size(), kMaxContactsPerResponse);
  p.pack_array(static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) pack_contact(p, contacts[i]);
}

// `marks`, when given, has a bit per contact as sent; it comes back with a bit per contact kept.
bool unpack_contacts(const msgpack::object& o, std::vector<Contact>& out, uint32_t* marks = nullptr) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size > kMaxContactsPerResponse) return false;
  uint32_t kept = 0, n = 0;  // marks of the contacts kept; how many were kept
  for (uint32_t i = 0; i < o.via.array.size; ++i)
    if (auto c = unpack_contact(o.via.array.ptr[i])) {
      if (marks && (*marks >> i & 1)) kept |= uint32_t{1} << n;
      ++n;
      out.push_back(*c);
    }
  if (marks) *marks = kept;
  return true;
}

void pack_value(Packer& p, const StoredValue& v, bool with_key) {
  if (with_key) pack_bin(p, v.key.view());
  pack_bin(p, v.value);
  p.pack_uint64(v.version);
  pack_bin(p, {v.owner.data(), v.owner.size()});
  pack_bin(p, {v.signature.data(), v.signature.size()});
}

// value, version, owner, signature from a[0..3]; v.key is set by the caller.
bool unpack_value(const msgpack::object* a, StoredValue& v) {
  ByteView val;
  if (a[0].type != msgpack::type::BIN || !as_bytes_view(a[0], val) || val.size() > kMaxValueSize) return false;
  if (!get_uint(a[1], v.version) || !get_bin(a[2], v.owner.size(), v.owner.data()) ||
      !get_bin(a[3], v.signature.size(), v.signature.data()))
    return false;
  v.value.assign(val.begin(), val.end());
  return true;
}
}  // namespace

Bytes encode_id_request(const NodeId& id) {
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  p.pack_array(1);
  pack_bin(p, id.view());
  return out;
}

std::optional<NodeId> decode_id_request(ByteView body) {
  auto oh = unpack_wire(body);
  if (!oh) return std::nullopt;
  auto& o = oh->get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 1) return std::nullopt;
  std::array<uint8_t, NodeId::kSize> b;
  if (!get_bin(o.via.array.ptr[0], NodeId::kSize, b.data())) return std::nullopt;
  return NodeId(b);
}

Bytes encode_find_node_request(const FindNodeRequest& q) {
  if (!q.placement && !q.verdict && !q.marks) return encode_id_request(q.target);  // [target], as every version sends
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  p.pack_array(2);
  pack_bin(p, q.target.view());
  p.pack_uint64((q.placement ? kFindNodePlacement : 0) | (q.verdict ? kFindNodeVerdict : 0) |
                (q.marks ? kFindNodeMarks : 0));
  return out;
}

std::optional<FindNodeRequest> decode_find_node_request(ByteView body) {
  auto oh = unpack_wire(body);
  if (!oh) return std::nullopt;
  auto& o = oh->get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 1 || o.via.array.size > 2) return std::nullopt;
  std::array<uint8_t, NodeId::kSize> b;
  if (!get_bin(o.via.array.ptr[0], NodeId::kSize, b.data())) return std::nullopt;
  FindNodeRequest q{NodeId(b)};
  uint64_t flags = 0;
  if (o.via.array.size == 2 && !get_uint(o.via.array.ptr[1], flags)) return std::nullopt;
  q.placement = (flags & kFindNodePlacement) != 0;  // unknown bits: ignored (later versions' hints)
  q.verdict = (flags & kFindNodeVerdict) != 0;
  q.marks = (flags & kFindNodeMarks) != 0;
  return q;
}

Bytes encode_contacts(const std::vector<Contact>& contacts) {
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  pack_contacts(p, contacts);
  return out;
}

std::optional<std::vector<Contact>> decode_contacts(ByteView body) {
  auto oh = unpack_wire(body);
  if (!oh) return std::nullopt;
  std::vector<Contact> out;
  if (!unpack_contacts(oh->get(), out)) return std::nullopt;
  return out;
}

Bytes encode_find_value_response(const FindValueResponse& r) {
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  if (r.value) {
    p.pack_array(5);
    p.pack_uint8(1);
    pack_value(p, *r.value, false);
  } else {
    p.pack_array(2);
    p.pack_uint8(0);
    pack_contacts(p, r.contacts);
  }
  return out;
}

std::optional<FindValueResponse> decode_find_value_response(ByteView body, const NodeId& key) {
  auto oh = unpack_wire(body);
  if (!oh) return std::nullopt;
  auto& o = oh->get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 2) return std::nullopt;
  auto* a = o.via.array.ptr;
  uint64_t found;
  if (!get_uint(a[0], found) || found > 1) return std::nullopt;
  FindValueResponse r;
  if (found == 0) {
    if (o.via.array.size != 2 || !unpack_contacts(a[1], r.contacts)) return std::nullopt;
    return r;
  }
  if (o.via.array.size != 5) return std::nullopt;
  StoredValue v;
  v.key = key;
  if (!unpack_value(a + 1, v)) return std::nullopt;
  r.value = std::move(v);
  return r;
}

Bytes encode_store(const StoredValue& v) {
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  p.pack_array(5);
  pack_value(p, v, true);
  return out;
}

std::optional<StoredValue> decode_store(ByteView body) {
  auto oh = unpack_wire(body);
  if (!oh) return std::nullopt;
  auto& o = oh->get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 5) return std::nullopt;
  auto* a = o.via.array.ptr;
  StoredValue v;
  std::array<uint8_t, NodeId::kSize> key;
  if (!get_bin(a[0], NodeId::kSize, key.data()) || !unpack_value(a + 1, v)) return std::nullopt;
  v.key = NodeId(key);
  return v;
}

Bytes encode_dial_back_request(const DialBackRequest& r) {
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  switch (r.kind) {
    case DialBackKind::kSelfCheck:
      p.pack_array(4);
      p.pack_uint8(static_cast<uint8_t>(r.kind));
      pack_bin(p, {r.nonce.data(), r.nonce.size()});
      pack_address(p, r.via);
      break;
    case DialBackKind::kProbeFor:
      p.pack_array(3);
      p.pack_uint8(static_cast<uint8_t>(r.kind));
      pack_bin(p, {r.nonce.data(), r.nonce.size()});
      pack_contact(p, r.target, false);  // the address to probe only
      break;
    case DialBackKind::kProbe:
      p.pack_array(2);
      p.pack_uint8(static_cast<uint8_t>(r.kind));
      pack_bin(p, {r.nonce.data(), r.nonce.size()});
      break;
    case DialBackKind::kVerdict:
      p.pack_array(1);
      p.pack_uint8(static_cast<uint8_t>(r.kind));
      break;
  }
  return out;
}

std::optional<DialBackRequest> decode_dial_back_request(ByteView body) {
  auto oh = unpack_wire(body);
  if (!oh) return std::nullopt;
  auto& o = oh->get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 1) return std::nullopt;
  auto* a = o.via.array.ptr;
  uint32_t n = o.via.array.size;
  uint64_t kind;
  // Kinds 0 and 1 (the ask and probe of version-3 dial-back, signed testimonies) are no longer served.
  if (!get_uint(a[0], kind) || kind < 2 || kind > 5) return std::nullopt;
  DialBackRequest r;
  r.kind = static_cast<DialBackKind>(kind);
  static constexpr uint32_t kSize[] = {0, 0, 4, 3, 2, 1};
  if (n != kSize[kind]) return std::nullopt;
  if (r.kind == DialBackKind::kVerdict) return r;
  if (!get_bin(a[1], r.nonce.size(), r.nonce.data())) return std::nullopt;
  if (r.kind == DialBackKind::kSelfCheck) {
    auto via = unpack_address(a + 2);
    if (!via) return std::nullopt;
    r.via = *via;
  } else if (r.kind == DialBackKind::kProbeFor) {
    auto c = unpack_contact(a[2]);
    if (!c) return std::nullopt;
    r.target = *c;
    r.target.alt = {};  // a probe is asked for one address
  }
  return r;
}

Bytes encode_dial_back_verdict(DialBackVerdict v) { return pack(static_cast<unsigned>(v)); }

std::optional<DialBackVerdict> decode_dial_back_verdict(ByteView body) {
  auto oh = unpack_wire(body);
  uint64_t v;
  if (!oh || !get_uint(oh->get(), v) || v > 2) return std::nullopt;
  return static_cast<DialBackVerdict>(v);
}

Bytes encode_find_node_answer(const FindNodeAnswer& a) {
  if (!a.verdict && !a.unconfirmed) return encode_contacts(a.contacts);
  Bytes out;
  BytesWriter w{out};
  Packer p(w);
  p.pack_array(a.unconfirmed ? 3 : 2);
  pack_contacts(p, a.contacts);
  p.pack_uint8(static_cast<uint8_t>(a.verdict.value_or(DialBackVerdict::kUnknown)));
  if (a.unconfirmed) {
    const size_t n = std::min(a.contacts.size(), kMaxContactsPerResponse);
    p.pack_uint32(n < 32 ? *a.unconfirmed & ((uint32_t{1} << n) - 1) : *a.unconfirmed);  // bits of contacts sent
  }
  return out;
}

uint32_t marks_of_kept(const std::vector<Contact>& sent, uint32_t marks, const std::vector<Contact>& kept) {
  uint32_t out = 0;
  size_t i = 0;
  for (size_t j = 0; j < kept.size() && j < 32; ++j) {
    while (i < sent.size() && sent[i].id != kept[j].id) ++i;
    if (i == sent.size()) break;  // not a subsequence: what is left gets no marks
    if (i < 32 && (marks >> i & 1)) out |= uint32_t{1} << j;
    ++i;
  }
  return out;
}

std::optional<FindNodeAnswer> decode_find_node_answer(ByteView body) {
  auto oh = unpack_wire(body);
  if (!oh) return std::nullopt;
  auto& o = oh->get();
  FindNodeAnswer a;
  // [[contact...], verdict] or [[contact...], verdict, unconfirmed]: the second element a number (in
  // [contact...] every element is an array).
  const bool shaped = o.type == msgpack::type::ARRAY && (o.via.array.size == 2 || o.via.array.size == 3);
  if (shaped && o.via.array.ptr[1].type != msgpack::type::ARRAY) {
    uint64_t v, marks = 0;
    const msgpack::object& list = o.via.array.ptr[0];
    if (!get_uint(o.via.array.ptr[1], v) || v > 2) return std::nullopt;
    if (o.via.array.size == 3) {
      // A bit for a contact that was not sent is malformed.
      if (list.type != msgpack::type::ARRAY || !get_uint(o.via.array.ptr[2], marks) ||
          (list.via.array.size < 64 && marks >> list.via.array.size != 0))
        return std::nullopt;
      uint32_t kept = static_cast<uint32_t>(marks);
      if (!unpack_contacts(list, a.contacts, &kept)) return std::nullopt;
      a.unconfirmed = kept;
    } else if (!unpack_contacts(list, a.contacts)) {
      return std::nullopt;
    }
    a.verdict = static_cast<DialBackVerdict>(v);
    return a;
  }
  if (!unpack_contacts(o, a.contacts)) return std::nullopt;
  return a;
}

Bytes encode_bool(bool b) { return pack(b); }

std::optional<bool> decode_bool(ByteView body) {
  auto oh = unpack_wire(body);
  if (!oh || oh->get().type != msgpack::type::BOOLEAN) return std::nullopt;
  return oh->get().via.boolean;
}

}  // namespace storjnet::dht
