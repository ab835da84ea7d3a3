// STUB: replaced by the streams implementation (issue 4).
#include "storjnet/streams.h"

namespace storjnet {
struct Streams::Impl {};
Streams::Streams(Engine&, Dht&, StreamsConfig) : impl_(std::make_unique<Impl>()) {}
Streams::~Streams() = default;
void Streams::open(const NodeId&, std::function<void(std::optional<StreamId>)> cb) { cb(std::nullopt); }
std::map<StreamId, StreamInfo> Streams::list() const { return {}; }
void Streams::write(const StreamId&, ByteView, std::function<void(std::optional<size_t>)> cb) { cb(std::nullopt); }
void Streams::on_writable(const StreamId&, std::function<void()> cb) { cb(); }
std::optional<Bytes> Streams::read(const StreamId&, std::optional<size_t>) { return std::nullopt; }
void Streams::close(const StreamId&, std::function<void(bool)> cb) { cb(false); }
}  // namespace storjnet
