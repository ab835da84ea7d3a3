// KeyWorkers: the real driver's threads for key work (Environment::offload): first-contact X25519 runs here
// while the io threads go on. A job runs `work` on a worker, then has `done` run on the io_context of the node
// that asked, as an event of its own. Jobs start in the order submitted, on any free worker. Hand-offs cost
// wake-ups (tens of µs on a VM), so they are batched: a submit wakes a worker only when none is awake, and the
// `done`s finished for one io_context while an earlier batch is still queued there join that batch. The
// destructor waits for running jobs and drops queued ones (their `done` never runs), so it must run before the
// io_contexts they post to are gone. Thread-safe.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace storjnet::real {

class KeyWorkers {
 public:
  explicit KeyWorkers(size_t threads);
  ~KeyWorkers();
  KeyWorkers(const KeyWorkers&) = delete;
  KeyWorkers& operator=(const KeyWorkers&) = delete;

  // False once the destructor started (nothing queued: the caller does the work itself).
  bool submit(boost::asio::io_context& io, std::function<void()> work, std::function<void()> done);
  size_t threads() const { return threads_.size(); }

 private:
  struct Job {
    boost::asio::io_context* io = nullptr;
    std::function<void()> work, done;
  };
  struct Batch {  // `done`s for one io_context, posted once; run (taken) by that io_context's thread
    std::mutex mu;
    std::vector<std::function<void()>> dones;
    bool taken = false;
  };
  void run();
  void finished(boost::asio::io_context& io, std::function<void()> done);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  size_t idle_ = 0;  // workers waiting on cv_
  bool stopping_ = false;
  std::unordered_map<boost::asio::io_context*, std::shared_ptr<Batch>> batches_;  // the last posted, per io_context
  std::vector<std::thread> threads_;
};

}  // namespace storjnet::real
