// RealDriver: runs nodes on real UDP sockets with Boost.Asio. One io_context thread hosts any number of
// nodes (thousands), each with its own socket and wake-up timer.
//
// Nodes are not thread-safe: touch a node only inside call()/post(), which run on the io thread. Completion
// callbacks of node methods run on the io thread too.
#pragma once
#include <functional>
#include <future>
#include <memory>
#include <type_traits>

#include "storjnet/node.h"
#include "storjnet/udp_stats.h"

namespace storjnet {

struct RealDriverOptions {
  // Streams fast path (docs/protocol.md 7.6): a byte connection whose send queue passes this many bytes is
  // not read until the queue drains to half of it, so a peer that sends but never reads cannot make the
  // node queue answers without bound (Links closes it past StreamsConfig::link_send_cap).
  size_t conn_high_water = 4 * 1024 * 1024;
  // Each node's UDP socket buffers, requested with SO_RCVBUFFORCE/SO_SNDBUFFORCE (needs CAP_NET_ADMIN; else
  // SO_RCVBUF/SO_SNDBUF, capped by net.core.rmem_max/wmem_max). A burst of answers (1,000 lookups started at
  // once) must fit while the io thread catches up; memory is only used while datagrams wait.
  int udp_rcvbuf = 16 << 20;
  int udp_sndbuf = 8 << 20;
};

class RealDriver {
 public:
  using Options = RealDriverOptions;
  explicit RealDriver(Options options = {});  // starts the io thread
  ~RealDriver();  // stops the thread, then destroys nodes and sockets

  // Binds a UDP socket at `bind` (port 0: ephemeral) and creates a node on it (storage nullptr: in memory).
  // Throws std::runtime_error with the reason when the address cannot be bound. Callable from any thread.
  Node& add_node(const Endpoint& bind, Identity identity, NodeConfig config = {},
                 std::unique_ptr<DhtStorage> storage = nullptr);
  // The address the node's socket is bound to.
  Endpoint local_endpoint(const Node& node) const;
  size_t size() const;
  // Fails every byte connection (streams fast path) of `node` as a network error would; the node sees
  // them closed. For tests. Returns how many were open. Callable from any thread.
  size_t drop_connections(const Node& node);
  // The byte connections of `node` right now. For tests and diagnostics. Callable from any thread.
  struct ConnStats {
    size_t open = 0, paused = 0, queued = 0;  // connections, of them not being read, bytes queued to send
    uint64_t paused_reads = 0;                // times any connection stopped being read (high-water mark)
  };
  ConnStats conn_stats(const Node& node);
  // The UDP socket of `node`: kernel drops, the send queue (datagrams waiting for a full socket, dropped past
  // its bound), effective buffer sizes. Callable from any thread (inline on the io thread).
  UdpStats udp_stats(const Node& node);

  // Runs `fn` on the io thread.
  void post(std::function<void()> fn);
  // Runs `fn` on the io thread and returns its result (runs inline when already on it).
  template <class F>
  auto call(F&& fn) -> std::invoke_result_t<F> {
    using R = std::invoke_result_t<F>;
    if (on_io_thread()) return fn();
    std::packaged_task<R()> task(std::forward<F>(fn));
    auto fut = task.get_future();
    post([&task] { task(); });
    return fut.get();
  }
  bool on_io_thread() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace storjnet
