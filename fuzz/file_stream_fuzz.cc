// file_stream_fuzz: arbitrary bytes against the receiver's file stream parser (api/file_stream.h), fed in
// pieces whose size the first input byte picks, and against the verdict decoder.
//
// Invariants: no crash or sanitizer report; a header only with a 1..255-byte name without NUL; content
// handed out in order and never beyond the declared size; kDone only when the trailer is the BLAKE2b-256 of
// the header and content seen; nothing accepted after an error; a safe name is never a path.
#include "fuzz_check.h"

#include <algorithm>

#include "api/file_stream.h"

using namespace storjnet;
using namespace storjnet::api::files;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 64;
  ByteView all(data + 1, size - 1);
  std::string err;
  if (auto v = decode_verdict(all, &err)) FUZZ_CHECK(v->message.size() <= kMaxVerdictMessage);

  FileStreamParser p;
  uint64_t content = 0;
  bool header = false, done = false, failed = false;
  TransferHash check;
  size_t consumed_at_done = 0;
  for (size_t at = 0; at < all.size() && !done && !failed; at += piece) {
    ByteView in = all.subspan(at, std::min(piece, all.size() - at));
    for (;;) {
      auto s = p.next(in);
      if (s.kind == FileStreamParser::Kind::kNeedMore) {
        FUZZ_CHECK(in.empty());
        break;
      }
      if (s.kind == FileStreamParser::Kind::kHeader) {
        FUZZ_CHECK(!header);
        header = true;
        const auto& h = p.header();
        FUZZ_CHECK(!h.name.empty() && h.name.size() <= kMaxName && h.name.find('\0') == std::string::npos);
        check.update(encode_header(h));
        auto safe = safe_name(h.name);
        FUZZ_CHECK(!safe.empty() && safe != "." && safe != ".." && safe.find('/') == std::string::npos &&
                   safe.size() <= kMaxSafeName);
      } else if (s.kind == FileStreamParser::Kind::kContent) {
        FUZZ_CHECK(header);
        content += s.data.size();
        FUZZ_CHECK(content <= p.header().size);
        check.update(s.data);
      } else if (s.kind == FileStreamParser::Kind::kDone) {
        FUZZ_CHECK(header && content == p.header().size);
        done = true;
        consumed_at_done = at + std::min(piece, all.size() - at) - in.size();
        break;
      } else {
        FUZZ_CHECK(!p.error().empty());
        failed = true;
        break;
      }
    }
  }
  if (done) {
    // The kHashSize bytes just consumed were the trailer, and they are the hash of what came before.
    auto want = check.final();
    FUZZ_CHECK(p.done() && consumed_at_done >= kHashSize);
    FUZZ_CHECK(std::equal(want.begin(), want.end(), all.begin() + static_cast<long>(consumed_at_done - kHashSize)));
  }
  if (failed) {
    ByteView more = all;
    FUZZ_CHECK(p.next(more).kind == FileStreamParser::Kind::kError);  // stays failed
  }
  return 0;
}
