// await: runs an asynchronous operation on a RealDriver's io thread and waits for its result (30 s at most,
// then std::runtime_error). For tests over real sockets.
#pragma once
#include <chrono>
#include <future>
#include <stdexcept>

#include "storjnet/real_driver.h"

namespace storjnet::test {

template <class T, class Start>
T await(RealDriver& d, Start start) {
  std::promise<T> p;
  auto f = p.get_future();
  d.post([&] { start([&p](T v) { p.set_value(std::move(v)); }); });
  if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) throw std::runtime_error("timed out");
  return f.get();
}

}  // namespace storjnet::test
