#include "real/key_workers.h"

#include <boost/asio/post.hpp>

namespace storjnet::real {

KeyWorkers::KeyWorkers(size_t threads) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

KeyWorkers::~KeyWorkers() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool KeyWorkers::submit(boost::asio::io_context& io, std::function<void()> work, std::function<void()> done) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    queue_.push_back({&io, std::move(work), std::move(done)});
  }
  cv_.notify_one();
  return true;
}

void KeyWorkers::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job.work();
    boost::asio::post(*job.io, std::move(job.done));
  }
}

}  // namespace storjnet::real
