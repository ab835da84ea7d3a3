#include "api/json_rpc.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "api/file_transfers.h"
#include "storjnet/bytes.h"

namespace storjnet::api {

namespace {

// What a method's reply carries: a result, or an error code and message.
struct Outcome {
  json result;
  int code = 0;
  std::string message;
};
using Reply = std::function<void(Outcome)>;

Outcome ok(json r) { return {std::move(r), 0, {}}; }
Outcome fail(int code, std::string msg) { return {nullptr, code, std::move(msg)}; }

enum class Type { kKey, kTopic, kValue, kMessage, kEvent, kNodeId, kStreamId, kHexData, kSize, kPath };

struct ParamSpec {
  std::string_view name;
  Type type;
  bool optional = false;
};

// A validated, converted argument.
struct Arg {
  bool present = false;
  std::string text;   // keys, topics, and JSON texts of values, messages and events
  NodeId id;
  StreamId sid{};
  Bytes data;
  std::optional<size_t> size;
};
using Args = std::vector<Arg>;

using Handler = void (*)(Args& args, const NodeRunner& run, Reply reply);
// Methods of the daemon's file transfers (files: nullptr when the process has none).
using FileHandler = void (*)(Args& args, const NodeRunner& run, FileTransfers* files, Reply reply);

struct MethodSpec {
  std::string_view name;
  std::array<ParamSpec, 2> param_slots;
  size_t param_count;
  Handler handler;
  FileHandler file_handler = nullptr;
  std::span<const ParamSpec> params() const { return {param_slots.data(), param_count}; }
};

json endpoint_json(const Endpoint& e) { return json::array({e.ip_string(), e.port}); }

json opt_endpoint_json(const std::optional<Endpoint>& e) { return e ? endpoint_json(*e) : json(nullptr); }

// Runs `body` on the node's thread; an exception there becomes an internal error.
template <class F>
void on_node(const NodeRunner& run, Reply reply, F body) {
  run([reply, body = std::move(body)](Node& n) mutable {
    try {
      body(n, reply);
    } catch (const std::exception& e) {
      reply(fail(kInternalError, std::string("internal error: ") + e.what()));
    }
  });
}

// --- DHT ---
void dht_put(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [key = std::move(a[0].text), value = std::move(a[1].text)](Node& n, Reply r) {
    n.dht().put(key, as_bytes(value), [r](const PutResult& res) {
      r(res.ok ? ok(true) : fail(kNotStored, "not stored: " + res.error));
    });
  });
}
// dht_get [key, owner?]: with an owner (hex node id), only that publisher's value.
void dht_get(Args& a, const NodeRunner& run, Reply reply) {
  auto owner = a.size() > 1 && a[1].present ? std::optional<NodeId>(a[1].id) : std::nullopt;
  on_node(run, reply, [key = std::move(a[0].text), owner](Node& n, Reply r) {
    n.dht().get(key, owner, [r](GetResult res) {
      if (!res.value) return r(ok(nullptr));
      std::string_view text(reinterpret_cast<const char*>(res.value->data()), res.value->size());
      auto v = parse_json(text);
      if (!v) return r(fail(kInternalError, "the stored value is not JSON"));
      r(ok(std::move(*v)));
    });
  });
}
// dht_get_all: [{"value": JSON, "owner": hex node id, "version": us, "holders": n}...], most holders first;
// a value that is not JSON is given as {"hex": "..."} so one odd owner cannot hide the others.
void dht_get_all(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [key = std::move(a[0].text)](Node& n, Reply r) {
    n.dht().get_all(key, [r](GetAllResult res) {
      json out = json::array();
      for (auto& v : res.values) {
        auto parsed = parse_json(std::string_view(reinterpret_cast<const char*>(v.value.data()), v.value.size()));
        out.push_back({{"value", parsed ? std::move(*parsed) : json{{"hex", to_hex(v.value)}}},
                       {"owner", v.owner_id.hex()},
                       {"version", v.version},
                       {"holders", v.holders}});
      }
      r(ok(std::move(out)));
    });
  });
}
void dht_stun(Args&, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [](Node& n, Reply r) { n.dht().stun([r](std::optional<Endpoint> e) { r(ok(opt_endpoint_json(e))); }); });
}
void dht_find(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [id = a[0].id](Node& n, Reply r) {
    n.dht().find(id, [r](std::optional<Endpoint> e) { r(ok(opt_endpoint_json(e))); });
  });
}
void dht_id(Args&, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [](Node& n, Reply r) { r(ok(n.id().hex())); });
}
void dht_peers(Args&, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [](Node& n, Reply r) {
    json out = json::array();
    for (const auto& c : n.dht().peers()) out.push_back(json::array({c.id.hex(), c.endpoint.ip_string(), c.endpoint.port}));
    r(ok(std::move(out)));
  });
}

// --- pubsub ---
void pubsub_publish(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [topic = std::move(a[0].text), event = std::move(a[1].text)](Node& n, Reply r) mutable {
    if (!n.pubsub().publish(topic, std::move(event))) return r(fail(kInternalError, "pubsub refused the event"));
    r(ok(nullptr));
  });
}
void pubsub_subscribe(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [topic = std::move(a[0].text)](Node& n, Reply r) {
    if (!n.pubsub().subscribe(topic)) return r(fail(kInternalError, "pubsub refused the subscription"));
    r(ok(nullptr));
  });
}
void pubsub_unsubscribe(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [topic = std::move(a[0].text)](Node& n, Reply r) {
    if (!n.pubsub().unsubscribe(topic)) return r(fail(kInternalError, "pubsub refused the unsubscription"));
    r(ok(nullptr));
  });
}
void pubsub_subscriptions(Args&, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [](Node& n, Reply r) {
    json out = json::array();
    for (auto& t : n.pubsub().subscriptions()) out.push_back(t);
    r(ok(std::move(out)));
  });
}
void pubsub_events(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [topic = std::move(a[0].text)](Node& n, Reply r) {
    json out = json::array();
    for (auto& e : n.pubsub().take_events(topic))
      if (auto v = parse_json(e)) out.push_back(std::move(*v));  // events that are not JSON are dropped
    r(ok(std::move(out)));
  });
}

// --- messages ---
void message_send(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [to = a[0].id, msg = std::move(a[1].text)](Node& n, Reply r) mutable {
    n.messages().send(to, std::move(msg), [r](bool delivered) { r(ok(delivered)); });
  });
}
void message_list(Args&, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [](Node& n, Reply r) {
    json out = json::object();
    for (auto& [from, msgs] : n.messages().take_all()) {
      json list = json::array();
      for (auto& m : msgs)
        if (auto v = parse_json(m)) list.push_back(std::move(*v));  // messages that are not JSON are dropped
      out[from.hex()] = std::move(list);
    }
    r(ok(std::move(out)));
  });
}

// --- streams ---
std::string sid_hex(const StreamId& s) { return to_hex({s.data(), s.size()}); }

void stream_list(Args&, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [](Node& n, Reply r) {
    json out = json::object();
    for (auto& [sid, info] : n.streams().list()) out[sid_hex(sid)] = json::array({info.peer.hex(), info.unread});
    r(ok(std::move(out)));
  });
}
void stream_open(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [peer = a[0].id](Node& n, Reply r) {
    n.streams().open(peer, [r](std::optional<StreamId> s) { r(ok(s ? json(sid_hex(*s)) : json(nullptr))); });
  });
}
void stream_close(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [sid = a[0].sid](Node& n, Reply r) { n.streams().close(sid, [r](bool was_open) { r(ok(was_open)); }); });
}
void stream_read(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [sid = a[0].sid, size = a[1].size](Node& n, Reply r) {
    auto data = n.streams().read(sid, size);
    r(ok(data ? json(to_hex(*data)) : json(nullptr)));
  });
}
void stream_write(Args& a, const NodeRunner& run, Reply reply) {
  on_node(run, reply, [sid = a[0].sid, data = std::move(a[1].data)](Node& n, Reply r) {
    n.streams().write(sid, data, [r](std::optional<size_t> written) { r(ok(written ? json(*written) : json(nullptr))); });
  });
}

// --- file transfers (api/file_transfers.h) ---
template <class F>
void on_files(const NodeRunner& run, FileTransfers* files, Reply reply, F body) {
  if (!files) return reply(fail(kInternalError, "this process has no file transfers"));
  on_node(run, reply, [files, body = std::move(body)](Node& n, Reply r) mutable { body(n, *files, r); });
}
json receive_mode_json(const std::optional<FileReceiveMode>& m) {
  if (!m) return nullptr;
  return {{"dir", m->dir}, {"max_size", m->max_size ? json(*m->max_size) : json(nullptr)}};
}
void file_send(Args& a, const NodeRunner& run, FileTransfers* files, Reply reply) {
  on_files(run, files, reply, [peer = a[0].id, path = std::move(a[1].text)](Node& n, FileTransfers& f, Reply r) {
    f.send(n, peer, path, [r](std::optional<uint64_t> id, std::string why) { r(id ? ok(*id) : fail(kFileError, std::move(why))); });
  });
}
void file_receive(Args& a, const NodeRunner& run, FileTransfers* files, Reply reply) {
  std::optional<FileReceiveMode> mode;
  if (a[0].present) mode = FileReceiveMode{std::move(a[0].text), a[1].size};
  on_files(run, files, reply, [mode = std::move(mode)](Node& n, FileTransfers& f, Reply r) {
    if (auto err = f.set_receive(n, mode)) return r(fail(kFileError, *err));
    r(ok(receive_mode_json(f.receive_mode())));
  });
}
void file_transfers(Args&, const NodeRunner& run, FileTransfers* files, Reply reply) {
  on_files(run, files, reply, [](Node& n, FileTransfers& f, Reply r) {
    json out = json::array();
    for (auto& t : f.list(n))
      out.push_back({{"id", t.id}, {"direction", t.outgoing ? "send" : "receive"}, {"peer", t.peer.hex()},
                     {"name", t.name}, {"path", t.path}, {"size", t.size}, {"bytes", t.bytes}, {"state", t.state},
                     {"error", t.error.empty() ? json(nullptr) : json(t.error)}, {"elapsed", t.elapsed}});
    r(ok({{"receive", receive_mode_json(f.receive_mode())}, {"transfers", std::move(out)}}));
  });
}
void file_cancel(Args& a, const NodeRunner& run, FileTransfers* files, Reply reply) {
  on_files(run, files, reply, [id = a[0].size.value_or(0)](Node& n, FileTransfers& f, Reply r) { r(ok(f.cancel(n, id))); });
}

// The API: every method, its parameters and its handler, in the order metrics label them.
constexpr std::array<MethodSpec, kMethodCount> kMethods = {
    MethodSpec{"dht_put", {ParamSpec{"key", Type::kKey}, ParamSpec{"value", Type::kValue}}, 2, dht_put},
    MethodSpec{"dht_get", {ParamSpec{"key", Type::kKey}, ParamSpec{"owner", Type::kNodeId, true}}, 2, dht_get},
    MethodSpec{"dht_get_all", {ParamSpec{"key", Type::kKey}}, 1, dht_get_all},
    MethodSpec{"dht_stun", {}, 0, dht_stun},
    MethodSpec{"dht_find", {ParamSpec{"hexnodeid", Type::kNodeId}}, 1, dht_find},
    MethodSpec{"dht_id", {}, 0, dht_id},
    MethodSpec{"dht_peers", {}, 0, dht_peers},
    MethodSpec{"pubsub_publish", {ParamSpec{"topic", Type::kTopic}, ParamSpec{"event", Type::kEvent}}, 2, pubsub_publish},
    MethodSpec{"pubsub_subscribe", {ParamSpec{"topic", Type::kTopic}}, 1, pubsub_subscribe},
    MethodSpec{"pubsub_subscriptions", {}, 0, pubsub_subscriptions},
    MethodSpec{"pubsub_unsubscribe", {ParamSpec{"topic", Type::kTopic}}, 1, pubsub_unsubscribe},
    MethodSpec{"pubsub_events", {ParamSpec{"topic", Type::kTopic}}, 1, pubsub_events},
    MethodSpec{"message_send", {ParamSpec{"hexnodeid", Type::kNodeId}, ParamSpec{"message", Type::kMessage}}, 2, message_send},
    MethodSpec{"message_list", {}, 0, message_list},
    MethodSpec{"stream_list", {}, 0, stream_list},
    MethodSpec{"stream_open", {ParamSpec{"hexnodeid", Type::kNodeId}}, 1, stream_open},
    MethodSpec{"stream_close", {ParamSpec{"streamid", Type::kStreamId}}, 1, stream_close},
    MethodSpec{"stream_read", {ParamSpec{"streamid", Type::kStreamId}, ParamSpec{"size", Type::kSize, true}}, 2, stream_read},
    MethodSpec{"stream_write", {ParamSpec{"streamid", Type::kStreamId}, ParamSpec{"hexdata", Type::kHexData}}, 2, stream_write},
    MethodSpec{"file_send", {ParamSpec{"hexnodeid", Type::kNodeId}, ParamSpec{"path", Type::kPath}}, 2, nullptr, file_send},
    MethodSpec{"file_receive", {ParamSpec{"dir", Type::kPath}, ParamSpec{"max_size", Type::kSize, true}}, 2, nullptr, file_receive},
    MethodSpec{"file_transfers", {}, 0, nullptr, file_transfers},
    MethodSpec{"file_cancel", {ParamSpec{"id", Type::kSize}}, 1, nullptr, file_cancel},
};
static_assert([] {
  for (const auto& m : kMethods)
    if (m.name.empty() || !m.handler == !m.file_handler || m.param_count > m.param_slots.size()) return false;
  return true;
}(), "every API method has a name, one handler and at most two parameters");

// Calls that start network lookups: they go through the dispatcher's OpGate.
bool is_dht_operation(std::string_view name) {
  return name == "dht_put" || name == "dht_get" || name == "dht_get_all" || name == "dht_find" || name == "dht_stun";
}
// What one queued call costs the gate besides its params (the request's own state), in bytes.
constexpr size_t kOpOverhead = 256;

size_t method_index(std::string_view name) {
  for (size_t i = 0; i < kMethods.size(); ++i)
    if (kMethods[i].name == name) return i;
  return kMethods.size();
}

}  // namespace

std::string_view method_name(size_t i) { return i < kMethods.size() ? kMethods[i].name : std::string_view(); }

namespace {

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Converts one argument; an error message when it does not fit its spec.
std::optional<std::string> convert(const ParamSpec& p, const json& v, const Limits& limits, Arg& out) {
  std::string name(p.name);
  auto need_string = [&]() -> std::optional<std::string> {
    if (!v.is_string()) return name + ": expected a string, got " + v.type_name();
    return std::nullopt;
  };
  auto json_text = [&](size_t max, std::string_view what) -> std::optional<std::string> {
    out.text = Dispatcher::dump(v);
    if (out.text.size() > max)
      return name + ": " + std::string(what) + " too large (" + std::to_string(out.text.size()) + " bytes of JSON, at most " +
             std::to_string(max) + ")";
    return std::nullopt;
  };
  auto hex_id = [&](size_t chars, std::string_view what) -> std::optional<std::string> {
    if (auto e = need_string()) return e;
    const auto& s = v.get_ref<const std::string&>();
    if (!is_hex(s)) return name + ": bad hex in " + std::string(what);
    if (s.size() != chars)
      return name + ": wrong " + std::string(what) + " length (" + std::to_string(s.size()) + " hex characters, expected " +
             std::to_string(chars) + ")";
    return std::nullopt;
  };
  out.present = true;
  switch (p.type) {
    case Type::kKey:
      if (auto e = need_string()) return e;
      out.text = v.get<std::string>();
      if (out.text.size() > limits.max_key)
        return name + ": key too large (" + std::to_string(out.text.size()) + " bytes, at most " +
               std::to_string(limits.max_key) + ")";
      return std::nullopt;
    case Type::kTopic:
      if (auto e = need_string()) return e;
      out.text = v.get<std::string>();
      if (out.text.empty()) return name + ": empty topic";
      if (out.text.size() > kMaxTopic)
        return name + ": topic too large (" + std::to_string(out.text.size()) + " bytes, at most " +
               std::to_string(kMaxTopic) + ")";
      return std::nullopt;
    case Type::kValue: return json_text(kMaxValueSize, "value");
    case Type::kMessage: return json_text(kMaxMessageJson, "message");
    case Type::kEvent: return json_text(kMaxEventJson, "event");
    case Type::kNodeId: {
      if (auto e = hex_id(NodeId::kSize * 2, "node id")) return e;
      std::string err;
      if (!NodeId::parse(lower(v.get_ref<const std::string&>()), out.id, &err)) return name + ": " + err;
      return std::nullopt;
    }
    case Type::kStreamId: {
      if (auto e = hex_id(out.sid.size() * 2, "stream id")) return e;
      auto b = from_hex(v.get_ref<const std::string&>());
      if (!b || b->size() != out.sid.size()) return name + ": bad hex in stream id";
      std::copy(b->begin(), b->end(), out.sid.begin());
      return std::nullopt;
    }
    case Type::kHexData: {
      if (auto e = need_string()) return e;
      const auto& s = v.get_ref<const std::string&>();
      if (!is_hex(s)) return name + ": bad hex";
      if (s.size() % 2) return name + ": bad hex (odd length)";
      auto b = from_hex(s);
      if (!b) return name + ": bad hex";
      out.data = std::move(*b);
      return std::nullopt;
    }
    case Type::kPath:  // an absolute path, or null
      if (v.is_null()) {
        out.present = false;
        return std::nullopt;
      }
      if (auto e = need_string()) return e;
      out.text = v.get<std::string>();
      if (out.text.empty() || out.text[0] != '/') return name + ": expected an absolute path";
      if (out.text.size() > limits.max_key || out.text.find('\0') != std::string::npos) return name + ": bad path";
      return std::nullopt;
    case Type::kSize:
      if (v.is_null()) {
        out.present = false;
        return std::nullopt;
      }
      if (v.is_number_unsigned()) {
        out.size = v.get<uint64_t>();
        return std::nullopt;
      }
      if (v.is_number_integer()) return name + ": must not be negative";
      if (v.is_number_float()) {
        double d = v.get<double>();
        if (d >= 0 && d <= 9e15 && d == static_cast<double>(static_cast<uint64_t>(d))) {
          out.size = static_cast<uint64_t>(d);
          return std::nullopt;
        }
        return name + ": expected a non-negative integer";
      }
      return name + ": expected a non-negative integer, got " + v.type_name();
  }
  return name + ": unsupported";
}

// Validates params against the method's spec; an error message when they do not fit.
std::optional<std::string> bind_params(const MethodSpec& m, const json* params, const Limits& limits, Args& args) {
  args.assign(m.params().size(), Arg{});
  size_t required = std::count_if(m.params().begin(), m.params().end(), [](const ParamSpec& p) { return !p.optional; });
  auto count_error = [&](size_t got) {
    std::string want = required == m.params().size() ? std::to_string(required)
                                                    : std::to_string(required) + " to " + std::to_string(m.params().size());
    return std::string(m.name) + " takes " + want + " parameter" + (m.params().size() == 1 ? "" : "s") + ", got " +
           std::to_string(got);
  };
  if (!params || params->is_array()) {
    size_t n = params ? params->size() : 0;
    if (n < required || n > m.params().size()) return count_error(n);
    for (size_t i = 0; i < n; ++i)
      if (auto e = convert(m.params()[i], (*params)[i], limits, args[i])) return e;
    return std::nullopt;
  }
  // Named.
  for (auto it = params->begin(); it != params->end(); ++it) {
    auto p = std::find_if(m.params().begin(), m.params().end(), [&](const ParamSpec& s) { return s.name == it.key(); });
    if (p == m.params().end()) return "unknown parameter \"" + it.key() + "\" for " + std::string(m.name);
  }
  for (size_t i = 0; i < m.params().size(); ++i) {
    auto it = params->find(std::string(m.params()[i].name));
    if (it == params->end()) {
      if (!m.params()[i].optional) return "missing parameter \"" + std::string(m.params()[i].name) + "\"";
      continue;
    }
    if (auto e = convert(m.params()[i], *it, limits, args[i])) return e;
  }
  return std::nullopt;
}

json make_response(const json& id, Outcome&& o) {
  if (o.code) return Dispatcher::error_response(id, o.code, o.message);
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(o.result)}};
}

}  // namespace

std::optional<json> parse_json(std::string_view text, bool* too_deep) {
  bool deep = false;
  json::parser_callback_t cb = [&deep](int depth, json::parse_event_t ev, json&) {
    if ((ev == json::parse_event_t::object_start || ev == json::parse_event_t::array_start) && depth >= kMaxJsonDepth) {
      deep = true;
      return false;
    }
    return true;
  };
  json j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (too_deep) *too_deep = deep;
  if (deep || j.is_discarded()) return std::nullopt;
  return j;
}

Dispatcher::Dispatcher(NodeRunner run, Limits limits, FileTransfers* files)
    : run_(std::move(run)), limits_(limits), files_(files), gate_(limits.dht_gate) {}

json Dispatcher::error_response(const json& id, int code, std::string_view message) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

std::string Dispatcher::dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void Dispatcher::count_error(int code) {
  size_t i = code == kParseError       ? 0
             : code == kInvalidRequest ? 1
             : code == kMethodNotFound ? 2
             : code == kInvalidParams  ? 3
             : code == kBusy           ? 5
                                       : 4;
  counters_.errors[i].fetch_add(1, std::memory_order_relaxed);
}

void Dispatcher::handle_body(std::string_view body, Done done) {
  bool deep = false;
  auto msg = parse_json(body, &deep);
  if (!msg) {
    counters_.requests.fetch_add(1, std::memory_order_relaxed);
    if (deep) {
      count_error(kInvalidRequest);
      return done(error_response(nullptr, kInvalidRequest, "JSON nested deeper than " + std::to_string(kMaxJsonDepth)));
    }
    count_error(kParseError);
    return done(error_response(nullptr, kParseError, "parse error: the body is not valid JSON"));
  }
  handle(*msg, std::move(done));
}

void Dispatcher::handle(const json& message, Done done) {
  if (!message.is_array()) return handle_one(message, std::move(done));
  if (message.empty()) {
    count_error(kInvalidRequest);
    return done(error_response(nullptr, kInvalidRequest, "invalid request: empty batch"));
  }
  if (message.size() > limits_.max_batch) {
    count_error(kInvalidRequest);
    return done(error_response(nullptr, kInvalidRequest,
                               "invalid request: batch of " + std::to_string(message.size()) + " requests, at most " +
                                   std::to_string(limits_.max_batch)));
  }
  struct Batch {
    std::mutex mu;
    std::vector<std::optional<json>> responses;
    size_t remaining;
    Done done;
  };
  auto batch = std::make_shared<Batch>();
  batch->responses.resize(message.size());
  batch->remaining = message.size();
  batch->done = std::move(done);
  for (size_t i = 0; i < message.size(); ++i) {
    handle_one(message[i], [batch, i](std::optional<json> r) {
      Done finish;
      {
        std::lock_guard lock(batch->mu);
        batch->responses[i] = std::move(r);
        if (--batch->remaining) return;
        finish = std::move(batch->done);
      }
      json out = json::array();
      for (auto& r : batch->responses)
        if (r) out.push_back(std::move(*r));
      if (out.empty()) return finish(std::nullopt);
      finish(std::move(out));
    });
  }
}

void Dispatcher::handle_one(const json& req, std::function<void(std::optional<json>)> done) {
  counters_.requests.fetch_add(1, std::memory_order_relaxed);
  auto invalid = [&](std::string msg) {
    count_error(kInvalidRequest);
    done(error_response(nullptr, kInvalidRequest, "invalid request: " + msg));
  };
  if (!req.is_object()) return invalid("expected a request object");
  auto jv = req.find("jsonrpc");
  if (jv == req.end() || !jv->is_string() || jv->get_ref<const std::string&>() != "2.0")
    return invalid("\"jsonrpc\" must be \"2.0\"");
  auto idit = req.find("id");
  bool notification = idit == req.end();
  json id = notification ? json(nullptr) : *idit;
  if (!notification && !(id.is_string() || id.is_number() || id.is_null()))
    return invalid("\"id\" must be a string, a number or null");
  auto mit = req.find("method");
  if (mit == req.end() || !mit->is_string()) {
    count_error(kInvalidRequest);
    return done(error_response(id, kInvalidRequest, "invalid request: \"method\" must be a string"));
  }
  auto pit = req.find("params");
  const json* params = pit == req.end() ? nullptr : &*pit;
  if (params && !params->is_array() && !params->is_object()) {
    count_error(kInvalidRequest);
    return done(error_response(id, kInvalidRequest, "invalid request: \"params\" must be an array or an object"));
  }
  const auto& name = mit->get_ref<const std::string&>();
  // Only the keys of a request object are ours to judge; others are ignored.
  auto reply_error = [&](int code, std::string msg) {
    count_error(code);
    if (notification) return done(std::nullopt);
    done(error_response(id, code, msg));
  };
  size_t index = method_index(name);
  if (index == kMethods.size()) return reply_error(kMethodNotFound, "method not found: " + name);
  const MethodSpec* m = &kMethods[index];
  Args args;
  if (auto e = bind_params(*m, params, limits_, args)) return reply_error(kInvalidParams, "invalid params: " + *e);
  counters_.calls[index].fetch_add(1, std::memory_order_relaxed);

  // Completes exactly once even if a service misbehaves and calls back twice.
  auto once = std::make_shared<std::atomic<bool>>(false);
  auto* errors = &counters_.errors;
  Reply reply = [once, notification, id, done = std::move(done), errors](Outcome o) {
    if (once->exchange(true)) return;
    if (o.code) (*errors)[o.code == kInvalidParams ? 3 : o.code == kBusy ? 5 : 4].fetch_add(1, std::memory_order_relaxed);
    if (notification) return done(std::nullopt);
    done(make_response(id, std::move(o)));
  };
  if (m->file_handler) return m->file_handler(args, run_, files_, std::move(reply));
  if (!is_dht_operation(m->name)) return m->handler(args, run_, std::move(reply));
  // A DHT operation: through the gate, which starts it now or when an earlier one ends, or refuses it.
  size_t bytes = kOpOverhead;
  for (const auto& arg : args) bytes += arg.text.size() + arg.data.size();
  auto start = [handler = m->handler, args = std::move(args), run = run_, reply](std::shared_ptr<OpGate::Ticket> t) mutable {
    handler(args, run, [t = std::move(t), reply](Outcome o) {
      t->release();
      reply(std::move(o));
    });
  };
  if (!gate_.submit(bytes, std::move(start)))
    reply(fail(kBusy, "busy: " + std::to_string(gate_.limits().queued) + " DHT calls or " +
                          std::to_string(gate_.limits().queued_bytes >> 20) + " MiB of their params already wait at this node; retry later"));
}

}  // namespace storjnet::api
