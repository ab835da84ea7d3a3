// Rpc: the CLI's JSON-RPC calls for commands that make several (send-file, receive-file, --follow).
#pragma once
#include <stdexcept>
#include <string>

#include "api/http_client.h"
#include "api/json_rpc.h"

namespace storjnet::cli {

using api::json;

// An error response: the command fails with exit code 1 and the message.
struct RpcError : std::runtime_error {
  RpcError(int code, const std::string& message)
      : std::runtime_error("error " + std::to_string(code) + ": " + message), code(code) {}
  int code;
};
// No usable answer (unauthorized, not JSON, unreachable): exit code 2.
struct RpcUnusable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Rpc {
 public:
  Rpc(api::HttpClient& client, std::string target) : client_(client), target_(std::move(target)) {}
  // The result of METHOD(params); throws RpcError or RpcUnusable (std::runtime_error when unreachable).
  json call(const std::string& method, json params = json::array());

 private:
  api::HttpClient& client_;
  std::string target_;
  int next_id_ = 1;
};

// Set by SIGINT / SIGTERM once install_stop_handler ran; long-running commands poll it.
bool stop_requested();
void install_stop_handler();

// The long-running commands (file_commands.cc, follow_commands.cc); each returns the exit code.
struct SendFileOptions {
  std::string node, file;
  bool json_lines = false;  // --json: progress as JSON lines, the final transfer as JSON
};
int send_file(Rpc& rpc, const SendFileOptions& o);
struct ReceiveFileOptions {
  std::string dir;
  bool once = false;
  std::string max_size;  // "" none; bytes, or with a K/M/G/T suffix (powers of 1024)
  bool json_lines = false;
};
int receive_file(Rpc& rpc, const ReceiveFileOptions& o);
int follow_events(Rpc& rpc, const std::string& topic);
int follow_messages(Rpc& rpc, bool json_lines);

}  // namespace storjnet::cli
