// Helpers for the API tests: run storjnetd as a child process and call its JSON-RPC API over HTTP.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.h"
#include "api/http_client.h"
#include "api/json_rpc.h"

extern char** environ;

namespace storjnet::test {

using api::json;

struct DaemonNode {
  std::string id;
  std::string udp;
  uint16_t api_port = 0;
};

// A storjnetd child process. Its stdout is read for the "node i ..." lines; stderr goes to ours.
class Daemon {
 public:
  Daemon() = default;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() { kill_now(); }

  // Starts `storjnetd args...` and waits (up to `deadline`) for "storjnetd: N nodes ready". Returns false
  // when the process exits first (exit_code() then has its status) or the deadline passes.
  bool start(const std::vector<std::string>& args, std::chrono::seconds deadline = std::chrono::seconds(120)) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    std::vector<std::string> argv_s = {STORJNETD_PATH};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, STORJNETD_PATH, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      throw std::runtime_error("cannot spawn " + std::string(STORJNETD_PATH));
    }
    out_fd_ = fds[0];
    auto until = std::chrono::steady_clock::now() + deadline;
    while (auto line = read_line(until)) {
      lines.push_back(*line);
      if (line->starts_with("node ")) {
        // Lines come in the order the nodes joined; keep them by index.
        size_t i = std::stoul(line->substr(5));
        if (nodes.size() <= i) nodes.resize(i + 1);
        nodes[i] = parse_node(*line);
        ++node_lines;
      }
      if (line->starts_with("storjnetd: ") && line->ends_with(" ready")) return true;
    }
    return false;
  }

  // Sends `sig` and waits for the exit; the exit code, or -1 when it did not exit within the deadline.
  int stop(int sig = SIGTERM, std::chrono::seconds deadline = std::chrono::seconds(60)) {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, sig);
    auto until = std::chrono::steady_clock::now() + deadline;
    // Drain stdout (the "stopped" line) until EOF.
    while (auto line = read_line(until)) lines.push_back(*line);
    return wait(until);
  }

  // Waits for the process to exit by itself (e.g. after a usage error).
  int wait_exit(std::chrono::seconds deadline = std::chrono::seconds(60)) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (auto line = read_line(until)) lines.push_back(*line);
    return wait(until);
  }

  int exit_code() const { return exit_code_; }
  bool running() const { return pid_ > 0; }

  std::vector<std::string> lines;
  std::vector<DaemonNode> nodes;  // by index
  size_t node_lines = 0;

 private:
  static DaemonNode parse_node(const std::string& line) {
    DaemonNode n;
    auto field = [&](const std::string& key) {
      auto p = line.find(key + "=");
      if (p == std::string::npos) return std::string();
      auto e = line.find(' ', p);
      return line.substr(p + key.size() + 1, e == std::string::npos ? std::string::npos : e - p - key.size() - 1);
    };
    n.id = field("id");
    n.udp = field("udp");
    auto api = field("api");
    auto colon = api.rfind(':');
    if (colon != std::string::npos) n.api_port = static_cast<uint16_t>(std::stoi(api.substr(colon + 1)));
    return n;
  }

  std::optional<std::string> read_line(std::chrono::steady_clock::time_point until) {
    while (out_fd_ >= 0) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char tmp[4096];
      ssize_t n = ::read(out_fd_, tmp, sizeof tmp);
      if (n <= 0) {
        ::close(out_fd_);
        out_fd_ = -1;
        break;
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
    return std::nullopt;
  }

  int wait(std::chrono::steady_clock::time_point until) {
    while (pid_ > 0) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() > until) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling for exit, with a deadline
    }
    if (out_fd_ >= 0) {
      ::close(out_fd_);
      out_fd_ = -1;
    }
    return exit_code_;
  }

  void kill_now() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    out_fd_ = -1;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int exit_code_ = -1;
  std::string buf_;
};

// A port base for `count` consecutive ports, derived from the pid so that concurrent test processes
// rarely collide; `attempt` moves to another base after a collision.
inline int port_base(int attempt, int count = 100) {
  int slots = (60000 - 20000) / count;
  return 20000 + static_cast<int>((static_cast<unsigned>(::getpid()) * 7919u + attempt * 104729u) % slots) * count;
}

// Starts `nodes` nodes on pid-derived ports (UDP base, API base+nodes), retrying elsewhere on a collision.
inline bool start_daemon(Daemon& d, int nodes, const std::string& data_dir, std::vector<std::string> extra = {},
                         int* base_out = nullptr) {
  for (int attempt = 0; attempt < 6; ++attempt) {
    int base = port_base(attempt, 2 * nodes);
    std::vector<std::string> args = {"--nodes",    std::to_string(nodes),        "--port", std::to_string(base),
                                     "--api-port", std::to_string(base + nodes), "--host", "127.0.0.1",
                                     "--data-dir", data_dir,                     "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    d.lines.clear();
    d.nodes.clear();
    d.node_lines = 0;
    if (d.start(args)) {
      if (base_out) *base_out = base;
      return true;
    }
    if (d.wait_exit() != 2) return false;  // not a port collision
  }
  return false;
}

// A JSON-RPC client of one node.
class Rpc {
 public:
  explicit Rpc(uint16_t port, std::string token = {}) : http_("127.0.0.1", port, std::move(token)) {}

  // The whole response object.
  json raw(const json& request) {
    auto res = http_.post("/", request.dump());
    if (res.body.empty()) return nullptr;
    return json::parse(res.body);
  }
  json request(const std::string& method, json params = json::array()) {
    return raw({{"jsonrpc", "2.0"}, {"id", ++id_}, {"method", method}, {"params", std::move(params)}});
  }
  // The result; throws when the answer is an error.
  json call(const std::string& method, json params = json::array()) {
    json r = request(method, std::move(params));
    if (r.contains("error")) throw std::runtime_error(method + ": " + r["error"].dump());
    return r["result"];
  }
  // The error code (0 when the call succeeded).
  int error_code(const std::string& method, json params) {
    json r = request(method, std::move(params));
    return r.contains("error") ? r["error"]["code"].get<int>() : 0;
  }
  api::HttpResponse post_body(const std::string& body) { return http_.post("/", body); }
  api::HttpResponse get(const std::string& target) { return http_.get(target); }

 private:
  api::HttpClient http_;
  int id_ = 0;
};

// Polls `fn` until it returns true or the deadline passes.
template <class F>
bool eventually(F fn, std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (fn()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return fn();
}

}  // namespace storjnet::test
