#include "api/file_transfers.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/once.h"
#include "api/file_stream.h"

namespace storjnet::api {

namespace fs = std::filesystem;
using files::FileStreamParser;
using files::Verdict;

struct FileTransfers::Transfer {
  enum class State { kConnecting, kSending, kConfirming, kReceiving, kDone, kFailed };
  uint64_t id = 0;
  bool outgoing = false;
  NodeId peer;
  std::string name, path;
  uint64_t size = 0, bytes = 0;
  State state = State::kConnecting;
  std::string error;
  Clock::time_point started, finished, last_progress;
  StreamId sid{};
  bool has_stream = false;
  int fd = -1;
  // Sender: the stream bytes still to write (header, trailer), what was read from the file, the acks.
  Bytes pending;
  size_t pending_off = 0;  // pending[pending_off..] is still to write
  uint64_t header_size = 0, content_read = 0, wire_written = 0, wire_acked = 0;
  bool trailer_queued = false, waiting_writable = false;
  files::TransferHash hash;
  Bytes verdict;
  // Receiver.
  FileStreamParser parser;
  std::string dir, tmp_path;
  std::optional<uint64_t> max_size;

  bool active() const { return state != State::kDone && state != State::kFailed; }
  ~Transfer() {
    if (fd >= 0) ::close(fd);
  }
};

namespace {

const char* state_name(FileTransfers::Transfer& t) {
  using S = FileTransfers::Transfer::State;
  switch (t.state) {
    case S::kConnecting: return "connecting";
    case S::kSending: return "sending";
    case S::kConfirming: return "confirming";
    case S::kReceiving: return "receiving";
    case S::kDone: return "done";
    case S::kFailed: return "failed";
  }
  return "?";
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

bool write_all(int fd, ByteView data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data = data.subspan(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

FileTransfers::FileTransfers(FileTransfersOptions options) : options_(options) {}

FileTransfers::~FileTransfers() {
  scope_.end();
  for (auto& [id, t] : transfers_)
    if (!t->tmp_path.empty()) ::unlink(t->tmp_path.c_str());
}

FileTransfers::Transfer* FileTransfers::find(uint64_t id) {
  auto it = transfers_.find(id);
  return it == transfers_.end() ? nullptr : it->second.get();
}

// ------------------------------------------------------------------ sending

void FileTransfers::send(Node& node, const NodeId& peer, const std::string& path,
                         std::function<void(std::optional<uint64_t>, std::string)> done) {
  if (!fs::path(path).is_absolute()) return done(std::nullopt, "path must be absolute: " + path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return done(std::nullopt, errno_text("cannot open " + path));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return done(std::nullopt, path + ": not a regular file");
  }
  auto t = std::make_unique<Transfer>();
  t->id = next_id_++;
  t->outgoing = true;
  t->peer = peer;
  t->path = path;
  t->name = files::safe_name(fs::path(path).filename().string());
  t->size = static_cast<uint64_t>(st.st_size);
  t->fd = fd;
  t->started = t->last_progress = Clock::now();
  t->pending = files::encode_header({t->name, t->size});
  t->header_size = t->pending.size();
  t->hash.update(t->pending);
  uint64_t id = t->id;
  transfers_[id] = std::move(t);
  Once<std::optional<uint64_t>, std::string> once(std::move(done), std::nullopt, "cancelled: the daemon is stopping");
  node.streams().open(peer, scope_.bind<std::optional<StreamId>>([this, &node, id, done = std::move(once)](std::optional<StreamId> sid) {
    Transfer* t = find(id);
    if (!t || !t->active()) {
      if (sid) node.streams().close(*sid, [](bool) {});
      return done(std::nullopt, "cancelled");
    }
    if (!sid) {
      fail(node, *t, "cannot open a stream to " + t->peer.hex() + " (unreachable?)");
      return done(std::nullopt, t->error);
    }
    t->sid = *sid;
    t->has_stream = true;
    t->state = Transfer::State::kSending;
    t->last_progress = Clock::now();
    done(id, {});
    watch_sender_reads(node, *t);
    if (Transfer* again = find(id); again && again->state == Transfer::State::kSending) pump(node, *again);
  }));
}

// Writes as much as the peer has room for; waits for room otherwise.
void FileTransfers::pump(Node& node, Transfer& t) {
  auto& streams = node.streams();
  uint64_t id = t.id;
  while (t.state == Transfer::State::kSending && !t.waiting_writable) {
    if (t.pending_off == t.pending.size()) {
      t.pending.clear();
      t.pending_off = 0;
      if (t.content_read < t.size) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(options_.read_chunk, t.size - t.content_read));
        t.pending.resize(want);
        ssize_t n;
        do n = ::read(t.fd, t.pending.data(), want); while (n < 0 && errno == EINTR);
        if (n < 0) return fail(node, t, errno_text("reading " + t.path));
        if (n == 0) return fail(node, t, t.path + " shrank while being sent");
        t.pending.resize(static_cast<size_t>(n));
        t.hash.update(t.pending);
        t.content_read += static_cast<uint64_t>(n);
      } else if (!t.trailer_queued) {
        auto h = t.hash.final();
        t.pending.assign(h.begin(), h.end());
        t.trailer_queued = true;
        ::close(t.fd);
        t.fd = -1;
      } else {
        return;  // everything is written; acks and then the verdict follow
      }
    }
    size_t room = streams.writable(t.sid);
    if (room == 0) {
      t.waiting_writable = true;
      streams.on_writable(t.sid, scope_.bind<>([this, &node, id] {
        Transfer* t = find(id);
        if (!t) return;
        t->waiting_writable = false;
        pump(node, *t);
      }));
      return;
    }
    size_t n = std::min(room, t.pending.size() - t.pending_off);
    ByteView chunk = ByteView(t.pending).subspan(t.pending_off, n);
    t.pending_off += n;
    t.wire_written += n;
    streams.write(t.sid, chunk, scope_.bind<std::optional<size_t>>([this, &node, id, n](std::optional<size_t> wrote) {
      Transfer* t = find(id);
      if (!t || !t->active()) return;
      if (!wrote) return fail(node, *t, "the stream closed after " + std::to_string(t->bytes) + " bytes");
      if (*wrote != n) return fail(node, *t, "short stream write");
      t->wire_acked += n;
      uint64_t content = t->wire_acked > t->header_size ? t->wire_acked - t->header_size : 0;
      t->bytes = std::min(content, t->size);
      t->last_progress = Clock::now();
      if (t->state == Transfer::State::kSending && t->trailer_queued && t->pending_off == t->pending.size() &&
          t->wire_acked == t->wire_written)
        t->state = Transfer::State::kConfirming;
    }));
  }
}

// The sender reads the receiver's verdict (early: a refusal; at the end: ok or failed).
void FileTransfers::watch_sender_reads(Node& node, Transfer& t) {
  uint64_t id = t.id;
  node.streams().on_readable(t.sid, scope_.bind<>([this, &node, id] {
    Transfer* t = find(id);
    if (!t || !t->active()) return;
    auto data = node.streams().read(t->sid, files::kMaxVerdictMessage + 3);
    if (!data) {
      t->has_stream = false;
      return fail(node, *t, "the receiver closed the stream without a verdict (is receive mode on there?)");
    }
    t->verdict.insert(t->verdict.end(), data->begin(), data->end());
    std::string err;
    auto v = files::decode_verdict(t->verdict, &err);
    if (!err.empty()) return fail(node, *t, "bad verdict from the receiver: " + err);
    if (!v) return watch_sender_reads(node, *t);
    if (v->status != Verdict::kOk)
      return fail(node, *t, std::string(v->status == Verdict::kRefused ? "refused" : "failed") + " by the receiver: " + v->message);
    if (!t->trailer_queued || t->pending_off != t->pending.size())
      return fail(node, *t, "the receiver confirmed a file it did not have whole");
    t->bytes = t->size;
    succeed(node, *t);
  }));
}

// ------------------------------------------------------------------ receiving

std::optional<std::string> FileTransfers::set_receive(Node& node, std::optional<FileReceiveMode> mode) {
  if (mode) {
    std::error_code ec;
    if (!fs::path(mode->dir).is_absolute()) return "dir must be absolute: " + mode->dir;
    if (!fs::is_directory(mode->dir, ec)) return "not a directory: " + mode->dir;
    if (::access(mode->dir.c_str(), W_OK | X_OK) != 0) return errno_text("cannot write to " + mode->dir);
  }
  receive_ = std::move(mode);
  if (receive_)
    node.streams().on_inbound(scope_.bind_each<const StreamId&, const NodeId&>(
        [this, &node](const StreamId& sid, const NodeId& peer) { on_inbound(node, sid, peer); }));
  else
    node.streams().on_inbound(nullptr);
  return std::nullopt;
}

void FileTransfers::on_inbound(Node& node, const StreamId& sid, const NodeId& peer) {
  if (!receive_) return;  // left to the stream API
  size_t active = std::count_if(transfers_.begin(), transfers_.end(),
                                [](auto& e) { return !e.second->outgoing && e.second->active(); });
  auto t = std::make_unique<Transfer>();
  t->id = next_id_++;
  t->peer = peer;
  t->sid = sid;
  t->has_stream = true;
  t->state = Transfer::State::kReceiving;
  t->dir = receive_->dir;
  t->max_size = receive_->max_size;
  t->started = t->last_progress = Clock::now();
  Transfer& ref = *t;
  transfers_[t->id] = std::move(t);
  if (active >= options_.max_incoming)
    return fail(node, ref, "busy: " + std::to_string(active) + " incoming transfers already", true);
  watch_receiver_reads(node, ref);
}

void FileTransfers::watch_receiver_reads(Node& node, Transfer& t) {
  uint64_t id = t.id;
  node.streams().on_readable(t.sid, scope_.bind<>([this, &node, id] {
    Transfer* t = find(id);
    if (!t || !t->active()) return;
    auto data = node.streams().read(t->sid, std::nullopt);
    if (!data) {
      t->has_stream = false;
      return fail(node, *t,
                  t->parser.has_header() ? "the sender closed the stream after " + std::to_string(t->bytes) + " of " +
                                               std::to_string(t->size) + " bytes"
                                         : "the sender closed the stream before the header");
    }
    receive_bytes(node, *t, *data);
    if (Transfer* again = find(id); again && again->state == Transfer::State::kReceiving) watch_receiver_reads(node, *again);
  }));
}

void FileTransfers::receive_bytes(Node& node, Transfer& t, ByteView in) {
  if (!in.empty()) t.last_progress = Clock::now();
  while (!in.empty() && t.state == Transfer::State::kReceiving) {
    auto step = t.parser.next(in);
    switch (step.kind) {
      case FileStreamParser::Kind::kNeedMore: break;
      case FileStreamParser::Kind::kHeader:
        if (!start_file(node, t)) return;
        break;
      case FileStreamParser::Kind::kContent:
        if (!write_all(t.fd, step.data)) return fail(node, t, errno_text("writing " + t.tmp_path));
        t.bytes += step.data.size();
        break;
      case FileStreamParser::Kind::kDone: return finish_file(node, t);
      case FileStreamParser::Kind::kError: return fail(node, t, t.parser.error(), !t.parser.has_header());
    }
  }
}

bool FileTransfers::start_file(Node& node, Transfer& t) {
  const auto& h = t.parser.header();
  t.name = files::safe_name(h.name);
  t.size = h.size;
  if (t.max_size && h.size > *t.max_size) {
    fail(node, t, "too large: " + std::to_string(h.size) + " bytes, at most " + std::to_string(*t.max_size), true);
    return false;
  }
  struct statvfs vfs {};
  if (::statvfs(t.dir.c_str(), &vfs) != 0) {
    fail(node, t, errno_text("cannot stat " + t.dir), true);
    return false;
  }
  uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (h.size + options_.reserve_free > free_bytes) {
    fail(node, t, "not enough free space: " + std::to_string(h.size) + " bytes, " + std::to_string(free_bytes) +
                      " free in the receive directory", true);
    return false;
  }
  t.tmp_path = (fs::path(t.dir) / (".storjnet-" + std::to_string(t.id) + "-" + t.name + ".part")).string();
  t.fd = ::open(t.tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (t.fd < 0) {
    std::string why = errno_text("cannot create " + t.tmp_path);
    t.tmp_path.clear();
    fail(node, t, why, true);
    return false;
  }
  return true;
}

void FileTransfers::finish_file(Node& node, Transfer& t) {
  if (t.fd < 0 && !start_file(node, t)) return;
  if (::fsync(t.fd) != 0) return fail(node, t, errno_text("fsync " + t.tmp_path));
  ::close(t.fd);
  t.fd = -1;
  for (unsigned n = 0; n < 1000; ++n) {
    std::string final_path = (fs::path(t.dir) / files::numbered_name(t.name, n)).string();
    if (::renameat2(AT_FDCWD, t.tmp_path.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) == 0) {
      t.tmp_path.clear();
      t.path = final_path;
      t.name = fs::path(final_path).filename().string();
      return succeed(node, t);
    }
    if (errno != EEXIST) return fail(node, t, errno_text("cannot rename to " + final_path));
  }
  fail(node, t, "no free name for " + t.name + " in " + t.dir);
}

// ------------------------------------------------------------------ endings

void FileTransfers::succeed(Node& node, Transfer& t) {
  t.state = Transfer::State::kDone;
  t.finished = Clock::now();
  if (!t.has_stream) return;
  t.has_stream = false;
  StreamId sid = t.sid;
  if (t.outgoing) return node.streams().close(sid, [](bool) {});
  node.streams().write(sid, files::encode_verdict({Verdict::kOk, {}}), [&node, sid](std::optional<size_t>) {
    node.streams().close(sid, [](bool) {});
  });
}

void FileTransfers::fail(Node& node, Transfer& t, std::string why, bool refuse) {
  if (!t.active()) return;
  t.state = Transfer::State::kFailed;
  t.error = std::move(why);
  t.finished = Clock::now();
  if (t.fd >= 0) ::close(t.fd);
  t.fd = -1;
  if (!t.tmp_path.empty()) ::unlink(t.tmp_path.c_str());
  t.tmp_path.clear();
  if (!t.has_stream) return;
  t.has_stream = false;
  StreamId sid = t.sid;
  if (t.outgoing) return node.streams().close(sid, [](bool) {});
  // Tell the sender why, then close.
  node.streams().write(sid, files::encode_verdict({refuse ? Verdict::kRefused : Verdict::kFailed, t.error}),
                       [&node, sid](std::optional<size_t>) { node.streams().close(sid, [](bool) {}); });
}

bool FileTransfers::cancel(Node& node, uint64_t id) {
  Transfer* t = find(id);
  if (!t || !t->active()) return false;
  fail(node, *t, "cancelled");
  return true;
}

void FileTransfers::tick(Node& node) {
  auto now = Clock::now();
  for (auto& [id, t] : transfers_)
    if (t->active() && t->state != Transfer::State::kConnecting && now - t->last_progress > options_.stall_timeout)
      fail(node, *t, "no progress for " + std::to_string(options_.stall_timeout.count()) + " s" +
                         (t->outgoing ? " (is receive mode on at the receiver: `storjnet receive-file`?)" : ""));
  prune();
}

void FileTransfers::prune() {
  size_t finished = std::count_if(transfers_.begin(), transfers_.end(), [](auto& e) { return !e.second->active(); });
  for (auto it = transfers_.begin(); it != transfers_.end() && finished > options_.keep_finished;) {
    if (!it->second->active()) {
      it = transfers_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
}

std::vector<FileTransferInfo> FileTransfers::list(Node& node) {
  tick(node);
  std::vector<FileTransferInfo> out;
  auto now = Clock::now();
  for (auto& [id, t] : transfers_) {
    FileTransferInfo i;
    i.id = id;
    i.outgoing = t->outgoing;
    i.peer = t->peer;
    i.name = t->name;
    i.path = t->path;
    i.size = t->size;
    i.bytes = t->bytes;
    i.state = state_name(*t);
    i.error = t->error;
    i.elapsed = std::chrono::duration<double>((t->active() ? now : t->finished) - t->started).count();
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace storjnet::api
