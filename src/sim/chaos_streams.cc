#include "sim/chaos_streams.h"

#include <cstring>

#include "sim/rng.h"

namespace storjnet::sim {

namespace {
constexpr size_t kPiece = 256 * 1024;  // the most one write takes

// The stream's bytes [off, off + n): eight at a time from its id and their offset.
Bytes content(const StreamId& id, uint64_t off, size_t n) {
  uint64_t key;
  std::memcpy(&key, id.data(), 8);
  Bytes out(n);
  for (size_t i = 0; i < n;) {
    uint64_t pos = off + i, word = mix64(key, pos / 8);
    for (size_t b = pos % 8; b < 8 && i < n; ++b, ++i) out[i] = static_cast<uint8_t>(word >> (8 * b));
  }
  return out;
}

std::string name(const StreamId& id) { return to_hex(ByteView(id.data(), 4)); }
}  // namespace

void ChaosStreams::on_node(size_t i) {
  uint64_t gen = gen_[i];
  sim_.node(i).streams().on_inbound([this, i, gen](const StreamId& id, const NodeId&) {
    if (stale(i, gen)) return;
    auto [it, fresh] = readers_.try_emplace(id);
    if (!fresh) return violation("stream " + name(id) + " reported as inbound twice");
    it->second.node = i;
    it->second.gen = gen;
    read_more(id);
  });
}

void ChaosStreams::on_kill(size_t i) { ++gen_[i]; }

void ChaosStreams::end() { over_ = true; }

void ChaosStreams::start(size_t from, size_t to, size_t bytes) {
  size_t w = writers_.size();
  Writer& wr = writers_.emplace_back();
  wr.from = from;
  wr.to = to;
  wr.size = bytes;
  wr.from_gen = gen_[from];
  wr.to_gen = gen_[to];
  wr.budget = per_tick_;
  ++report_.streams;
  sim_.node(from).streams().open(sim_.contact(to).id, [this, w](std::optional<StreamId> id) {
    Writer& wr = writers_[w];
    if (stale(wr.from, wr.from_gen)) return;
    if (!id) return finish(w, false);
    ++report_.opened;
    wr.id = id;
    write_more(w);
  });
}

// One write at a time, of at most writable() bytes: a short count then means the stream failed, and the
// next write's offset is always what the peer acknowledged.
// After a wait (`woken`), a write goes out even when writable() is 0: the stream closed (the write answers
// nullopt) rather than waiting again, which would answer at once, for ever.
void ChaosStreams::write_more(size_t w, bool woken) {
  Writer& wr = writers_[w];
  Streams& st = sim_.node(wr.from).streams();
  if (wr.acked == wr.size) {
    return st.close(*wr.id, [this, w](bool) {
      if (!stale(writers_[w].from, writers_[w].from_gen)) finish(w, true);
    });
  }
  if (wr.budget == 0) {
    wr.starved = true;
    return;
  }
  size_t n = std::min({kPiece, wr.size - wr.acked, wr.budget, st.writable(*wr.id)});
  if (n == 0 && !woken) {
    return st.on_writable(*wr.id, [this, w] {
      if (!stale(writers_[w].from, writers_[w].from_gen)) write_more(w, true);
    });
  }
  if (n == 0) n = std::min({kPiece, wr.size - wr.acked, wr.budget});
  wr.budget -= n;
  st.write(*wr.id, content(*wr.id, wr.acked, n), [this, w, n](std::optional<size_t> r) {
    Writer& wr = writers_[w];
    if (stale(wr.from, wr.from_gen)) return;
    if (r) {
      wr.acked += *r;
      report_.bytes_acked += *r;
    }
    if (!r || *r < n) return finish(w, false);
    write_more(w);
  });
}

void ChaosStreams::finish(size_t w, bool ok) {
  Writer& wr = writers_[w];
  wr.waiting = false;
  (ok ? wr.completed : wr.failed) = true;
  ++(ok ? report_.completed : report_.failed);
}

void ChaosStreams::read_more(const StreamId& id) {
  Reader& rd = readers_.at(id);
  sim_.node(rd.node).streams().on_readable(id, [this, id] {
    Reader& rd = readers_.at(id);
    if (stale(rd.node, rd.gen)) return;
    auto got = sim_.node(rd.node).streams().read(id, std::nullopt);
    if (!got) {
      rd.closed = true;
      return;
    }
    if (!rd.corrupt && *got != content(id, rd.read, got->size())) {
      rd.corrupt = true;
      violation("stream " + name(id) + ": bytes at " + std::to_string(rd.read) + ".." +
                std::to_string(rd.read + got->size()) + " differ from those sent");
    }
    rd.read += got->size();
    report_.bytes_read += got->size();
    read_more(id);
  });
}

void ChaosStreams::tick() {
  for (size_t w = 0; w < writers_.size(); ++w) {
    Writer& wr = writers_[w];
    if (!wr.waiting || !wr.id || stale(wr.from, wr.from_gen)) continue;
    if (!wr.fast && sim_.node(wr.from).streams().fast_path(*wr.id)) {
      wr.fast = true;
      ++report_.fast;
    }
    wr.budget = per_tick_;
    if (wr.starved) {
      wr.starved = false;
      write_more(w);
    }
  }
}

void ChaosStreams::check(bool final) {
  for (auto& wr : writers_) {
    bool lived = gen_[wr.from] == wr.from_gen && gen_[wr.to] == wr.to_gen;
    if (final && !lived) ++report_.lost_with_node;
    if (!wr.id) continue;
    std::string what = "stream " + name(*wr.id) + " from node " + std::to_string(wr.from) + " to node " +
                       std::to_string(wr.to);
    if (wr.acked > wr.size) violation(what + ": more bytes acknowledged than written");
    auto rd = readers_.find(*wr.id);
    bool reader_lives = rd != readers_.end() ? !stale(rd->second.node, rd->second.gen) : gen_[wr.to] == wr.to_gen;
    if (rd != readers_.end() && rd->second.read > wr.size)
      violation(what + ": " + std::to_string(rd->second.read) + " bytes read of " + std::to_string(wr.size) + " sent");
    size_t read = rd == readers_.end() ? 0 : rd->second.read;
    if (reader_lives && read < wr.acked)
      violation(what + ": " + std::to_string(wr.acked) + " bytes acknowledged, " + std::to_string(read) + " read");
    if (final && lived && wr.waiting) violation(what + ": still waiting for an answer after healing");
  }
}

}  // namespace storjnet::sim
