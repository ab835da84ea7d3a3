#include "real/tcp_conns.h"

#include "real/asio_endpoint.h"

namespace storjnet::real {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

bool TcpConns::listen(const Endpoint& local, boost::system::error_code& ec) {
  local_ = local;
  auto ep = to_asio(local);
  tcp::endpoint tep(ep.address(), ep.port());
  acceptor_ = std::make_unique<tcp::acceptor>(io_);
  acceptor_->open(tep.protocol(), ec);
  if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_->bind(tep, ec);
  if (!ec) acceptor_->listen(64, ec);
  if (ec) {
    acceptor_.reset();
    return false;
  }
  accept();
  return true;
}

void TcpConns::accept() {
  auto c = std::make_shared<Conn>(next_++, io_);
  acceptor_->async_accept(c->sock, [this, c](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted || !acceptor_ || !acceptor_->is_open()) return;
    if (!ec) {
      if (!listener_) {
        boost::system::error_code e2;
        c->sock.close(e2);
      } else {
        start(c);
        if (listener_ && !c->closed) listener_->on_conn_open(c->id, true, remote_of(*c));
      }
    }
    accept();
  });
}

Endpoint TcpConns::remote_of(Conn& c) {
  boost::system::error_code ec;
  auto ep = c.sock.remote_endpoint(ec);
  return ec ? Endpoint{} : from_asio(asio::ip::udp::endpoint(ep.address(), ep.port()));
}

void TcpConns::start(const std::shared_ptr<Conn>& c) {
  boost::system::error_code ec;
  c->sock.set_option(tcp::no_delay(true), ec);
  c->sock.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
  c->sock.set_option(asio::socket_base::send_buffer_size(4 << 20), ec);
  c->open = true;
  c->rbuf.resize(256 * 1024);
  conns_[c->id] = c;
  read(c);
}

uint64_t TcpConns::connect(const Endpoint& to) {
  if (!acceptor_ || !to.valid() || (to.family == Endpoint::Family::kV6) != (local_.family == Endpoint::Family::kV6))
    return 0;
  auto c = std::make_shared<Conn>(next_++, io_);
  auto ep = to_asio(to);
  conns_[c->id] = c;
  c->sock.async_connect(tcp::endpoint(ep.address(), ep.port()), [this, c](const boost::system::error_code& ec) {
    if (c->closed) return;
    if (ec) return fail(c);
    start(c);
    if (listener_ && !c->closed) listener_->on_conn_open(c->id, false, remote_of(*c));
    if (!c->closed) flush_out(c);
  });
  return c->id;
}

void TcpConns::read(const std::shared_ptr<Conn>& c) {
  c->sock.async_read_some(asio::buffer(c->rbuf), [this, c](const boost::system::error_code& ec, size_t n) {
    if (c->closed) return;
    if (ec) return fail(c);
    if (listener_) listener_->on_conn_data(c->id, {c->rbuf.data(), n});
    if (c->closed) return;
    // Our answers to this peer pile up (it does not read): stop reading it until they drain.
    if (c->out.queued() > high_water_) {
      c->paused = true;
      ++paused_reads_;
      return;
    }
    read(c);
  });
}

size_t TcpConns::queued(uint64_t id) const {
  auto it = conns_.find(id);
  return it == conns_.end() ? 0 : it->second->out.queued();
}

void TcpConns::send(uint64_t id, Bytes bytes) {
  if (auto* c = sendable(id, bytes.size())) (*c)->out.push(std::move(bytes)), cork(*c);
}

void TcpConns::send_kept(uint64_t id, ByteView bytes, std::shared_ptr<const void> keep) {
  if (auto* c = sendable(id, bytes.size())) (*c)->out.push_kept(bytes, std::move(keep)), cork(*c);
}

std::shared_ptr<TcpConns::Conn>* TcpConns::sendable(uint64_t id, size_t n) {
  auto it = conns_.find(id);
  return it == conns_.end() || it->second->closed || n == 0 ? nullptr : &it->second;
}

// Cork: everything queued while the current handler runs goes out in one gathered write after it.
void TcpConns::cork(const std::shared_ptr<Conn>& c) {
  if (c->open && !c->writing && !c->flush_posted) {
    c->flush_posted = true;
    asio::post(io_, [this, c] {
      c->flush_posted = false;
      if (!c->closed) flush_out(c);
    });
  }
}

void TcpConns::flush_out(const std::shared_ptr<Conn>& c) {
  if (c->writing || c->out.empty()) return;
  c->writing = true;
  c->wbufs.clear();
  c->wcount = c->out.first(64, [&](ByteView b) { c->wbufs.emplace_back(b.data(), b.size()); });
  // Asio's stock completion conditions cap each write_some at 64 KiB (four syscalls per record); this one
  // lets the kernel take all it can in one gathered write.
  auto whole = [](const boost::system::error_code& ec, size_t) -> size_t { return ec ? 0 : (64u << 20); };
  asio::async_write(c->sock, c->wbufs, whole, [this, c](const boost::system::error_code& ec, size_t) {
    c->writing = false;
    if (c->closed) return;
    if (ec) return fail(c);
    c->out.written(c->wcount, spent_);
    if (c->paused && c->out.queued() <= high_water_ / 2) {
      c->paused = false;
      read(c);
    }
    flush_out(c);
  });
}

void TcpConns::shut(const std::shared_ptr<Conn>& c) {
  c->closed = true;
  c->out.clear();
  boost::system::error_code ec;
  c->sock.close(ec);
  conns_.erase(c->id);
}

void TcpConns::fail(std::shared_ptr<Conn> c) {
  if (c->closed) return;
  shut(c);
  if (listener_) listener_->on_conn_closed(c->id);
}

void TcpConns::close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  auto c = it->second;
  shut(c);
}

void TcpConns::close_all() {
  boost::system::error_code ec;
  if (acceptor_) acceptor_->close(ec);
  std::vector<std::shared_ptr<Conn>> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (auto& c : all) shut(c);
}

size_t TcpConns::fail_all() {
  std::vector<std::shared_ptr<Conn>> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (auto& c : all) fail(c);
  return all.size();
}

TcpConns::Stats TcpConns::stats() const {
  Stats out;
  out.paused_reads = paused_reads_;
  for (auto& [id, c] : conns_) {
    out.open += 1;
    out.queued += c->out.queued();
    out.paused += c->paused;
  }
  return out;
}

}  // namespace storjnet::real
