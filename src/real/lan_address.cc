// The real driver's LAN address (src/real/lan_address.h).
#include "real/lan_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace storjnet::real {

namespace {
bool lan(const Endpoint& ep) { return !ep.is_loopback() && !ep.is_unspecified() && ep.is_private_or_loopback(); }
}  // namespace

std::optional<Endpoint> route_source(Endpoint::Family family) {
  bool v4 = family == Endpoint::Family::kV4;
  if (!v4 && family != Endpoint::Family::kV6) return std::nullopt;
  int fd = ::socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_storage to{};
  socklen_t len;
  if (v4) {  // 198.51.100.1 (TEST-NET-2): any public address picks the default route
    auto* a = reinterpret_cast<sockaddr_in*>(&to);
    a->sin_family = AF_INET;
    a->sin_port = htons(9);
    a->sin_addr.s_addr = htonl(0xc6336401);
    len = sizeof *a;
  } else {  // 2001:db8::1
    auto* a = reinterpret_cast<sockaddr_in6*>(&to);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(9);
    a->sin6_addr.s6_addr[0] = 0x20;
    a->sin6_addr.s6_addr[1] = 0x01;
    a->sin6_addr.s6_addr[2] = 0x0d;
    a->sin6_addr.s6_addr[3] = 0xb8;
    a->sin6_addr.s6_addr[15] = 1;
    len = sizeof *a;
  }
  std::optional<Endpoint> out;
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), len) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0) {
    Endpoint ep;
    if (v4 && local.ss_family == AF_INET) {
      ep.family = Endpoint::Family::kV4;
      std::memcpy(ep.addr.data(), &reinterpret_cast<sockaddr_in*>(&local)->sin_addr, 4);
      out = ep;
    } else if (!v4 && local.ss_family == AF_INET6) {
      ep.family = Endpoint::Family::kV6;
      std::memcpy(ep.addr.data(), &reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr, 16);
      out = ep;
    }
  }
  ::close(fd);
  return out;
}

std::optional<Endpoint> LanAddress::get(Endpoint::Family f, const Endpoint& bound,
                                        std::chrono::steady_clock::time_point now) {
  if (!bound.valid() || bound.family != f) return std::nullopt;
  if (!bound.is_unspecified()) return lan(bound) ? std::optional<Endpoint>(bound) : std::nullopt;
  if (!looked_ || now - at_ >= kRecheck) {
    looked_ = true;
    at_ = now;
    cached_ = route_source(bound.family);
    if (cached_) cached_->port = bound.port;
    if (cached_ && !lan(*cached_)) cached_.reset();
  }
  return cached_;
}

}  // namespace storjnet::real
