// Wire bodies of message_notify (docs/protocol.md, "6. Direct messages").
//
//   request  : msgpack [epoch: uint, batch: uint, [message: str, ...]]
//   response : msgpack uint: how many messages of the batch, from the first, the receiver queued
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storjnet/bytes.h"

namespace storjnet::messages {

constexpr size_t kMaxBatchMessages = 4096;        // messages in one message_notify
constexpr size_t kMaxBatchBytes = 100 * 1024;     // JSON bytes in one message_notify (engine max is 128 KiB)

struct Batch {
  uint64_t epoch = 0;  // sender instance: strictly increasing across restarts
  uint64_t batch = 0;  // strictly increasing per sender instance
  std::vector<std::string_view> messages;  // views into the decoded buffer
};

Bytes encode_batch(uint64_t epoch, uint64_t batch, const std::vector<const std::string*>& messages);
// nullopt when malformed or over the limits. The views point into `body`, which must outlive the result.
std::optional<Batch> decode_batch(ByteView body);

Bytes encode_ack(uint32_t accepted);
std::optional<uint32_t> decode_ack(ByteView body);

// True when `json` is one well-formed JSON value of at most kMaxMessageJson bytes.
bool valid_message(std::string_view json);

}  // namespace storjnet::messages
