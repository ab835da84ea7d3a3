// send-file and receive-file: start a transfer in the daemon (file_send, file_receive) and follow it
// through file_transfers until it ends, with a progress display on stderr and the outcome on stdout.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <set>
#include <thread>

#include "progress.h"
#include "rpc.h"

namespace storjnet::cli {

namespace {

namespace fs = std::filesystem;
constexpr auto kPollInterval = std::chrono::milliseconds(200);

// Sleeps one poll interval, waking early on Ctrl-C.
void pause_poll() {
  auto until = std::chrono::steady_clock::now() + kPollInterval;
  while (!stop_requested() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

std::string short_id(const std::string& hex) { return hex.size() > 12 ? hex.substr(0, 12) + "…" : hex; }

// "NAME (SIZE) ... in T (RATE)"
std::string summary(const json& t) {
  double elapsed = t["elapsed"].get<double>();
  uint64_t size = t["size"].get<uint64_t>();
  return t["name"].get<std::string>() + " (" + human_bytes(size) + ") in " +
         (elapsed < 10 ? std::to_string(elapsed).substr(0, 4) + " s" : human_duration(elapsed)) + " (" +
         human_rate(elapsed > 0 ? static_cast<double>(size) / elapsed : 0) + ")";
}

const json* find_transfer(const json& list, uint64_t id) {
  for (auto& t : list["transfers"])
    if (t["id"].get<uint64_t>() == id) return &t;
  return nullptr;
}

// "512", "10K", "1.5G" (powers of 1024); throws on anything else.
uint64_t parse_size(const std::string& s) {
  size_t used = 0;
  double v = std::stod(s, &used);
  std::string unit = s.substr(used);
  double mult = 1;
  if (unit == "K" || unit == "KiB") mult = 1024.0;
  else if (unit == "M" || unit == "MiB") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB") mult = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TiB") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty() && unit != "B") throw std::invalid_argument("unit");
  if (v < 0) throw std::invalid_argument("negative");
  return static_cast<uint64_t>(v * mult);
}

}  // namespace

int send_file(Rpc& rpc, const SendFileOptions& o) {
  std::string path = fs::absolute(o.file).lexically_normal().string();
  install_stop_handler();
  uint64_t id = rpc.call("file_send", json::array({o.node, path})).get<uint64_t>();
  Progress bar(stderr, isatty(STDERR_FILENO), "sending " + fs::path(path).filename().string());
  for (;;) {
    if (stop_requested()) {
      rpc.call("file_cancel", json::array({id}));
      bar.clear();
      std::cerr << "storjnet: cancelled; the receiver deletes what it got\n";
      return 130;
    }
    json all = rpc.call("file_transfers");
    const json* t = find_transfer(all, id);
    if (!t) {
      bar.clear();
      std::cerr << "storjnet: transfer " << id << " is no longer listed by the daemon\n";
      return 1;
    }
    std::string state = (*t)["state"].get<std::string>();
    if (state == "done" || state == "failed") {
      bar.clear();
      if (o.json_lines) std::cout << api::Dispatcher::dump(*t) << '\n';
      if (state == "failed") {
        std::cerr << "storjnet: send-file failed: " << (*t)["error"].get<std::string>() << '\n';
        return 1;
      }
      if (!o.json_lines)
        std::cout << "sent " << summary(*t) << " to " << short_id((*t)["peer"].get<std::string>())
                  << "; the receiver checked its BLAKE2b-256 hash\n";
      return 0;
    }
    if (state != "connecting") bar.update((*t)["bytes"].get<uint64_t>(), (*t)["size"].get<uint64_t>());
    pause_poll();
  }
}

int receive_file(Rpc& rpc, const ReceiveFileOptions& o) {
  std::string dir = fs::absolute(o.dir.empty() ? "." : o.dir).lexically_normal().string();
  if (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  json params = json::array({dir});
  if (!o.max_size.empty()) {
    try {
      params.push_back(parse_size(o.max_size));
    } catch (const std::exception&) {
      std::cerr << "storjnet: --max-size \"" << o.max_size << "\": expected bytes, or a number with K, M, G or T\n";
      return 2;
    }
  }
  // Transfers listed before receive mode went on are not ours to report.
  std::set<uint64_t> known;
  json before = rpc.call("file_transfers");
  for (auto& t : before["transfers"]) known.insert(t["id"].get<uint64_t>());
  install_stop_handler();
  rpc.call("file_receive", params);
  std::cerr << "storjnet: receiving files into " << dir << " (Ctrl-C to stop)" << std::endl;
  auto stop_receiving = [&] {
    json now = rpc.call("file_transfers")["receive"];
    if (now.is_object() && now["dir"] == dir) rpc.call("file_receive", json::array({nullptr}));
  };
  std::set<uint64_t> announced;
  std::unique_ptr<Progress> bar;
  uint64_t bar_id = 0;
  int failures = 0;
  for (;;) {
    if (stop_requested()) {
      if (bar) bar->clear();
      stop_receiving();
      std::cerr << "storjnet: stopped receiving\n";
      return failures ? 1 : 0;
    }
    json all = rpc.call("file_transfers");
    for (auto& t : all["transfers"]) {
      uint64_t id = t["id"].get<uint64_t>();
      if (t["direction"] != "receive" || known.count(id)) continue;
      std::string state = t["state"].get<std::string>();
      std::string from = short_id(t["peer"].get<std::string>());
      if (!announced.count(id) && (!t["name"].get<std::string>().empty() || state != "receiving")) {
        announced.insert(id);
        if (!t["name"].get<std::string>().empty()) {
          if (bar) bar->clear();
          std::cerr << "storjnet: receiving " << t["name"].get<std::string>() << " ("
                    << human_bytes(t["size"].get<uint64_t>()) << ") from " << from << std::endl;
        }
      }
      if (state == "receiving") {
        if (t["name"].get<std::string>().empty()) continue;
        if (!bar || bar_id != id) {
          if (bar) bar->clear();
          bar = std::make_unique<Progress>(stderr, isatty(STDERR_FILENO), "receiving " + t["name"].get<std::string>());
          bar_id = id;
        }
        bar->update(t["bytes"].get<uint64_t>(), t["size"].get<uint64_t>());
        continue;
      }
      known.insert(id);  // finished: report once
      if (bar) bar->clear();
      bar.reset();
      if (o.json_lines) std::cout << api::Dispatcher::dump(t) << std::endl;
      if (state == "done") {
        if (!o.json_lines)
          std::cout << "received " << summary(t) << " from " << from << ", hash checked: "
                    << t["path"].get<std::string>() << std::endl;
      } else {
        ++failures;
        std::cerr << "storjnet: receiving from " << from << " failed: " << t["error"].get<std::string>() << std::endl;
      }
      if (o.once) {
        stop_receiving();
        return state == "done" ? 0 : 1;
      }
    }
    pause_poll();
  }
}

}  // namespace storjnet::cli
