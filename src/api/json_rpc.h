// JSON-RPC 2.0 user API of a node (docs/api.md): a dispatcher from request JSON to response JSON, with
// asynchronous completion, independent of HTTP.
//
// The dispatcher validates on the caller's thread and touches the node only through a NodeRunner, which runs
// a function on the node's thread (RealDriver::post). Completion `done` runs exactly once, either on the
// caller's thread (errors, batches answered without the node) or on the node's thread.
#pragma once
#include <array>
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/op_gate.h"
#include "storjnet/node.h"

namespace storjnet::api {

using json = nlohmann::json;
class FileTransfers;  // api/file_transfers.h

// Runs `fn` with the node on the node's thread.
using NodeRunner = std::function<void(std::function<void(Node&)>)>;
// A response (single or batch), or nullopt when there is nothing to answer (notifications only).
using Done = std::function<void(std::optional<json>)>;

enum ErrorCode : int {
  kParseError = -32700,
  kInvalidRequest = -32600,
  kMethodNotFound = -32601,
  kInvalidParams = -32602,
  kInternalError = -32603,
  kNotStored = -32000,  // dht_put: no replica took the value; the message says why (PutResult::error)
  kFileError = -32001,  // file_send, file_receive: the file, directory or peer is unusable; the message says why
  kBusy = -32002,       // a DHT call refused by the node's admission gate (OpGate): too many queued; retry later
};

struct Limits {
  size_t max_batch = 1000;      // entries in one batch request
  size_t max_key = 4096;        // bytes of a DHT key
  OpGateLimits dht_gate;        // DHT calls (dht_put, dht_get, dht_get_all, dht_find, dht_stun) at once and queued
};

// The API methods are one table in json_rpc.cc; metrics label them by name, index 0 to kMethodCount - 1.
constexpr size_t kMethodCount = 23;
std::string_view method_name(size_t i);
// Deepest JSON nesting accepted (requests, values, and JSON received from the network).
constexpr int kMaxJsonDepth = 64;

// Parses `text` with nesting bounded by kMaxJsonDepth; nullopt when it is not JSON or nests too deep.
std::optional<json> parse_json(std::string_view text, bool* too_deep = nullptr);

// Counters of API calls, readable from any thread.
struct ApiCounters {
  std::array<std::atomic<uint64_t>, kMethodCount> calls{};  // by method, valid requests dispatched
  std::array<std::atomic<uint64_t>, 6> errors{};            // by kind: parse, invalid request, not found, params, internal, busy
  std::atomic<uint64_t> requests{0};                        // single requests and batch entries
};

class Dispatcher {
 public:
  // `files`: the process's file transfers for the file_* methods (nullptr: they answer an error).
  explicit Dispatcher(NodeRunner run, Limits limits = {}, FileTransfers* files = nullptr);

  // One HTTP body: a request or a batch. Parse errors answer -32700.
  void handle_body(std::string_view body, Done done);
  // An already parsed request or batch.
  void handle(const json& message, Done done);

  const ApiCounters& counters() const { return counters_; }
  // The DHT calls' admission gate: running, queued, refused.
  OpGate::Stats dht_gate_stats() const { return gate_.stats(); }

  // Helpers (also used by tests and the HTTP layer).
  static json error_response(const json& id, int code, std::string_view message);
  // Serializes a response; invalid UTF-8 from the network is replaced, never thrown on.
  static std::string dump(const json& j);

 private:
  void handle_one(const json& req, std::function<void(std::optional<json>)> done);
  void count_error(int code);

  NodeRunner run_;
  Limits limits_;
  FileTransfers* files_;
  ApiCounters counters_;
  OpGate gate_;
};

}  // namespace storjnet::api
