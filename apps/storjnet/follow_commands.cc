// events --follow and messages --follow: poll the daemon (pubsub_events, message_list) and print what
// arrives, one line each, until Ctrl-C.
#include <chrono>
#include <iostream>
#include <thread>

#include "rpc.h"

namespace storjnet::cli {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(200);

void pause_poll() {
  auto until = std::chrono::steady_clock::now() + kPollInterval;
  while (!stop_requested() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

}  // namespace

int follow_events(Rpc& rpc, const std::string& topic) {
  bool subscribed = false;
  for (auto& t : rpc.call("pubsub_subscriptions"))
    if (t == topic) subscribed = true;
  install_stop_handler();
  if (!subscribed) rpc.call("pubsub_subscribe", json::array({topic}));
  std::cerr << "storjnet: following events on " << topic << (subscribed ? "" : " (subscribed)") << " (Ctrl-C to stop)"
            << std::endl;
  while (!stop_requested()) {
    for (auto& e : rpc.call("pubsub_events", json::array({topic}))) std::cout << api::Dispatcher::dump(e) << '\n';
    std::cout.flush();
    pause_poll();
  }
  if (!subscribed) rpc.call("pubsub_unsubscribe", json::array({topic}));  // as it was before
  return 0;
}

int follow_messages(Rpc& rpc, bool json_lines) {
  install_stop_handler();
  std::cerr << "storjnet: following messages (Ctrl-C to stop)" << std::endl;
  while (!stop_requested()) {
    json all = rpc.call("message_list");
    for (auto& [from, msgs] : all.items())
      for (auto& m : msgs) {
        if (json_lines) std::cout << api::Dispatcher::dump({{"from", from}, {"message", m}}) << '\n';
        else std::cout << from << ": " << api::Dispatcher::dump(m) << '\n';
      }
    std::cout.flush();
    pause_poll();
  }
  return 0;
}

}  // namespace storjnet::cli
