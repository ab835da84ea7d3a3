// Conversions between storjnet's Endpoint and Asio's UDP endpoint (IPv4-mapped IPv6 addresses come back
// as IPv4), for the real driver.
#pragma once
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange under C++20
#include <boost/asio/ip/udp.hpp>

#include "storjnet/endpoint.h"

namespace storjnet {

Endpoint from_asio(const boost::asio::ip::udp::endpoint& e);
boost::asio::ip::udp::endpoint to_asio(const Endpoint& e);

}  // namespace storjnet
