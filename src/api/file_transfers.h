// FileTransfers: storjnetd's file transfers (docs/api.md, "File transfer"): sends a file from the daemon's
// disk over a stream, and, while receive mode is on, takes every stream a peer opens to this node as an
// incoming file (api/file_stream.h), written to the receive directory under a temporary name, hash-checked,
// then renamed without overwriting anything.
//
// Every method runs on the node's thread (inside a NodeRunner), and so do its completions. It reads and
// writes files with blocking calls there, a chunk (at most a stream's receive window) at a time. Progress
// and stalls are judged on a steady clock when tick() or list() runs.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/callback_scope.h"
#include "storjnet/node.h"

namespace storjnet::api {

struct FileTransfersOptions {
  size_t max_incoming = 8;                        // incoming transfers at once; more are refused
  size_t keep_finished = 64;                      // finished transfers listed (the oldest are forgotten)
  std::chrono::seconds stall_timeout{30};         // an active transfer with no progress for this long fails
  size_t read_chunk = 1024 * 1024;                // bytes read from the file per stream write
  uint64_t reserve_free = 16ull * 1024 * 1024;   // free space a received file must leave on its disk
};

struct FileTransferInfo {
  uint64_t id = 0;
  bool outgoing = false;
  NodeId peer;
  std::string name;      // the file's name (incoming: as sanitized for the disk; "" before the header)
  std::string path;      // outgoing: the source; incoming: where it was saved once done
  uint64_t size = 0;     // content bytes (incoming: 0 before the header)
  uint64_t bytes = 0;    // content bytes the peer holds (outgoing) or written to disk (incoming)
  std::string state;     // connecting, sending, confirming, receiving, done, failed
  std::string error;     // failed: why
  double elapsed = 0;    // seconds since it started (until it finished)
};

struct FileReceiveMode {
  std::string dir;                  // absolute
  std::optional<uint64_t> max_size; // largest file accepted (besides free space)
};

class FileTransfers {
 public:
  using Clock = std::chrono::steady_clock;
  explicit FileTransfers(FileTransfersOptions options = {});
  ~FileTransfers();
  FileTransfers(const FileTransfers&) = delete;
  FileTransfers& operator=(const FileTransfers&) = delete;

  // Starts sending the regular file at absolute `path` to `peer`; done(id) once the stream is open, or
  // done(nullopt, why) when the file cannot be read or the node cannot be reached. done runs exactly once:
  // before send returns when the file cannot be opened; done(nullopt, "cancelled...") from the destructor when
  // FileTransfers is destroyed before the stream opened.
  void send(Node& node, const NodeId& peer, const std::string& path,
            std::function<void(std::optional<uint64_t>, std::string)> done);
  // Receive mode: on (into `dir`, which must be an existing writable directory) or off (nullopt). An error
  // message when the directory is unusable (the mode is then unchanged).
  std::optional<std::string> set_receive(Node& node, std::optional<FileReceiveMode> mode);
  const std::optional<FileReceiveMode>& receive_mode() const { return receive_; }
  // Every active transfer and the last finished ones, oldest first.
  std::vector<FileTransferInfo> list(Node& node);
  // Fails an active transfer ("cancelled"); false when the id is unknown or already finished.
  bool cancel(Node& node, uint64_t id);
  // Fails transfers that made no progress for stall_timeout; forgets the oldest finished ones beyond
  // keep_finished. Call it from the top (not from a stream callback), about once a second.
  void tick(Node& node);

  struct Transfer;

 private:
  void on_inbound(Node& node, const StreamId& sid, const NodeId& peer);
  void pump(Node& node, Transfer& t);
  void watch_sender_reads(Node& node, Transfer& t);
  void watch_receiver_reads(Node& node, Transfer& t);
  void receive_bytes(Node& node, Transfer& t, ByteView data);
  bool start_file(Node& node, Transfer& t);
  void finish_file(Node& node, Transfer& t);
  void fail(Node& node, Transfer& t, std::string why, bool refuse = false);
  void succeed(Node& node, Transfer& t);
  void prune();
  Transfer* find(uint64_t id);

  FileTransfersOptions options_;
  std::optional<FileReceiveMode> receive_;
  std::map<uint64_t, std::unique_ptr<Transfer>> transfers_;
  uint64_t next_id_ = 1;
  // The callbacks handed to the node's streams (ended first when it is destroyed).
  CallbackScope scope_;
};

}  // namespace storjnet::api
