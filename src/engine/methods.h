// Network RPC method codes (docs/protocol.md, "Methods"). One byte on the wire; codes are below 64.
#pragma once
#include <cstdint>
#include <string_view>

namespace storjnet {

enum class Method : uint8_t {
  kPing = 1,            // kademlia_ping
  kStun = 2,            // kademlia_stun
  kFindNode = 3,        // kademlia_find_node
  kFindValue = 4,       // kademlia_find_value
  kStore = 5,           // kademlia_store
  kDialBack = 6,        // kademlia_dial_back
  kPunch = 7,           // kademlia_punch (hole punching, keepalives)
  kRelayReserve = 8,    // relay_reserve (a NATed node reserves a relay slot, docs/protocol.md 5.3)
  kRelay = 9,           // relay_forward (one-way: a sealed datagram for a node reached through this relay)
  kRelayed = 10,        // relay_deliver (one-way: the relay hands the sealed datagram on)
  kMessageNotify = 16,  // message_notify
  kStreamOpen = 32,     // stream_open
  kStreamData = 33,     // stream_write (data frames)
  kStreamClose = 34,    // stream_close
  kStreamWindow = 35,   // stream_window (one-way receive-window update)
  kQuasarUpdate = 48,   // quasar_update
  kQuasarNotify = 49,   // quasar_notify
};
constexpr size_t kMethodSlots = 64;

constexpr std::string_view method_name(uint8_t m) {
  switch (static_cast<Method>(m)) {
    case Method::kPing: return "kademlia_ping";
    case Method::kStun: return "kademlia_stun";
    case Method::kFindNode: return "kademlia_find_node";
    case Method::kFindValue: return "kademlia_find_value";
    case Method::kStore: return "kademlia_store";
    case Method::kDialBack: return "kademlia_dial_back";
    case Method::kPunch: return "kademlia_punch";
    case Method::kRelayReserve: return "relay_reserve";
    case Method::kRelay: return "relay_forward";
    case Method::kRelayed: return "relay_deliver";
    case Method::kMessageNotify: return "message_notify";
    case Method::kStreamOpen: return "stream_open";
    case Method::kStreamData: return "stream_write";
    case Method::kStreamClose: return "stream_close";
    case Method::kStreamWindow: return "stream_window";
    case Method::kQuasarUpdate: return "quasar_update";
    case Method::kQuasarNotify: return "quasar_notify";
  }
  return "unknown";
}

}  // namespace storjnet
