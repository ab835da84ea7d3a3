// RealDriver: runs nodes on real UDP sockets with Boost.Asio. Options::threads io threads (each its own
// io_context) host any number of nodes (thousands), each with its own socket and wake-up timer. A node lives on
// one io thread, chosen round-robin by add_node(), for its whole life: its protocol state, timers, socket and
// completion callbacks are touched on that thread only, so each node stays single-threaded (sans-IO core).
//
// Nodes are not thread-safe: touch a node only inside call(node, ...)/post(node, ...), which run on its
// thread, or inside call(fn)/post(fn), which run with EVERY node at hand: with one thread simply on it, with
// several while every io thread is paused (a barrier; for setup, aggregates over all nodes, diagnostics, not
// for the hot path). Completion callbacks of a node's methods run on that node's thread; such a callback may
// touch its own node (and, with threads == 1, any node) but not a node of another thread: post to it instead.
// A blocking call() from one io thread to another thread (or call(fn) from an io thread with threads > 1)
// could deadlock, so it throws std::logic_error. Per-thread: the receive batch buffers and the random source
// (Environment::random); per-node: socket, send queue, buffer pool, timers. The simulator does not use this.
#pragma once
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <type_traits>
#include <vector>

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
  // io threads (each an io_context with its own nodes). 0: std::thread::hardware_concurrency().
  unsigned threads = 1;
  // Threads for first-contact key work (the X25519 of a peer this process never talked to; Environment::offload):
  // it runs there while the io threads go on, so one busy node uses more than one core. kSpareCores (the
  // default): one per core the io threads leave, none when they take every core (handing work to a busy core
  // costs more wake-ups than it saves); 0: none, key work on the io threads.
  static constexpr unsigned kSpareCores = ~0u;
  unsigned key_threads = kSpareCores;
  // How often the driver checks whether malloc holds a megabyte more free memory than after its last trim, and
  // returns those pages to the kernel (malloc_trim; src/real/free_memory.h). 0: never (the process's own policy).
  std::chrono::milliseconds return_free_memory_every{1000};
};

class RealDriver {
 public:
  using Options = RealDriverOptions;
  explicit RealDriver(Options options = {});  // starts the io threads
  ~RealDriver();  // stops the threads, then destroys nodes and sockets

  // Binds a UDP socket at `bind` (port 0: ephemeral) and creates a node on it (storage nullptr: in memory),
  // on the next io thread in turn. Throws std::runtime_error with the reason when the address cannot be bound.
  // Callable from any thread but an io thread of another node (with threads > 1).
  Node& add_node(const Endpoint& bind, Identity identity, NodeConfig config = {},
                 std::unique_ptr<DhtStorage> storage = nullptr);
  // A dual-stack node: `binds` is one address, or one IPv4 and one IPv6 address (either first: the first is
  // its main socket, the one the TCP fast path listens beside). The second socket gets the first one's port
  // when its own is 0; an IPv6 socket beside an IPv4 one is IPv6-only. Each datagram leaves through the
  // socket of its destination's family; the node sends on the families it has (Environment::families,
  // docs/protocol.md 5, "Addresses"). std::invalid_argument for two of one family.
  Node& add_node(const std::vector<Endpoint>& binds, Identity identity, NodeConfig config = {},
                 std::unique_ptr<DhtStorage> storage = nullptr);
  // Many nodes at once, as add_node for each in order (the io threads taken in turn), each io thread making its
  // share in one go: one hand-off per thread instead of a round trip to an io thread per node (a process that
  // starts hundreds: storjnetd --nodes, the benches). The nodes, in the order of `specs`. When a bind fails, the
  // nodes made stay in the driver and the first failure (in the order of `specs`) is thrown once every thread
  // is done. Callable as add_node.
  struct NodeSpec {
    std::vector<Endpoint> binds;  // as add_node's
    Identity identity;
    NodeConfig config = {};
    std::unique_ptr<DhtStorage> storage = nullptr;
  };
  std::vector<Node*> add_nodes(std::vector<NodeSpec> specs);
  // The address the node's (main) socket is bound to. Callable from any thread.
  Endpoint local_endpoint(const Node& node) const;
  // Every socket's address, the main one first. Callable from any thread.
  std::vector<Endpoint> local_endpoints(const Node& node) const;
  size_t size() const;
  size_t threads() const;
  size_t key_threads() const;  // RealDriverOptions::key_threads, resolved
  // The io thread (0..threads()-1) that `node` lives on. Throws std::invalid_argument for a node of another
  // driver.
  size_t thread_of(const Node& node) const;
  // Fails every byte connection (streams fast path) of `node` as a network error would; the node sees
  // them closed. For tests. Returns how many were open. Callable from any thread but another io thread.
  size_t drop_connections(const Node& node);
  // The byte connections of `node` right now. For tests and diagnostics. As drop_connections.
  struct ConnStats {
    size_t open = 0, paused = 0, queued = 0;  // connections, of them not being read, bytes queued to send
    uint64_t paused_reads = 0;                // times any connection stopped being read (high-water mark)
  };
  ConnStats conn_stats(const Node& node);
  // The UDP socket of `node`: kernel drops, the send queue (datagrams waiting for a full socket, dropped past
  // its bound), effective buffer sizes. Callable from any thread but another io thread (inline on the node's).
  UdpStats udp_stats(const Node& node);

  // Runs `fn` on `node`'s io thread (dropped after stop(); std::invalid_argument for another driver's node).
  void post(const Node& node, std::function<void()> fn);
  // Runs `fn` on `node`'s io thread and returns its result (inline when already there).
  template <class F>
  auto call(const Node& node, F&& fn) -> std::invoke_result_t<F> {
    return call_on(&node, std::forward<F>(fn));
  }
  // Runs `fn` with every node at hand: on the io thread (threads == 1), else on one io thread while all others
  // wait (pausing the whole driver for as long as `fn` runs). Such calls run one at a time, in the order posted.
  void post(std::function<void()> fn);
  // Like post(fn), and returns its result (inline when already inside such a call, or on the only io thread).
  template <class F>
  auto call(F&& fn) -> std::invoke_result_t<F> {
    return call_on(nullptr, std::forward<F>(fn));
  }
  // Whether this thread is one of the driver's io threads (or runs a call(fn)).
  bool on_io_thread() const;
  // Whether `node` may be touched here: on its thread or inside call(fn)/post(fn).
  bool on_thread_of(const Node& node) const;
  void stop();

 private:
  // Whether call_on(node) may run inline here; throws std::logic_error when waiting could deadlock.
  bool runs_inline(const Node* node) const;
  void post_on(const Node* node, std::function<void()> fn);
  template <class F>
  auto call_on(const Node* node, F&& fn) -> std::invoke_result_t<F> {
    using R = std::invoke_result_t<F>;
    if (runs_inline(node)) return fn();
    std::packaged_task<R()> task(std::forward<F>(fn));
    auto fut = task.get_future();
    post_on(node, [&task] { task(); });
    return fut.get();
  }

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace storjnet
