#include "messages/codec.h"

#include <nlohmann/json.hpp>

#include "common/msgpack_util.h"
#include "storjnet/messages.h"
#include "wire/datagram.h"

namespace storjnet::messages {

namespace {
// Minimal msgpack reader for the batch layout: decodes without building an object tree (it is on the hot
// path of 200k messages/s) and checks every length against the remaining input.
struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  bool ok = true;

  bool need(size_t n) {
    if (!ok || static_cast<size_t>(end - p) < n) ok = false;
    return ok;
  }
  uint64_t be(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = v << 8 | p[i];
    p += n;
    return v;
  }
  std::optional<uint64_t> uint() {
    if (!need(1)) return std::nullopt;
    uint8_t t = *p++;
    if (t <= 0x7f) return t;
    size_t n = t == 0xcc ? 1 : t == 0xcd ? 2 : t == 0xce ? 4 : t == 0xcf ? 8 : 0;
    if (!n || !need(n)) return ok = false, std::nullopt;
    return be(n);
  }
  std::optional<size_t> array() {
    if (!need(1)) return std::nullopt;
    uint8_t t = *p++;
    if ((t & 0xf0) == 0x90) return t & 0x0f;
    size_t n = t == 0xdc ? 2 : t == 0xdd ? 4 : 0;
    if (!n || !need(n)) return ok = false, std::nullopt;
    return be(n);
  }
  std::optional<std::string_view> str() {
    if (!need(1)) return std::nullopt;
    uint8_t t = *p++;
    size_t len;
    if ((t & 0xe0) == 0xa0) {
      len = t & 0x1f;
    } else {
      size_t n = t == 0xd9 ? 1 : t == 0xda ? 2 : t == 0xdb ? 4 : 0;
      if (!n || !need(n)) return ok = false, std::nullopt;
      len = be(n);
    }
    if (!need(len)) return std::nullopt;
    std::string_view s(reinterpret_cast<const char*>(p), len);
    p += len;
    return s;
  }
};
}  // namespace

Bytes encode_batch(uint64_t epoch, uint64_t batch, const std::vector<const std::string*>& messages) {
  Bytes out;
  size_t total = 24;
  for (auto* m : messages) total += m->size() + 5;
  out.reserve(total);
  BytesWriter w{out};
  msgpack::packer<BytesWriter> pk(w);
  pk.pack_array(3);
  pk.pack_uint64(epoch);
  pk.pack_uint64(batch);
  pk.pack_array(static_cast<uint32_t>(messages.size()));
  for (auto* m : messages) {
    pk.pack_str(static_cast<uint32_t>(m->size()));
    pk.pack_str_body(m->data(), static_cast<uint32_t>(m->size()));
  }
  return out;
}

std::optional<Batch> decode_batch(ByteView body) {
  Reader r{body.data(), body.data() + body.size()};
  Batch b;
  auto top = r.array();
  if (!top || *top != 3) return std::nullopt;
  auto epoch = r.uint();
  auto batch = r.uint();
  auto n = r.array();
  if (!epoch || !batch || !n || *n == 0 || *n > kMaxBatchMessages) return std::nullopt;
  b.epoch = *epoch;
  b.batch = *batch;
  b.messages.reserve(*n);
  size_t bytes = 0;
  for (size_t i = 0; i < *n; ++i) {
    auto s = r.str();
    if (!s || s->size() > kMaxMessageJson) return std::nullopt;
    bytes += s->size();
    b.messages.push_back(*s);
  }
  if (!r.ok || r.p != r.end || bytes > kMaxBatchBytes) return std::nullopt;
  return b;
}

Bytes encode_ack(uint32_t accepted) { return pack(accepted); }

std::optional<uint32_t> decode_ack(ByteView body) {
  Reader r{body.data(), body.data() + body.size()};
  auto v = r.uint();
  if (!v || !r.ok || r.p != r.end || *v > kMaxBatchMessages) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

bool valid_message(std::string_view json) {
  return !json.empty() && json.size() <= kMaxMessageJson && nlohmann::json::accept(json);
}

}  // namespace storjnet::messages
