#include "real/key_workers.h"

#include <boost/asio/post.hpp>

namespace storjnet::real {

KeyWorkers::~KeyWorkers() {
  stopping_ = true;
  pool_.stop();  // queued jobs are dropped; running ones end
  pool_.join();
}

bool KeyWorkers::submit(boost::asio::io_context& io, std::function<void()> work, std::function<void()> done) {
  if (stopping_) return false;
  boost::asio::post(pool_, [this, &io, work = std::move(work), done = std::move(done)]() mutable {
    work();
    finished(io, std::move(done));
  });
  return true;
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
