// PyNode: one storjnet node on its own RealDriver thread, driven from Python threads.
//
// Every node call is posted to the driver thread (nodes are not thread-safe). A blocking call waits on a
// future with the GIL released; an _async call hands its result to a Python callable `done(result, error)`,
// called exactly once on the driver thread with the GIL held (error: an exception instance or None). A call
// still pending when the node closes completes with storjnet.ClosedError. close() is idempotent, callable
// from any Python thread but not from a node callback; the destructor closes.
#pragma once
#include <pybind11/pybind11.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "storjnet/real_driver.h"

namespace storjnet::py {

namespace pyb = pybind11;

// Thrown for calls on a closed node, and for calls the node dropped while closing.
struct NodeClosed : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A service refused a request (its message says why).
struct NodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A node operation: starts on the driver thread, completes through `done` (there, exactly once).
template <class R>
using Op = std::function<void(Node&, std::function<void(R)>)>;

// A Python callable owned from C++ threads: dropped (and, if never called, called with ClosedError) with the
// GIL held, whatever thread lets go of it last. Leaked, not touched, once the interpreter is finalizing.
class PyCompletion {
 public:
  explicit PyCompletion(pyb::object done) : done_(std::move(done)) {}
  ~PyCompletion();
  // With the GIL held: done(result, None) / done(None, error), at most once; exceptions go to unraisablehook.
  void succeed(pyb::object result);
  void fail(pyb::object error);
  // Never call: the caller reports the failure itself (a call refused before it was posted).
  void disarm() { called_ = true; }

 private:
  void call(pyb::object result, pyb::object error);
  pyb::object done_;
  bool called_ = false;
};

// A Python callable invoked many times from the driver thread (event observers); dropped with the GIL held.
struct PyCallback {
  explicit PyCallback(pyb::object f) : fn(std::move(f)) {}
  ~PyCallback();
  pyb::object fn;
};

// The Python exception instance for a C++ exception (ClosedError, ValueError, storjnet.Error).
pyb::object exception_object(std::exception_ptr e);

class PyNode {
 public:
  // Binds UDP host:port (port 0: ephemeral). data_dir: identity.key, dht.sqlite and a lock kept there (created
  // when missing; locked against a second user); none: a fresh identity, values in memory.
  PyNode(const std::string& host, int port, const std::optional<std::string>& data_dir, uint32_t network_id);
  ~PyNode();
  PyNode(const PyNode&) = delete;
  PyNode& operator=(const PyNode&) = delete;

  const std::string& id() const { return id_; }
  std::string host() const { return bound_.ip_string(); }
  int port() const { return bound_.port; }
  uint32_t network_id() const { return network_id_; }
  bool closed() const;
  // Flushes the store, stops the driver thread, destroys the node; pending calls fail with ClosedError.
  void close();

  // Blocking: runs `op`, waits (GIL released), converts the result with the GIL held.
  template <class R, class Conv>
  pyb::object run(Op<R> op, const Conv& conv);
  // Non-blocking: runs `op`; `done(conv(result), None)` on the driver thread when it completes.
  template <class R, class Conv>
  void run_async(Op<R> op, Conv conv, pyb::object done);
  // Calls f(topic, event_json bytes) on the driver thread for every pubsub event delivered here; None: stop.
  void set_on_pubsub_event(pyb::object f);

 private:
  void post(std::function<void(Node&)> fn);
  // Calls in flight: each registers how to fail it, so close() can end every one of them even when the node
  // would never call back nor drop its callback (a callback kept by a reference cycle, say).
  struct InFlight {
    std::mutex mu;
    uint64_t next = 0;
    std::map<uint64_t, std::function<void()>> fail;  // called at most once, without the GIL held
    bool closed = false;
    // Set when close() begins stopping the driver (after the store's flush): stopping destroys the node, which
    // answers what it still holds with its failure values (every callback runs once, include/storjnet/dht.h);
    // those answers, and any other that lands during the close, raise ClosedError.
    std::atomic<bool> stopping{false};
  };
  static bool closing(const std::weak_ptr<InFlight>& r) {
    auto p = r.lock();
    return !p || p->stopping.load();
  }
  // Registers `fail`; the returned key unregisters it (forget). Throws NodeClosed once closed.
  uint64_t track(std::function<void()> fail);
  void forget(uint64_t key);
  std::shared_ptr<InFlight> in_flight_ = std::make_shared<InFlight>();

  mutable std::mutex mu_;              // guards driver_ (posts from Python threads vs close)
  std::unique_ptr<RealDriver> driver_;
  Node* node_ = nullptr;               // owned by driver_; touched only on its thread
  Endpoint bound_;
  std::string id_;
  uint32_t network_id_ = 0;
  int lock_fd_ = -1;
  bool persistent_ = false;
};

template <class R, class Conv>
pyb::object PyNode::run(Op<R> op, const Conv& conv) {
  {
    std::lock_guard lock(mu_);
    if (driver_ && driver_->on_io_thread())
      throw std::runtime_error("a blocking storjnet call from a node callback (it runs on the node's thread and "
                               "would wait for itself): use the _async form");
  }
  auto promise = std::make_shared<std::promise<R>>();
  auto future = promise->get_future();
  auto once = std::make_shared<std::atomic<bool>>(false);
  uint64_t key = track([promise, once] {
    if (!once->exchange(true)) promise->set_exception(std::make_exception_ptr(NodeClosed("the node closed before the call completed")));
  });
  struct Forget {
    PyNode* self;
    uint64_t key;
    ~Forget() { self->forget(key); }
  } forget_on_return{this, key};
  post([op = std::move(op), promise, once, registry = std::weak_ptr<InFlight>(in_flight_)](Node& n) {
    try {
      op(n, [promise, once, registry](R r) {
        if (once->exchange(true)) return;
        if (closing(registry))
          promise->set_exception(std::make_exception_ptr(NodeClosed("the node closed before the call completed")));
        else
          promise->set_value(std::move(r));
      });
    } catch (...) {
      if (!once->exchange(true)) promise->set_exception(std::current_exception());
    }
  });
  std::optional<R> result;
  {
    pyb::gil_scoped_release release;
    try {
      result.emplace(future.get());
    } catch (const std::future_error&) {  // the node closed with the call pending: its promise was dropped
      throw NodeClosed("the node closed before the call completed");
    }
  }
  return conv(std::move(*result));
}

template <class R, class Conv>
void PyNode::run_async(Op<R> op, Conv conv, pyb::object done) {
  auto completion = std::make_shared<PyCompletion>(std::move(done));
  auto once = std::make_shared<std::atomic<bool>>(false);
  std::weak_ptr<InFlight> registry = in_flight_;
  uint64_t key = track([completion, once] {
    if (once->exchange(true)) return;
    pyb::gil_scoped_acquire gil;
    completion->fail(exception_object(std::make_exception_ptr(NodeClosed("the node closed before the call completed"))));
  });
  struct Disarm {  // a refused post raises at once: the callable must not hear of it too
    std::shared_ptr<PyCompletion> c;
    PyNode* self;
    uint64_t key;
    bool posted = false;
    ~Disarm() {
      if (posted) return;
      c->disarm();
      self->forget(key);
    }
  } guard{completion, this, key};
  auto forget = [registry, key] {
    if (auto r = registry.lock()) {
      std::function<void()> dropped;  // destroyed after the unlock: it may hold the last Python reference
      std::lock_guard lock(r->mu);
      if (auto it = r->fail.find(key); it != r->fail.end()) {
        dropped = std::move(it->second);
        r->fail.erase(it);
      }
    }
  };
  post([op = std::move(op), conv = std::move(conv), completion, once, forget, registry](Node& n) {
    try {
      op(n, [conv, completion, once, forget, registry](R r) {
        if (once->exchange(true)) return;
        forget();
        pyb::gil_scoped_acquire gil;
        if (closing(registry))
          return completion->fail(
              exception_object(std::make_exception_ptr(NodeClosed("the node closed before the call completed"))));
        pyb::object value;
        try {
          value = conv(std::move(r));
        } catch (...) {
          return completion->fail(exception_object(std::current_exception()));
        }
        completion->succeed(std::move(value));
      });
    } catch (...) {
      if (once->exchange(true)) return;
      forget();
      auto e = std::current_exception();
      pyb::gil_scoped_acquire gil;
      completion->fail(exception_object(e));
    }
  });
  guard.posted = true;
}

}  // namespace storjnet::py
