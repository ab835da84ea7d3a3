#include "rpc.h"

#include <csignal>

namespace storjnet::cli {

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }
}  // namespace

bool stop_requested() { return g_stop != 0; }

void install_stop_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

json Rpc::call(const std::string& method, json params) {
  json req = {{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", method}, {"params", std::move(params)}};
  auto res = client_.post(target_, req.dump());
  if (res.status == 401)
    throw RpcUnusable("unauthorized: no valid API token (--token-file, --data-dir or STORJNET_API_TOKEN)");
  auto body = api::parse_json(res.body);
  if (!body || !body->is_object()) throw RpcUnusable("HTTP " + std::to_string(res.status) + ": " + res.body);
  if (auto err = body->find("error"); err != body->end())
    throw RpcError((*err)["code"].is_number_integer() ? (*err)["code"].get<int>() : 0,
                   (*err)["message"].is_string() ? (*err)["message"].get<std::string>() : err->dump());
  return (*body)["result"];
}

}  // namespace storjnet::cli
