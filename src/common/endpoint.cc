#include "storjnet/endpoint.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace storjnet {

Endpoint Endpoint::v4(uint32_t ip, uint16_t port) {
  Endpoint e;
  e.family = Family::kV4;
  e.addr[0] = ip >> 24;
  e.addr[1] = ip >> 16;
  e.addr[2] = ip >> 8;
  e.addr[3] = ip;
  e.port = port;
  return e;
}

std::optional<Endpoint> Endpoint::from_ip(std::string_view ip, uint16_t port) {
  if (ip.size() >= 64) return std::nullopt;
  char buf[64];
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = 0;
  Endpoint e;
  e.port = port;
  if (inet_pton(AF_INET, buf, e.addr.data()) == 1) {
    e.family = Family::kV4;
    return e;
  }
  if (inet_pton(AF_INET6, buf, e.addr.data()) == 1) {
    e.family = Family::kV6;
    return e;
  }
  return std::nullopt;
}

std::optional<Endpoint> Endpoint::parse(std::string_view s) {
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) return std::nullopt;
  return from_ip(host, static_cast<uint16_t>(p));
}

std::string Endpoint::ip_string() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family == Family::kV4) inet_ntop(AF_INET, addr.data(), buf, sizeof buf);
  else if (family == Family::kV6) inet_ntop(AF_INET6, addr.data(), buf, sizeof buf);
  else return "";
  return buf;
}

std::string Endpoint::to_string() const {
  if (family == Family::kV6) return "[" + ip_string() + "]:" + std::to_string(port);
  return ip_string() + ":" + std::to_string(port);
}

bool Endpoint::is_loopback() const {
  if (family == Family::kV4) return addr[0] == 127;
  if (family == Family::kV6) {
    for (int i = 0; i < 15; ++i)
      if (addr[i]) return false;
    return addr[15] == 1;
  }
  return false;
}

bool Endpoint::is_unspecified() const {
  for (auto b : addr)
    if (b) return false;
  return true;
}

bool Endpoint::is_private_or_loopback() const {
  if (is_loopback() || is_unspecified()) return true;
  if (family == Family::kV4) {
    uint8_t a = addr[0], b = addr[1];
    return a == 10 || (a == 172 && (b & 0xf0) == 16) || (a == 192 && b == 168) || (a == 169 && b == 254) ||
           (a == 100 && (b & 0xc0) == 64) || a == 0;
  }
  if (family == Family::kV6) return (addr[0] & 0xfe) == 0xfc || (addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80);
  return true;
}

}  // namespace storjnet
