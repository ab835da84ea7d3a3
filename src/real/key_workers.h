// KeyWorkers: the real driver's threads for key work (Environment::offload): first-contact X25519 runs here
// while the io threads go on. A job runs `work` on a worker, then posts `done` to the io_context of the node
// that asked, so `done` runs on the node's thread as an event of its own. Jobs run in the order submitted, on
// any free worker. The destructor waits for running jobs and drops queued ones (their `done` never runs), so
// it must run before the io_contexts they post to are gone. Thread-safe.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
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
    boost::asio::io_context* io;
    std::function<void()> work, done;
  };
  void run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace storjnet::real
