// storjnet: command-line client of a storjnetd node's JSON-RPC API (docs/api.md).
//
//   storjnet [--api URL] [--token-file F | --data-dir D] [--json] call METHOD [ARGS...]   any method; ARGS are JSON
//   storjnet id | peers | stun | find ID | put KEY VALUE | get KEY
//   storjnet send ID MESSAGE | messages [--follow]
//   storjnet subscribe T | unsubscribe T | subscriptions | publish T EVENT | events T [--follow]
//   storjnet send-file ID FILE | receive-file [--dir D] [--once] [--max-size N]
//   storjnet streams | open ID | close SID | read SID [SIZE] | write SID HEX
//   storjnet health | metrics
//
// An argument that is not valid JSON is taken as a string, so `storjnet put greeting hello` works; quote
// JSON strings that look like other JSON ('"42"'). Exit codes: 0 success, 1 the call failed (an error
// response, or false/null where a result was expected, or a file transfer failed), 2 usage or connection
// problems, 130 a send-file cancelled with Ctrl-C. --follow and receive-file run until Ctrl-C (exit 0).
//
// The API token (docs/api.md, "Authentication"): --token, --token-file or STORJNET_API_TOKEN when given;
// otherwise the cookie storjnetd writes to its data dir: DATA_DIR/.cookie for --data-dir (env
// STORJNET_DATA_DIR), else the first of storjnet-data/.cookie (storjnetd's default),
// run/local-network/.cookie (`make run`) and /var/lib/storjnet/.cookie (the Debian package's service) that
// exists.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "api/auth.h"
#include "api/http_client.h"
#include "api/json_rpc.h"
#include "rpc.h"
#include "storjnet/version.h"
#include "wire/datagram.h"

using storjnet::api::json;

namespace {

json arg_json(const std::string& s) {
  auto v = storjnet::api::parse_json(s);
  return v ? *v : json(s);
}

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// A JSON value for people: strings bare, everything else as indented JSON.
std::string human(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return storjnet::api::Dispatcher::dump(v).size() <= 80 ? storjnet::api::Dispatcher::dump(v)
                                                         : v.dump(2, ' ', false, json::error_handler_t::replace);
}

std::string addr(const json& v) {
  if (v.is_array() && v.size() == 2 && v[0].is_string()) {
    std::string ip = v[0].get<std::string>();
    if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";
    return ip + ":" + v[1].dump();
  }
  return human(v);
}

// The token to send: given, or read from a cookie; empty when there is none (the server then answers 401).
std::string find_token(const std::string& token, const std::string& token_file, const std::string& data_dir) {
  namespace api = storjnet::api;
  if (!token.empty()) return token;
  if (!token_file.empty()) {
    auto t = api::read_token_file(token_file);
    if (!t) throw std::runtime_error("--token-file " + token_file + ": cannot read a token from it");
    return *t;
  }
  std::vector<std::string> dirs = {data_dir};
  if (data_dir.empty()) dirs = {"storjnet-data", "run/local-network", "/var/lib/storjnet"};
  for (auto& d : dirs)
    if (auto t = api::read_token_file(std::filesystem::path(d) / api::kCookieName)) return *t;
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"storjnet: talk to a storjnetd node through its JSON-RPC API", "storjnet"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("storjnet ") + storjnet::kVersionString + " (protocol " +
                                        std::to_string(storjnet::wire::kVersion) + ")");
  std::string api_url = env_or("STORJNET_API", "http://127.0.0.1:5000");
  std::string token = env_or("STORJNET_API_TOKEN", "");
  std::string token_file, data_dir = env_or("STORJNET_DATA_DIR", "");
  bool as_json = false;
  double timeout_s = 60;
  app.add_option("--api", api_url, "API URL (env STORJNET_API)")->capture_default_str();
  app.add_option("--token", token, "Bearer token (env STORJNET_API_TOKEN; visible in the process list)");
  app.add_option("--token-file", token_file, "Read the bearer token from this file");
  app.add_option("--data-dir", data_dir,
                 "storjnetd's data dir: its .cookie holds the token (env STORJNET_DATA_DIR; default: "
                 "storjnet-data, then run/local-network, then /var/lib/storjnet)");
  app.add_option("--timeout", timeout_s, "Seconds to wait for an answer")->capture_default_str();
  app.add_flag("--json", as_json, "Print the raw JSON result (for scripts)");

  // What to call, filled in by the chosen subcommand.
  std::string method;
  json params = json::array();
  std::string http_get;  // set for health and metrics
  std::function<int(const json&)> show;  // human output; returns the exit code
  std::function<int(storjnet::cli::Rpc&)> long_run;  // commands that make several calls (files, --follow)

  std::string s1, s2, s3;
  std::vector<std::string> rest;
  auto plain = [&](const char* name, const char* help, const char* m, std::function<int(const json&)> f) {
    auto* c = app.add_subcommand(name, help);
    c->callback([&, m, f] {
      method = m;
      show = f;
    });
    return c;
  };
  auto print_value = [](const json& r) {
    std::cout << human(r) << '\n';
    return 0;
  };
  auto print_bool = [](const char* yes, const char* no) {
    return [yes, no](const json& r) {
      bool ok = r.is_boolean() && r.get<bool>();
      std::cout << (ok ? yes : no) << '\n';
      return ok ? 0 : 1;
    };
  };
  auto print_addr = [](const json& r) {
    if (r.is_null()) {
      std::cout << "(not found)\n";
      return 1;
    }
    std::cout << addr(r) << '\n';
    return 0;
  };

  auto* call = app.add_subcommand("call", "Call any method: storjnet call METHOD [JSON ARGS...]");
  call->add_option("method", s1, "Method name, e.g. dht_get")->required();
  call->add_option("args", rest, "Positional params, each JSON (a bare word is a string)");
  call->callback([&] {
    method = s1;
    for (auto& a : rest) params.push_back(arg_json(a));
    show = [](const json& r) {
      std::cout << (r.is_string() ? r.get<std::string>() : r.dump(2, ' ', false, json::error_handler_t::replace)) << '\n';
      return 0;
    };
  });

  plain("id", "This node's id", "dht_id", print_value);
  plain("peers", "The routing table", "dht_peers", [](const json& r) {
    for (auto& p : r) std::cout << p[0].get<std::string>() << ' ' << addr(json::array({p[1], p[2]})) << '\n';
    std::cerr << r.size() << " peer" << (r.size() == 1 ? "" : "s") << '\n';
    return 0;
  });
  plain("stun", "Our address as a neighbour sees it", "dht_stun", print_addr);
  plain("find", "Address of a node by id", "dht_find", print_addr)->add_option("id", s1, "Node id (40 hex)")->required();
  auto* put = plain("put", "Store a value under a key", "dht_put", print_bool("stored", "not stored"));  // a failed put: an error (-32000) that says why
  put->add_option("key", s1)->required();
  put->add_option("value", s2, "JSON value (a bare word is a string)")->required();
  auto* get = plain("get", "Look a key up", "dht_get", [](const json& r) {
    if (r.is_null()) {
      std::cout << "(not found)\n";
      return 1;
    }
    std::cout << human(r) << '\n';
    return 0;
  });
  get->add_option("key", s1)->required();
  get->add_option("--owner", s3, "Only this publisher's value (node id, 40 hex)");
  plain("get-all", "Every owner's value under a key", "dht_get_all", [](const json& r) {
    for (auto& v : r)
      std::cout << v["owner"].get<std::string>() << " v" << v["version"].get<uint64_t>() << " x"
                << v["holders"].get<size_t>() << ' ' << human(v["value"]) << '\n';
    if (r.empty()) std::cout << "(not found)\n";
    return r.empty() ? 1 : 0;
  })->add_option("key", s1)->required();
  auto* send = plain("send", "Send a direct message", "message_send", print_bool("delivered", "not delivered"));
  send->add_option("id", s1, "Node id (40 hex)")->required();
  send->add_option("message", s2, "JSON message (a bare word is a string)")->required();
  bool follow = false;
  plain("messages", "Messages received since the last call", "message_list", [](const json& r) {
    for (auto& [from, msgs] : r.items())
      for (auto& m : msgs) std::cout << from << ": " << storjnet::api::Dispatcher::dump(m) << '\n';
    return 0;
  })->add_flag("-f,--follow", follow, "Keep printing messages as they arrive, until Ctrl-C");
  auto print_null = [](const char* text) {
    return [text](const json&) {
      std::cout << text << '\n';
      return 0;
    };
  };
  plain("subscribe", "Subscribe to a topic", "pubsub_subscribe", print_null("subscribed"))->add_option("topic", s1)->required();
  plain("unsubscribe", "Unsubscribe from a topic", "pubsub_unsubscribe", print_null("unsubscribed"))
      ->add_option("topic", s1)
      ->required();
  plain("subscriptions", "Topics subscribed to", "pubsub_subscriptions", [](const json& r) {
    for (auto& t : r) std::cout << human(t) << '\n';
    return 0;
  });
  auto* publish = plain("publish", "Publish an event on a topic", "pubsub_publish", print_null("published"));
  publish->add_option("topic", s1)->required();
  publish->add_option("event", s2, "JSON event (a bare word is a string)")->required();
  auto* events = plain("events", "Events received on a topic since the last call", "pubsub_events", [](const json& r) {
    for (auto& e : r) std::cout << storjnet::api::Dispatcher::dump(e) << '\n';
    return 0;
  });
  events->add_option("topic", s1)->required();
  events->add_flag("-f,--follow", follow,
                   "Keep printing events as they arrive (subscribing for the while if needed), until Ctrl-C");
  // File transfers: the daemons read and write the files; the CLI follows the transfer.
  storjnet::cli::SendFileOptions send_opts;
  auto* send_file = app.add_subcommand("send-file", "Send a file to a node (the daemon reads it), with progress");
  send_file->add_option("id", send_opts.node, "Node id (40 hex)")->required();
  send_file->add_option("file", send_opts.file, "The file, on the daemon's machine (relative: to this directory)")
      ->required();
  send_file->callback([&] {
    long_run = [&](storjnet::cli::Rpc& rpc) {
      send_opts.json_lines = as_json;
      return storjnet::cli::send_file(rpc, send_opts);
    };
  });
  storjnet::cli::ReceiveFileOptions recv_opts;
  auto* receive_file = app.add_subcommand(
      "receive-file", "Accept files sent to this node into a directory, until Ctrl-C (every stream opened to the "
                      "node meanwhile is taken as a file)");
  receive_file->add_option("--dir", recv_opts.dir, "Where files go, on the daemon's machine (default: this directory)");
  receive_file->add_flag("--once", recv_opts.once, "Stop after the first file (exit 1 if it failed)");
  receive_file->add_option("--max-size", recv_opts.max_size, "Refuse larger files (bytes, or with K, M, G, T)");
  receive_file->callback([&] {
    long_run = [&](storjnet::cli::Rpc& rpc) {
      recv_opts.json_lines = as_json;
      return storjnet::cli::receive_file(rpc, recv_opts);
    };
  });
  plain("streams", "Open streams", "stream_list", [](const json& r) {
    for (auto& [sid, info] : r.items()) std::cout << sid << " peer=" << human(info[0]) << " unread=" << info[1] << '\n';
    return 0;
  });
  plain("open", "Open a stream to a node", "stream_open", [](const json& r) {
    if (r.is_null()) {
      std::cout << "(cannot open)\n";
      return 1;
    }
    std::cout << human(r) << '\n';
    return 0;
  })->add_option("id", s1, "Node id (40 hex)")->required();
  plain("close", "Close a stream", "stream_close", print_bool("closed", "not open"))->add_option("stream", s1)->required();
  auto* read = plain("read", "Read buffered bytes (hex) from a stream", "stream_read", [](const json& r) {
    if (r.is_null()) {
      std::cout << "(closed)\n";
      return 1;
    }
    std::cout << human(r) << '\n';
    return 0;
  });
  read->add_option("stream", s1)->required();
  read->add_option("size", s3, "At most this many bytes");
  auto* write = plain("write", "Write hex bytes to a stream", "stream_write", [](const json& r) {
    if (r.is_null()) {
      std::cout << "(closed)\n";
      return 1;
    }
    std::cout << r.dump() << " bytes written\n";
    return 0;
  });
  write->add_option("stream", s1)->required();
  write->add_option("hexdata", s2)->required();
  app.add_subcommand("health", "GET /health")->callback([&] { http_get = "/health"; });
  app.add_subcommand("metrics", "GET /metrics (Prometheus text)")->callback([&] { http_get = "/metrics"; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A first word that is no command leaves no subcommand parsed and the word unused: name it (CLI11 alone
    // would only say that a subcommand is required).
    if (e.get_exit_code() != 0 && app.get_subcommands().empty() && !app.remaining().empty()) {
      std::cerr << "storjnet: unknown command \"" << app.remaining().front()
                << "\" (run storjnet --help for the commands)\n";
      return 2;
    }
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (follow && app.got_subcommand("events"))
    long_run = [&](storjnet::cli::Rpc& rpc) { return storjnet::cli::follow_events(rpc, s1); };
  if (follow && app.got_subcommand("messages"))
    long_run = [&](storjnet::cli::Rpc& rpc) { return storjnet::cli::follow_messages(rpc, as_json); };
  // Positional params of the short forms, in order.
  if (method != "" && app.got_subcommand("call") == false) {
    if (!s1.empty()) params.push_back(s1);
    if (app.got_subcommand("put") || app.got_subcommand("send") || app.got_subcommand("publish")) params.push_back(arg_json(s2));
    if (app.got_subcommand("write")) params.push_back(s2);
    if (app.got_subcommand("read") && !s3.empty()) params.push_back(arg_json(s3));
    if (app.got_subcommand("get") && !s3.empty()) params.push_back(s3);
  }

  auto url = storjnet::api::parse_api_url(api_url);
  if (!url) {
    std::cerr << "storjnet: bad --api URL \"" << api_url << "\" (expected http://host:port)\n";
    return 2;
  }
  try {
    token = find_token(token, token_file, data_dir);
    storjnet::api::HttpClient client(url->host, url->port, token,
                                     std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000)));
    if (!http_get.empty()) {
      auto res = client.get(http_get);
      std::cout << res.body;
      if (!res.body.empty() && res.body.back() != '\n') std::cout << '\n';
      if (res.status == 401) {
        std::cerr << "storjnet: unauthorized: no valid API token (--token-file, --data-dir or STORJNET_API_TOKEN)\n";
        return 2;
      }
      return res.status == 200 ? 0 : 2;
    }
    if (long_run) {
      try {
        storjnet::cli::Rpc rpc(client, url->target);
        return long_run(rpc);
      } catch (const storjnet::cli::RpcError& e) {
        std::cerr << "storjnet: " << e.what() << '\n';
        return 1;
      }
    }
    json req = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}};
    auto res = client.post(url->target, req.dump());
    if (res.status == 401) {
      std::cerr << "storjnet: unauthorized: no valid API token (--token-file, --data-dir or STORJNET_API_TOKEN)\n";
      return 2;
    }
    auto body = storjnet::api::parse_json(res.body);
    if (!body || !body->is_object()) {
      std::cerr << "storjnet: HTTP " << res.status << ": " << res.body << '\n';
      return 2;
    }
    if (auto err = body->find("error"); err != body->end()) {
      std::cerr << "storjnet: error " << (*err)["code"].dump() << ": " << (*err)["message"].get<std::string>() << '\n';
      return 1;
    }
    const json& result = (*body)["result"];
    if (as_json) {
      std::cout << storjnet::api::Dispatcher::dump(result) << '\n';
      return 0;
    }
    return show(result);
  } catch (const std::exception& e) {
    std::cerr << "storjnet: " << e.what() << '\n';
    return 2;
  }
}
