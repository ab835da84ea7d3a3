// storjnet._storjnet: the native half of the Python package (python/storjnet/ wraps it). Each node method has
// a blocking form and an `_async` form taking a `done(result, error)` callable (py_node.h). Arguments arrive
// already checked by the Python layer and are checked again here (std::invalid_argument -> ValueError);
// values, messages and events cross as JSON text (bytes), stream data as bytes.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <utility>

#include "py_node.h"
#include "storjnet/bytes.h"

namespace storjnet::py {
namespace {

pyb::bytes to_bytes(const Bytes& b) { return pyb::bytes(reinterpret_cast<const char*>(b.data()), b.size()); }

pyb::object endpoint_or_none(const std::optional<Endpoint>& e) {
  if (!e) return pyb::none();
  return pyb::make_tuple(e->ip_string(), e->port);
}

std::string stream_hex(const StreamId& s) { return to_hex({s.data(), s.size()}); }

NodeId parse_node_id(const std::string& hex) {
  std::string lower(hex);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  NodeId id;
  std::string err;
  if (!NodeId::parse(lower, id, &err)) throw std::invalid_argument("node_id: " + err);
  return id;
}

StreamId parse_stream_id(const std::string& hex) {
  auto b = from_hex(hex);
  StreamId s{};
  if (!b || b->size() != s.size()) throw std::invalid_argument("stream_id: expected 64 hex characters");
  std::copy(b->begin(), b->end(), s.begin());
  return s;
}

void check_size(const std::string& text, size_t max, const char* what) {
  if (text.size() > max)
    throw std::invalid_argument(std::string(what) + ": too large (" + std::to_string(text.size()) +
                                " bytes of JSON, at most " + std::to_string(max) + ")");
}

void check_topic(const std::string& topic) {
  if (topic.empty()) throw std::invalid_argument("topic: empty topic");
  if (topic.size() > kMaxTopic)
    throw std::invalid_argument("topic: too large (" + std::to_string(topic.size()) + " bytes, at most " +
                                std::to_string(kMaxTopic) + ")");
}

void require(bool ok, const char* refusal) {
  if (!ok) throw NodeError(refusal);
}

// Binds `name` (blocking) and `name_async` (with a trailing done callable). `make(args...)` validates on the
// calling thread and returns the Op; `conv` turns its result into Python with the GIL held.
template <class R, class... A, class Make, class Conv>
void def_op(pyb::class_<PyNode>& cls, const char* name, Make make, Conv conv) {
  cls.def(name, [make, conv](PyNode& self, A... a) { return self.run<R>(make(std::move(a)...), conv); });
  cls.def((std::string(name) + "_async").c_str(),
          [make, conv](PyNode& self, A... a, pyb::object done) { self.run_async<R>(make(std::move(a)...), conv, std::move(done)); });
}

pyb::object none_of(bool) { return pyb::none(); }
pyb::object bool_of(bool b) { return pyb::bool_(b); }

}  // namespace

PYBIND11_MODULE(_storjnet, m) {
  m.doc() = "storjnet native bindings (use the storjnet package, not this module)";
  auto error = pyb::register_exception<NodeError>(m, "Error", PyExc_RuntimeError);
  pyb::register_exception<NodeClosed>(m, "ClosedError", error.ptr());
  m.attr("MAX_VALUE_SIZE") = kMaxValueSize;
  m.attr("MAX_MESSAGE_JSON") = kMaxMessageJson;
  m.attr("MAX_EVENT_JSON") = kMaxEventJson;
  m.attr("MAX_TOPIC") = kMaxTopic;
  m.attr("MAX_KEY") = 4096;
  m.attr("DEFAULT_NETWORK_ID") = EngineConfig{}.network_id;

  pyb::class_<PyNode> cls(m, "Node");
  cls.def(pyb::init<const std::string&, int, const std::optional<std::string>&, uint32_t>(), pyb::arg("host"),
          pyb::arg("port"), pyb::arg("data_dir"), pyb::arg("network_id"))
      .def_property_readonly("id", &PyNode::id)
      .def_property_readonly("host", &PyNode::host)
      .def_property_readonly("port", &PyNode::port)
      .def_property_readonly("network_id", &PyNode::network_id)
      .def_property_readonly("closed", &PyNode::closed)
      .def("close", &PyNode::close)
      .def("set_on_pubsub_event", &PyNode::set_on_pubsub_event);

  // --- joining ---
  def_op<bool, std::vector<std::pair<std::string, int>>>(
      cls, "bootstrap",
      [](std::vector<std::pair<std::string, int>> seeds) -> Op<bool> {
        std::vector<Endpoint> eps;
        for (auto& [host, port] : seeds) {
          auto ep = port > 0 && port <= 65535 ? Endpoint::from_ip(host, static_cast<uint16_t>(port)) : std::nullopt;
          if (!ep) throw std::invalid_argument("bootstrap: \"" + host + ":" + std::to_string(port) + "\" is not an IP address and port");
          eps.push_back(*ep);
        }
        return [eps](Node& n, auto done) { n.dht().bootstrap(eps, done); };
      },
      bool_of);

  // --- DHT ---
  // A put nothing stored raises storjnet.Error("not stored: <why>"), as the daemon answers -32000.
  def_op<std::optional<std::string>, std::string, std::string>(
      cls, "dht_put",
      [](std::string key, std::string value) -> Op<std::optional<std::string>> {
        check_size(value, kMaxValueSize, "value");
        return [key, value](Node& n, auto done) {
          n.dht().put(key, as_bytes(value), [done](const PutResult& r) {
            done(r.ok ? std::nullopt : std::optional<std::string>(r.error));
          });
        };
      },
      [](std::optional<std::string> error) -> pyb::object {
        if (error) throw NodeError("not stored: " + *error);
        return pyb::bool_(true);
      });
  def_op<std::optional<Bytes>, std::string, std::optional<std::string>>(
      cls, "dht_get",
      [](std::string key, std::optional<std::string> owner) -> Op<std::optional<Bytes>> {
        std::optional<NodeId> id;
        if (owner) id = parse_node_id(*owner);
        return [key, id](Node& n, auto done) { n.dht().get(key, id, [done](GetResult r) { done(std::move(r.value)); }); };
      },
      [](std::optional<Bytes> v) -> pyb::object { return v ? pyb::object(to_bytes(*v)) : pyb::none(); });
  def_op<std::vector<OwnedValue>, std::string>(
      cls, "dht_get_all",
      [](std::string key) -> Op<std::vector<OwnedValue>> {
        return [key](Node& n, auto done) { n.dht().get_all(key, [done](GetAllResult r) { done(std::move(r.values)); }); };
      },
      [](std::vector<OwnedValue> values) -> pyb::object {
        pyb::list out;
        for (auto& v : values) out.append(pyb::make_tuple(to_bytes(v.value), v.owner_id.hex(), v.version, v.holders));
        return out;
      });
  def_op<std::optional<Endpoint>>(
      cls, "dht_stun", []() -> Op<std::optional<Endpoint>> { return [](Node& n, auto done) { n.dht().stun(done); }; },
      endpoint_or_none);
  def_op<std::optional<Endpoint>, std::string>(
      cls, "dht_find",
      [](std::string hex) -> Op<std::optional<Endpoint>> {
        return [id = parse_node_id(hex)](Node& n, auto done) { n.dht().find(id, done); };
      },
      endpoint_or_none);
  def_op<std::vector<Contact>>(
      cls, "dht_peers", []() -> Op<std::vector<Contact>> { return [](Node& n, auto done) { done(n.dht().peers()); }; },
      [](std::vector<Contact> peers) -> pyb::object {
        pyb::list out;
        for (auto& c : peers) out.append(pyb::make_tuple(c.id.hex(), c.endpoint.ip_string(), c.endpoint.port));
        return out;
      });

  // --- pubsub ---
  def_op<bool, std::string, std::string>(
      cls, "pubsub_publish",
      [](std::string topic, std::string event) -> Op<bool> {
        check_topic(topic);
        check_size(event, kMaxEventJson, "event");
        return [topic, event](Node& n, auto done) {
          require(n.pubsub().publish(topic, event), "pubsub refused the event");
          done(true);
        };
      },
      none_of);
  def_op<bool, std::string>(
      cls, "pubsub_subscribe",
      [](std::string topic) -> Op<bool> {
        check_topic(topic);
        return [topic](Node& n, auto done) {
          require(n.pubsub().subscribe(topic), "pubsub refused the subscription");
          done(true);
        };
      },
      none_of);
  def_op<bool, std::string>(
      cls, "pubsub_unsubscribe",
      [](std::string topic) -> Op<bool> {
        check_topic(topic);
        return [topic](Node& n, auto done) {
          require(n.pubsub().unsubscribe(topic), "pubsub refused the unsubscription");
          done(true);
        };
      },
      none_of);
  def_op<std::vector<std::string>>(
      cls, "pubsub_subscriptions",
      []() -> Op<std::vector<std::string>> { return [](Node& n, auto done) { done(n.pubsub().subscriptions()); }; },
      [](std::vector<std::string> topics) -> pyb::object { return pyb::cast(topics); });
  def_op<std::vector<std::string>, std::string>(
      cls, "pubsub_events",
      [](std::string topic) -> Op<std::vector<std::string>> {
        check_topic(topic);
        return [topic](Node& n, auto done) { done(n.pubsub().take_events(topic)); };
      },
      [](std::vector<std::string> events) -> pyb::object {
        pyb::list out;
        for (auto& e : events) out.append(pyb::bytes(e));
        return out;
      });

  // --- messages ---
  def_op<bool, std::string, std::string>(
      cls, "message_send",
      [](std::string hex, std::string message) -> Op<bool> {
        check_size(message, kMaxMessageJson, "message");
        return [to = parse_node_id(hex), message](Node& n, auto done) { n.messages().send(to, message, done); };
      },
      bool_of);
  using Inbox = std::map<NodeId, std::vector<std::string>>;
  def_op<Inbox>(
      cls, "message_list", []() -> Op<Inbox> { return [](Node& n, auto done) { done(n.messages().take_all()); }; },
      [](Inbox inbox) -> pyb::object {
        pyb::dict out;
        for (auto& [from, msgs] : inbox) {
          pyb::list list;
          for (auto& msg : msgs) list.append(pyb::bytes(msg));
          out[pyb::str(from.hex())] = list;
        }
        return out;
      });

  // --- streams ---
  using StreamMap = std::map<StreamId, StreamInfo>;
  def_op<StreamMap>(
      cls, "stream_list", []() -> Op<StreamMap> { return [](Node& n, auto done) { done(n.streams().list()); }; },
      [](StreamMap streams) -> pyb::object {
        pyb::dict out;
        for (auto& [sid, info] : streams) out[pyb::str(stream_hex(sid))] = pyb::make_tuple(info.peer.hex(), info.unread);
        return out;
      });
  def_op<std::optional<StreamId>, std::string>(
      cls, "stream_open",
      [](std::string hex) -> Op<std::optional<StreamId>> {
        return [peer = parse_node_id(hex)](Node& n, auto done) { n.streams().open(peer, done); };
      },
      [](std::optional<StreamId> s) -> pyb::object { return s ? pyb::object(pyb::str(stream_hex(*s))) : pyb::none(); });
  def_op<bool, std::string>(
      cls, "stream_close",
      [](std::string hex) -> Op<bool> {
        return [sid = parse_stream_id(hex)](Node& n, auto done) { n.streams().close(sid, done); };
      },
      bool_of);
  def_op<std::optional<Bytes>, std::string, std::optional<size_t>>(
      cls, "stream_read",
      [](std::string hex, std::optional<size_t> size) -> Op<std::optional<Bytes>> {
        return [sid = parse_stream_id(hex), size](Node& n, auto done) { done(n.streams().read(sid, size)); };
      },
      [](std::optional<Bytes> data) -> pyb::object { return data ? pyb::object(to_bytes(*data)) : pyb::none(); });
  def_op<std::optional<size_t>, std::string, pyb::bytes>(
      cls, "stream_write",
      [](std::string hex, pyb::bytes data) -> Op<std::optional<size_t>> {
        auto sid = parse_stream_id(hex);
        std::string_view view = data;
        return [sid, bytes = Bytes(view.begin(), view.end())](Node& n, auto done) { n.streams().write(sid, bytes, done); };
      },
      [](std::optional<size_t> written) -> pyb::object { return written ? pyb::object(pyb::int_(*written)) : pyb::none(); });
  def_op<size_t, std::string>(
      cls, "stream_writable",
      [](std::string hex) -> Op<size_t> {
        return [sid = parse_stream_id(hex)](Node& n, auto done) { done(n.streams().writable(sid)); };
      },
      [](size_t n) -> pyb::object { return pyb::int_(n); });
  // Complete once the stream has bytes to read (or room to write), or is closed or unknown.
  def_op<bool, std::string>(
      cls, "stream_wait_readable",
      [](std::string hex) -> Op<bool> {
        return [sid = parse_stream_id(hex)](Node& n, auto done) { n.streams().on_readable(sid, [done] { done(true); }); };
      },
      none_of);
  def_op<bool, std::string>(
      cls, "stream_wait_writable",
      [](std::string hex) -> Op<bool> {
        return [sid = parse_stream_id(hex)](Node& n, auto done) { n.streams().on_writable(sid, [done] { done(true); }); };
      },
      none_of);
}

}  // namespace storjnet::py
