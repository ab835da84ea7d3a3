#include "real/asio_endpoint.h"

#include <algorithm>

namespace storjnet {

namespace asio = boost::asio;
using udp = asio::ip::udp;

Endpoint from_asio(const udp::endpoint& e) {
  Endpoint out;
  out.port = e.port();
  if (e.address().is_v4()) {
    auto b = e.address().to_v4().to_bytes();
    out.family = Endpoint::Family::kV4;
    std::copy(b.begin(), b.end(), out.addr.begin());
  } else {
    auto v6 = e.address().to_v6();
    if (v6.is_v4_mapped()) return from_asio(udp::endpoint(asio::ip::make_address_v4(asio::ip::v4_mapped, v6), e.port()));
    auto b = v6.to_bytes();
    out.family = Endpoint::Family::kV6;
    std::copy(b.begin(), b.end(), out.addr.begin());
  }
  return out;
}

udp::endpoint to_asio(const Endpoint& e) {
  if (e.family == Endpoint::Family::kV4) {
    asio::ip::address_v4::bytes_type b;
    std::copy(e.addr.begin(), e.addr.begin() + 4, b.begin());
    return {asio::ip::address_v4(b), e.port};
  }
  asio::ip::address_v6::bytes_type b;
  std::copy(e.addr.begin(), e.addr.end(), b.begin());
  return {asio::ip::address_v6(b), e.port};
}

}  // namespace storjnet
