// KeyWorkers: the real driver's threads for key work (Environment::offload): first-contact X25519 runs here
// while the io threads go on. A job runs `work` on a thread of an Asio thread_pool, then has `done` run on the
// io_context of the node that asked, as an event of its own. Hand-offs cost wake-ups (tens of µs on a VM), so
// the `done`s finished for one io_context while an earlier batch is still queued there join that batch (one
// posted handler, one wake-up). The destructor waits for running jobs and drops queued ones (their `done`
// never runs), so it must run before the io_contexts they post to are gone. Thread-safe.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

namespace storjnet::real {

class KeyWorkers {
 public:
  explicit KeyWorkers(size_t threads) : pool_(threads), threads_(threads) {}
  ~KeyWorkers();
  KeyWorkers(const KeyWorkers&) = delete;
  KeyWorkers& operator=(const KeyWorkers&) = delete;

  // False once the destructor started (nothing queued: the caller does the work itself).
  bool submit(boost::asio::io_context& io, std::function<void()> work, std::function<void()> done);
  size_t threads() const { return threads_; }

 private:
  struct Batch {  // `done`s for one io_context, posted once; run (taken) by that io_context's thread
    std::mutex mu;
    std::vector<std::function<void()>> dones;
    bool taken = false;
  };
  void finished(boost::asio::io_context& io, std::function<void()> done);

  boost::asio::thread_pool pool_;
  size_t threads_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards batches_
  std::unordered_map<boost::asio::io_context*, std::shared_ptr<Batch>> batches_;  // the last posted, per io_context
};

}  // namespace storjnet::real
