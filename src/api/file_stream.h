// File streams (docs/api.md, "File transfer"): the application protocol that storjnetd's
// file_send / file_receive speak on top of a storjnet stream, sans-IO.
//
//   sender -> receiver:  header  "SJFT" | version u8 (1) | name length u16 BE (1..255) | name | size u64 BE
//                        content (size bytes)
//                        trailer BLAKE2b-256 (libsodium crypto_generichash, unkeyed) of header || content
//   receiver -> sender:  verdict status u8 (0 ok, 1 refused, 2 failed) | message length u16 BE (0..1024) | message
//
// FileStreamParser is the receiver's state machine: it is fed stream bytes in pieces of any size and says
// what each piece was (header, content, the verified end, or an error). It never allocates more than the
// bounded header and never accepts content beyond the declared size.
#pragma once
#include <sodium.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storjnet/bytes.h"

namespace storjnet::api::files {

constexpr std::array<uint8_t, 4> kMagic = {'S', 'J', 'F', 'T'};
constexpr uint8_t kVersion = 1;
constexpr size_t kMaxName = 255;
constexpr size_t kMaxSafeName = 240;  // safe_name's bound: room for numbered_name's " (n)"
constexpr size_t kMaxHeader = 4 + 1 + 2 + kMaxName + 8;
constexpr size_t kHashSize = 32;
constexpr size_t kMaxVerdictMessage = 1024;

struct FileHeader {
  std::string name;  // as sent: 1..255 bytes, no NUL (sanitize with safe_name before using it as a path)
  uint64_t size = 0;
};

// The header's bytes; name must be 1..kMaxName bytes without NUL.
Bytes encode_header(const FileHeader& h);

// Running BLAKE2b-256 of the header and content.
class TransferHash {
 public:
  TransferHash();
  void update(ByteView data);
  std::array<uint8_t, kHashSize> final();

 private:
  crypto_generichash_state state_;
};

class FileStreamParser {
 public:
  enum class Kind {
    kNeedMore,  // everything given was consumed; feed more
    kHeader,    // the header is complete: header() is valid (content follows)
    kContent,   // `data` is content, in order
    kDone,      // the trailer matched: the file is complete and intact
    kError,     // error() says why; nothing more is accepted
  };
  struct Step {
    Kind kind = Kind::kNeedMore;
    ByteView data;  // kContent: a piece of `in`
  };

  // Consumes a prefix of `in` (advancing it) and says what that prefix was. Call again with the rest until
  // `in` is empty or the parser reports kDone or kError. Bytes after the trailer are an error.
  Step next(ByteView& in);

  const FileHeader& header() const { return header_; }
  bool has_header() const { return state_ != State::kHeader; }
  uint64_t content_received() const { return content_; }
  const std::string& error() const { return error_; }
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }

 private:
  enum class State { kHeader, kContent, kTrailer, kDone, kFailed };
  Step fail(std::string why);
  // Parses header_buf_ when complete: 0 need more, 1 done, -1 error (set).
  int try_header();

  State state_ = State::kHeader;
  Bytes header_buf_;
  FileHeader header_;
  uint64_t content_ = 0;
  Bytes trailer_;
  TransferHash hash_;
  std::string error_;
};

// The receiver's answer.
struct Verdict {
  enum Status : uint8_t { kOk = 0, kRefused = 1, kFailed = 2 };
  Status status = kOk;
  std::string message;
};
Bytes encode_verdict(const Verdict& v);
// A verdict from the start of `in`: nullopt while incomplete; `error` set (and nullopt) when malformed.
std::optional<Verdict> decode_verdict(ByteView in, std::string* error);

// A name safe to create in a directory: the last path component of `sent` (after '/' or '\'), control
// characters dropped, never "", "." or ".." (those become "file"), at most kMaxSafeName bytes.
std::string safe_name(std::string_view sent);
// "name (n).ext" for n >= 1 (n = 0: name itself); the extension is the part after the last '.' not at the
// start.
std::string numbered_name(const std::string& name, unsigned n);

}  // namespace storjnet::api::files
