// Streams::Impl: the streams of one node (docs/protocol.md, "7. Streams"). Each stream's send and receive
// logic is the pure state machine of streams/stream_state.h; Impl owns the streams' lifecycle (open, close,
// idle), the node's budgets and the application's callbacks, and feeds the state machines from two thin
// transport adapters: datagram_path.cc (the engine's stream RPCs) and fast_path.cc (records on the Links
// connections). Whatever a path delivers (an acknowledgement, data, credit) is handled once, here, whichever
// path it came by. Completion callbacks run after the state change that caused them (flush()), never while
// a Stream& is held. Same threading as the engine.
// Cancellation (docs/architecture.md): the streams' RPCs and timers run in `scope`, so they die with Impl; every
// application callback is a Once, so it runs exactly once, with its failure value (nullopt, false, or a plain
// call for on_readable/on_writable) when the node is destroyed first.
#pragma once
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "dht/resolver.h"
#include "engine/engine.h"
#include "storjnet/dht.h"
#include "storjnet/streams.h"
#include "streams/links.h"
#include "streams/stream_state.h"

namespace storjnet {

struct Streams::Impl final : streams::Links::Events {
  enum class State { kOpening, kOpen, kClosing, kPeerClosed };
  struct Write {
    uint64_t end;
    size_t n;
    std::function<void(std::optional<size_t>)> cb;
  };
  struct Stream {
    StreamId id{};
    Contact peer;
    State state = State::kOpening;
    bool inbound = false;
    Endpoint::Prefix net;  // the peer's network, for the per-network budgets
    streams::SendSide tx;
    streams::RecvSide rx;
    std::deque<Write> writes;
    std::vector<std::function<void()>> writable;
    std::vector<std::function<void()>> readable;
    TimePoint last_heard{};
    bool probing = false;
    std::function<void(bool)> close_cb;
    TimerId close_timer;
    TimePoint close_deadline{};
    TimerId pace_timer;  // pump() again when the pacing lets the next datagram chunk go

    Stream(size_t window, const StreamsConfig& c) : rx(window, c.min_chunk_charge, c.max_chunks_ahead) {}
    bool sending() const { return state == State::kOpen || state == State::kClosing; }
  };
  enum class Received { kOk, kBeyondWindow, kBusy };

  Engine& engine;
  Dht& dht;
  StreamsConfig config;
  Resolver resolver;
  std::map<StreamId, Stream> streams;
  std::unordered_map<NodeId, size_t> inbound_per_peer;
  std::unordered_map<Endpoint::Prefix, size_t> inbound_per_prefix;
  std::unordered_map<Endpoint::Prefix, size_t> buffered_per_prefix;  // RecvBuffer::charged() summed
  StreamsBudgetStats budget;
  std::vector<std::function<void()>> deferred;
  std::function<void(const StreamId&, const NodeId&)> inbound_watcher;  // Streams::on_inbound
  TimerId sweep_timer;
  Engine::Scope scope;  // the stream RPCs in flight, the close timers and the sweep

  streams::Links links{engine, *this, config};  // fast path; last, so it goes first (closes silently)

  Impl(Engine& e, Dht& d, StreamsConfig c);
  ~Impl() override;

  void flush();
  Stream* find(const StreamId& id);
  Stream* find_from(const StreamId& id, const NodeId& peer);
  Stream& create(const StreamId& id, const Contact& peer, bool inbound, State st);
  void erase(const StreamId& id);

  // The application's side (streams.cc).
  void open(const NodeId& peer, std::function<void(std::optional<StreamId>)> cb);
  void on_open(const IncomingRequest& req, const Reply& reply);
  void write(const StreamId& id, ByteView data, std::function<void(std::optional<size_t>)> cb);
  std::optional<Bytes> read(const StreamId& id, std::optional<size_t> max);
  void on_readable(const StreamId& id, std::function<void()> cb);
  void on_writable(const StreamId& id, std::function<void()> cb);
  void close(const StreamId& id, std::function<void(bool)> cb);
  void on_close(const IncomingRequest& req, const Reply& reply);
  void send_close(Stream& s);
  void finish_close(const StreamId& id);
  void peer_closed(Stream& s);
  std::map<StreamId, StreamInfo> list() const;
  bool fast_path(const StreamId& id);

  // What either path delivers, handled once (streams.cc).
  size_t write_fast(Stream& s, uint64_t conn, ByteView data);  // write()'s bytes sealed and sent at once, if it can
  void pump(Stream& s);  // sends what the stream's SendSide says, over the path it names
  void on_acked(Stream& s, uint64_t path, uint64_t offset, uint64_t limit, bool resent = false);
  void on_credit(Stream& s, uint64_t limit);
  template <class Data>
  Received receive(Stream& s, uint64_t offset, Data&& data);
  void fire_writable(Stream& s);
  void fire_readable(Stream& s);
  void complete_writes(Stream& s);
  void fail_writes(Stream& s);
  void uncharge(Stream& s, size_t n);
  void recharge(Stream& s, size_t before);
  size_t buffered_by(const Endpoint::Prefix& net) const;

  // Liveness (streams.cc).
  void arm_sweep();
  void sweep();

  // The datagram path (datagram_path.cc).
  void send_chunk(Stream& s, uint64_t off, ByteView data);
  void on_data_result(const StreamId& id, uint64_t off, const RpcResult& r);
  void on_data(const IncomingRequest& req, const Reply& reply);
  void on_window(const IncomingRequest& req);
  void send_window(Stream& s, uint64_t limit);
  void probe(Stream& s);
  void probe_if_stalled(Stream& s);  // probe() when a waiting writer has no credit and nothing in flight

  // The fast path (fast_path.cc; Links::Events).
  void on_link_up(const NodeId& peer) override;
  void on_link_down(uint64_t conn, const NodeId& peer) override;
  void after_events() override { flush(); }
  void on_record(uint64_t conn, const NodeId& peer, const streams::Record& r, Bytes data) override;
};

}  // namespace storjnet
