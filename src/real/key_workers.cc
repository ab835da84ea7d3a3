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
  bool wake;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    queue_.push_back({&io, std::move(work), std::move(done)});
    wake = idle_ > 0 && queue_.size() == 1;  // an awake worker takes queued jobs before it sleeps
  }
  if (wake) cv_.notify_one();
  return true;
}

void KeyWorkers::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      ++idle_;
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      // More queued than awake workers can take at once: wake another.
      if (!queue_.empty() && idle_ > 0) cv_.notify_one();
    }
    job.work();
    finished(*job.io, std::move(job.done));
  }
}

void KeyWorkers::finished(boost::asio::io_context& io, std::function<void()> done) {
  std::shared_ptr<Batch> fresh;
  {
    std::lock_guard lock(mu_);
    auto& last = batches_[&io];
    if (last) {
      std::lock_guard batch_lock(last->mu);
      if (!last->taken) {  // posted and not run yet: this one joins it
        last->dones.push_back(std::move(done));
        return;
      }
    }
    last = fresh = std::make_shared<Batch>();
    fresh->dones.push_back(std::move(done));
  }
  // The handler holds only its batch (never this object, which may be gone before it runs).
  boost::asio::post(io, [fresh] {
    std::vector<std::function<void()>> dones;
    {
      std::lock_guard batch_lock(fresh->mu);
      fresh->taken = true;
      dones.swap(fresh->dones);
    }
    for (auto& d : dones) d();
  });
}

}  // namespace storjnet::real
