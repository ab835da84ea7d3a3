// File transfer (docs/api.md, "File transfer"): the file stream parser against honest and hostile input, and
// storjnetd's FileTransfers between simulated nodes (a file arrives bit-exact; a bad hash, an oversized
// file and a stream that is no file leave nothing behind and tell the sender why).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "api/file_stream.h"
#include "api/file_transfers.h"
#include "storjnet/simulator.h"
#include "temp_dir.h"

using namespace storjnet;
using namespace storjnet::api;
using files::FileStreamParser;

namespace {

namespace fs = std::filesystem;

Bytes pattern(size_t n, uint32_t seed) {
  Bytes b(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& c : b) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<uint8_t>(x);
  }
  return b;
}

// A whole file stream: header, content, trailer (corrupted when asked).
Bytes file_stream(const std::string& name, const Bytes& content, bool bad_hash = false) {
  Bytes out = files::encode_header({name, content.size()});
  files::TransferHash h;
  h.update(out);
  h.update(content);
  out.insert(out.end(), content.begin(), content.end());
  auto d = h.final();
  if (bad_hash) d[5] ^= 1;
  out.insert(out.end(), d.begin(), d.end());
  return out;
}

struct Parsed {
  bool header = false, done = false, error = false;
  Bytes content;
  std::string why;
};

// Feeds `wire` in pieces of `piece` bytes.
Parsed parse(const Bytes& wire, size_t piece) {
  FileStreamParser p;
  Parsed out;
  for (size_t at = 0; at < wire.size() && !out.done && !out.error; at += piece) {
    ByteView in = ByteView(wire).subspan(at, std::min(piece, wire.size() - at));
    for (;;) {
      auto s = p.next(in);
      if (s.kind == FileStreamParser::Kind::kHeader) out.header = true;
      if (s.kind == FileStreamParser::Kind::kContent) out.content.insert(out.content.end(), s.data.begin(), s.data.end());
      if (s.kind == FileStreamParser::Kind::kDone) out.done = true;
      if (s.kind == FileStreamParser::Kind::kError) {
        out.error = true;
        out.why = p.error();
      }
      if (s.kind == FileStreamParser::Kind::kNeedMore || out.done || out.error) break;
    }
  }
  return out;
}

TEST(FileStream, RoundTripInAnyPieces) {
  Bytes content = pattern(10000, 1);
  Bytes wire = file_stream("report.pdf", content);
  for (size_t piece : {size_t(1), size_t(3), size_t(7), size_t(64), size_t(4096), wire.size()}) {
    auto r = parse(wire, piece);
    EXPECT_TRUE(r.header && r.done && !r.error) << piece << ": " << r.why;
    EXPECT_EQ(r.content, content) << piece;
  }
  auto empty = parse(file_stream("empty", {}), 1);
  EXPECT_TRUE(empty.done && empty.content.empty()) << empty.why;
}

TEST(FileStream, HashMismatchIsAnError) {
  auto r = parse(file_stream("x", pattern(5000, 2), true), 100);
  EXPECT_TRUE(r.error);
  EXPECT_FALSE(r.done);
  EXPECT_NE(r.why.find("hash mismatch"), std::string::npos) << r.why;
}

TEST(FileStream, HostileHeadersAreRefusedEarly) {
  auto expect_error = [](Bytes wire, const std::string& want) {
    auto r = parse(wire, 1);
    EXPECT_TRUE(r.error && !r.header) << want;
    EXPECT_NE(r.why.find(want), std::string::npos) << r.why;
  };
  std::string http = "GET / HTTP/1.1\r\n";
  expect_error(Bytes(http.begin(), http.end()), "bad magic");
  Bytes wire = file_stream("a", pattern(10, 3));
  wire[4] = 2;
  expect_error(wire, "version");
  // Name length 0 and 256, judged from the length alone (no need to wait for the name).
  expect_error(Bytes{'S', 'J', 'F', 'T', 1, 0, 0}, "name length");
  expect_error(Bytes{'S', 'J', 'F', 'T', 1, 1, 0}, "name length");
  Bytes nul = files::encode_header({std::string("a\0b", 3), 1});
  expect_error(nul, "NUL");
  // Bytes after the trailer.
  Bytes extra = file_stream("a", pattern(10, 4));
  extra.push_back(0);
  auto r = parse(extra, extra.size());
  EXPECT_TRUE(r.error);
  EXPECT_NE(r.why.find("after the trailer"), std::string::npos);
  // Content beyond the declared size is never handed out as content.
  auto big = parse(extra, 1);
  EXPECT_EQ(big.content.size(), 10u);
}

TEST(FileStream, Verdicts) {
  std::string err;
  auto v = files::decode_verdict(files::encode_verdict({files::Verdict::kFailed, "hash mismatch"}), &err);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->status, files::Verdict::kFailed);
  EXPECT_EQ(v->message, "hash mismatch");
  Bytes partial = files::encode_verdict({files::Verdict::kOk, "fine"});
  partial.pop_back();
  EXPECT_FALSE(files::decode_verdict(partial, &err));
  EXPECT_TRUE(err.empty());
  EXPECT_FALSE(files::decode_verdict(Bytes{7, 0, 0}, &err));
  EXPECT_FALSE(err.empty());
}

TEST(FileStream, SafeNames) {
  EXPECT_EQ(files::safe_name("../../etc/passwd"), "passwd");
  EXPECT_EQ(files::safe_name("C:\\Windows\\evil.dll"), "evil.dll");
  EXPECT_EQ(files::safe_name(".."), "file");
  EXPECT_EQ(files::safe_name("dir/.."), "file");
  EXPECT_EQ(files::safe_name("a/"), "file");
  EXPECT_EQ(files::safe_name("be\x01l\nl\x7f"), "bell");
  EXPECT_EQ(files::safe_name(std::string(255, 'x')).size(), files::kMaxSafeName);
  EXPECT_EQ(files::numbered_name("report.pdf", 0), "report.pdf");
  EXPECT_EQ(files::numbered_name("report.pdf", 2), "report (2).pdf");
  EXPECT_EQ(files::numbered_name(".bashrc", 1), ".bashrc (1)");
  EXPECT_EQ(files::numbered_name("README", 1), "README (1)");
}

// Two simulated nodes, node 1 receiving into a temp dir.
struct SimFiles : ::testing::Test {
  Simulator sim;
  FileTransfers sender, receiver;
  fs::path dir = test::temp_dir("file-transfer");
  fs::path src_dir = test::temp_dir("file-transfer-src");

  void SetUp() override {
    sim.add_node();
    sim.add_node();
    sim.node(0).streams().remember(sim.contact(1));
    sim.node(1).streams().remember(sim.contact(0));
  }
  void TearDown() override {
    fs::remove_all(dir);
    fs::remove_all(src_dir);
  }
  fs::path write_source(const std::string& name, const Bytes& content) {
    auto p = src_dir / name;
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(content.data()), static_cast<long>(content.size()));
    return p;
  }
  FileTransferInfo last(FileTransfers& f, size_t node) {
    auto l = f.list(sim.node(node));
    EXPECT_FALSE(l.empty());
    return l.empty() ? FileTransferInfo{} : l.back();
  }
  bool finished(FileTransfers& f, size_t node) {
    auto l = f.list(sim.node(node));
    return !l.empty() && (l.back().state == "done" || l.back().state == "failed");
  }
  // Sends `path` and runs until both ends have finished.
  void send(const fs::path& path) {
    std::optional<uint64_t> id;
    std::string why;
    bool opened = false;
    sender.send(sim.node(0), sim.contact(1).id, path.string(), [&](std::optional<uint64_t> i, std::string w) {
      id = i, why = w, opened = true;
    });
    ASSERT_TRUE(sim.run_until([&] { return opened; }, 30s));
    ASSERT_TRUE(id) << why;
    ASSERT_TRUE(sim.run_until([&] { return finished(sender, 0) && finished(receiver, 1); }, 600s));
  }
  Bytes read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
  }
  std::vector<std::string> dir_names() {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(SimFiles, ArrivesBitExactAndNeverOverwrites) {
  ASSERT_FALSE(receiver.set_receive(sim.node(1), FileReceiveMode{dir.string(), std::nullopt}));
  Bytes content = pattern(3 * 1024 * 1024 + 17, 5);
  auto src = write_source("data.bin", content);
  send(src);
  auto s = last(sender, 0), r = last(receiver, 1);
  EXPECT_EQ(s.state, "done") << s.error;
  EXPECT_EQ(r.state, "done") << r.error;
  EXPECT_EQ(s.bytes, content.size());
  EXPECT_EQ(r.bytes, content.size());
  EXPECT_EQ(r.name, "data.bin");
  EXPECT_EQ(read_file(dir / "data.bin"), content);
  // The same name again: a numbered copy, the first one untouched.
  Bytes other = pattern(1000, 6);
  send(write_source("data.bin", other));
  EXPECT_EQ(last(receiver, 1).path, (dir / "data (1).bin").string());
  EXPECT_EQ(read_file(dir / "data.bin"), content);
  EXPECT_EQ(read_file(dir / "data (1).bin"), other);
  EXPECT_EQ(dir_names(), (std::vector<std::string>{"data (1).bin", "data.bin"}));
}

TEST_F(SimFiles, TooLargeIsRefusedAndTheSenderIsTold) {
  ASSERT_FALSE(receiver.set_receive(sim.node(1), FileReceiveMode{dir.string(), uint64_t{1000}}));
  send(write_source("big.bin", pattern(5000, 7)));
  auto s = last(sender, 0);
  EXPECT_EQ(s.state, "failed");
  EXPECT_NE(s.error.find("refused by the receiver: too large"), std::string::npos) << s.error;
  EXPECT_EQ(last(receiver, 1).state, "failed");
  EXPECT_TRUE(dir_names().empty());
}

// A hostile sender writes the stream itself: the right header and content, a wrong hash.
TEST_F(SimFiles, HashMismatchDeletesThePartAndTellsTheSender) {
  ASSERT_FALSE(receiver.set_receive(sim.node(1), FileReceiveMode{dir.string(), std::nullopt}));
  std::optional<StreamId> sid;
  sim.node(0).streams().open(sim.contact(1).id, [&](std::optional<StreamId> s) { sid = s; });
  ASSERT_TRUE(sim.run_until([&] { return sid.has_value(); }, 30s));
  Bytes wire = file_stream("evil.bin", pattern(200000, 8), true);
  size_t at = 0;
  std::function<void()> pump = [&] {
    while (at < wire.size()) {
      size_t n = std::min(sim.node(0).streams().writable(*sid), wire.size() - at);
      if (n == 0) return sim.node(0).streams().on_writable(*sid, pump);
      sim.node(0).streams().write(*sid, ByteView(wire).subspan(at, n), [](std::optional<size_t>) {});
      at += n;
    }
  };
  pump();
  Bytes answer;
  bool closed = false;
  std::function<void()> reader = [&] {
    auto d = sim.node(0).streams().read(*sid, std::nullopt);
    if (!d) {
      closed = true;
      return;
    }
    answer.insert(answer.end(), d->begin(), d->end());
    sim.node(0).streams().on_readable(*sid, reader);
  };
  sim.node(0).streams().on_readable(*sid, reader);
  ASSERT_TRUE(sim.run_until([&] { return closed; }, 120s));
  auto r = last(receiver, 1);
  EXPECT_EQ(r.state, "failed");
  EXPECT_NE(r.error.find("hash mismatch"), std::string::npos) << r.error;
  EXPECT_TRUE(dir_names().empty());  // no file, no .part
  std::string err;
  auto v = files::decode_verdict(answer, &err);
  ASSERT_TRUE(v) << err;
  EXPECT_EQ(v->status, files::Verdict::kFailed);
  EXPECT_NE(v->message.find("hash mismatch"), std::string::npos);
}

TEST_F(SimFiles, StreamsAreLeftAloneWhileReceiveModeIsOff) {
  std::optional<StreamId> sid;
  sim.node(0).streams().open(sim.contact(1).id, [&](std::optional<StreamId> s) { sid = s; });
  ASSERT_TRUE(sim.run_until([&] { return sid.has_value(); }, 30s));
  std::optional<size_t> wrote;
  sim.node(0).streams().write(*sid, as_bytes("plain bytes"), [&](std::optional<size_t> n) { wrote = n; });
  ASSERT_TRUE(sim.run_until([&] { return wrote.has_value(); }, 30s));
  EXPECT_TRUE(receiver.list(sim.node(1)).empty());
  auto got = sim.node(1).streams().read(*sid, std::nullopt);
  ASSERT_TRUE(got);
  EXPECT_EQ(std::string(got->begin(), got->end()), "plain bytes");
}

TEST_F(SimFiles, ReceiveModeNeedsAWritableDirectory) {
  EXPECT_TRUE(receiver.set_receive(sim.node(1), FileReceiveMode{"relative/dir", std::nullopt}));
  EXPECT_TRUE(receiver.set_receive(sim.node(1), FileReceiveMode{(dir / "missing").string(), std::nullopt}));
  EXPECT_FALSE(receiver.receive_mode());
  std::optional<std::string> why;
  sender.send(sim.node(0), sim.contact(1).id, (src_dir / "missing").string(),
              [&](std::optional<uint64_t> id, std::string w) {
                EXPECT_FALSE(id);
                why = w;
              });
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("cannot open"), std::string::npos) << *why;
}

}  // namespace

// FileTransfers destroyed (storjnetd stopping) while a stream to the receiver is opening: done runs once, with
// "cancelled", and the stream's later answer finds nothing of it (ASan: no use after free).
TEST_F(SimFiles, DestroyedBeforeTheStreamOpensAnswersCancelledOnce) {
  ASSERT_FALSE(receiver.set_receive(sim.node(1), FileReceiveMode{dir.string(), std::nullopt}));
  auto src = write_source("data.bin", pattern(1000, 7));
  auto early = std::make_unique<FileTransfers>();
  int calls = 0;
  std::optional<uint64_t> id = 1;
  std::string why;
  early->send(sim.node(0), sim.contact(1).id, src.string(), [&](std::optional<uint64_t> i, std::string w) {
    ++calls, id = i, why = w;
  });
  EXPECT_EQ(calls, 0);
  early.reset();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(id);
  EXPECT_NE(why.find("cancelled"), std::string::npos);
  sim.run_for(30s);
  EXPECT_EQ(calls, 1);
}
