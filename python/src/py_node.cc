#include "py_node.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "storjnet/dht_storage.h"

namespace storjnet::py {

namespace {

// The interpreter is gone or going: Python objects must not be touched (nor the GIL taken) any more.
bool interpreter_gone() { return !Py_IsInitialized() || _Py_IsFinalizing(); }

pyb::object exception_type(const char* name) { return pyb::module_::import("storjnet._storjnet").attr(name); }

int lock_dir(const std::filesystem::path& dir) {
  auto path = dir / "lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw std::invalid_argument("data_dir " + dir.string() + " is not writable: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw std::invalid_argument("data_dir " + dir.string() + " is in use by another node");
  }
  return fd;
}

}  // namespace

pyb::object exception_object(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const NodeClosed& x) {
    return exception_type("ClosedError")(x.what());
  } catch (const std::invalid_argument& x) {
    return pyb::reinterpret_borrow<pyb::object>(PyExc_ValueError)(x.what());
  } catch (const std::exception& x) {
    return exception_type("Error")(x.what());
  } catch (...) {
    return exception_type("Error")("unknown C++ exception");
  }
}

PyCompletion::~PyCompletion() {
  if (interpreter_gone()) {
    done_.release();  // leaked: no Python left to call or free it with
    return;
  }
  pyb::gil_scoped_acquire gil;
  if (!called_) call(pyb::none(), exception_type("ClosedError")("the node closed before the call completed"));
  done_ = pyb::object();
}

void PyCompletion::succeed(pyb::object result) { call(std::move(result), pyb::none()); }
void PyCompletion::fail(pyb::object error) { call(pyb::none(), std::move(error)); }

void PyCompletion::call(pyb::object result, pyb::object error) {
  if (called_) return;
  called_ = true;
  try {
    done_(std::move(result), std::move(error));
  } catch (pyb::error_already_set& e) {
    e.discard_as_unraisable("storjnet: completion callback");
  }
}

PyCallback::~PyCallback() {
  if (interpreter_gone()) {
    fn.release();
    return;
  }
  pyb::gil_scoped_acquire gil;
  fn = pyb::object();
}

PyNode::PyNode(const std::string& host, int port, const std::optional<std::string>& data_dir, uint32_t network_id)
    : network_id_(network_id) {
  if (port < 0 || port > 65535) throw std::invalid_argument("port: must be between 0 and 65535, got " + std::to_string(port));
  auto bind = Endpoint::from_ip(host, static_cast<uint16_t>(port));
  if (!bind) throw std::invalid_argument("host: \"" + host + "\" is not an IP address");
  NodeConfig config;
  config.engine.network_id = network_id;
  std::optional<Identity> identity;
  std::unique_ptr<DhtStorage> storage;
  if (data_dir) {
    std::filesystem::path dir(*data_dir);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::invalid_argument("data_dir: cannot create " + dir.string() + ": " + ec.message());
    lock_fd_ = lock_dir(dir);
    try {
      identity = Identity::load_or_create(dir);
      storage = make_sqlite_storage(dir / "dht.sqlite");
    } catch (const std::exception& e) {
      ::close(lock_fd_);
      throw std::invalid_argument("data_dir " + dir.string() + ": " + e.what());
    }
    persistent_ = true;
  } else {
    identity = Identity::generate();
  }
  pyb::gil_scoped_release release;  // the driver thread starts; nothing of it waits for Python here
  try {
    driver_ = std::make_unique<RealDriver>();
    node_ = &driver_->add_node(*bind, std::move(*identity), config, std::move(storage));
  } catch (const std::exception& e) {
    driver_.reset();
    if (lock_fd_ >= 0) ::close(lock_fd_);
    lock_fd_ = -1;
    throw std::invalid_argument(std::string("cannot start the node on ") + bind->to_string() + ": " + e.what());
  }
  bound_ = driver_->local_endpoint(*node_);
  id_ = driver_->call([n = node_] { return n->id().hex(); });
}

PyNode::~PyNode() {
  std::unique_ptr<RealDriver> d;
  {
    std::lock_guard lock(mu_);
    if (driver_ && (interpreter_gone() || driver_->on_io_thread())) d = std::move(driver_);
  }
  if (!d) {
    close();
  } else if (interpreter_gone()) {
    d.reset();  // no GIL to release; callbacks leak their Python objects rather than touch them
  } else {
    // The last reference went away in a callback, on the driver thread, which cannot join itself: another
    // thread stops it once the callback returned (and fails what is left in flight).
    std::thread([d = std::move(d), in_flight = in_flight_]() mutable {
      in_flight->stopping = true;
      d.reset();
      std::map<uint64_t, std::function<void()>> left;
      {
        std::lock_guard lock(in_flight->mu);
        in_flight->closed = true;
        left.swap(in_flight->fail);
      }
      for (auto& [key, fail] : left) fail();
    }).detach();
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

bool PyNode::closed() const {
  std::lock_guard lock(mu_);
  return !driver_;
}

void PyNode::close() {
  std::unique_ptr<RealDriver> d;
  {
    std::lock_guard lock(mu_);
    if (driver_ && driver_->on_io_thread())
      throw std::runtime_error("close() from a node callback (it runs on the node's thread): close from another thread");
    d = std::move(driver_);
  }
  if (!d) return;
  // Without the GIL: the driver thread may be waiting for it in a callback, and dropping pending calls
  // completes their Python callables (which takes it).
  pyb::gil_scoped_release release;
  if (persistent_) {
    d->call([n = node_] {
      try {
        n->dht().flush();
      } catch (const std::exception&) {  // every write is committed (WAL); closing the store checkpoints
      }
    });
  }
  in_flight_->stopping = true;
  d->stop();
  d.reset();
  node_ = nullptr;
  // Whatever the node neither answered nor dropped: failed now, so no caller waits for ever.
  std::map<uint64_t, std::function<void()>> left;
  {
    std::lock_guard lock(in_flight_->mu);
    in_flight_->closed = true;
    left.swap(in_flight_->fail);
  }
  for (auto& [key, fail] : left) fail();
}

uint64_t PyNode::track(std::function<void()> fail) {
  std::lock_guard lock(in_flight_->mu);
  if (in_flight_->closed) throw NodeClosed("the node is closed");
  uint64_t key = in_flight_->next++;
  in_flight_->fail.emplace(key, std::move(fail));
  return key;
}

void PyNode::forget(uint64_t key) {
  std::function<void()> dropped;  // destroyed after the unlock: it may hold the last Python reference
  std::lock_guard lock(in_flight_->mu);
  if (auto it = in_flight_->fail.find(key); it != in_flight_->fail.end()) {
    dropped = std::move(it->second);
    in_flight_->fail.erase(it);
  }
}

void PyNode::post(std::function<void(Node&)> fn) {
  std::lock_guard lock(mu_);
  if (!driver_) throw NodeClosed("the node is closed");
  driver_->post([n = node_, fn = std::move(fn)] { fn(*n); });
}

void PyNode::set_on_pubsub_event(pyb::object f) {
  std::shared_ptr<PyCallback> cb;
  if (!f.is_none()) cb = std::make_shared<PyCallback>(std::move(f));
  post([cb](Node& n) {
    if (!cb) return n.pubsub().set_on_event(nullptr);
    n.pubsub().set_on_event([cb](const std::string& topic, const std::string& event) {
      pyb::gil_scoped_acquire gil;
      try {
        cb->fn(pyb::str(topic), pyb::bytes(event));
      } catch (pyb::error_already_set& e) {
        e.discard_as_unraisable("storjnet: pubsub event callback");
      }
    });
  });
}

}  // namespace storjnet::py
