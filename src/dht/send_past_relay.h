// send_past_relay: a one-way message sent straight to `to`'s endpoint even while the engine has a relayed path
// to `to` (Engine::set_via), which it keeps. For datagrams that must cross the routers themselves to work: a
// punch's HOLEs (src/dht/punch.h, src/dht/birthday.h), which wrapped for a relay would open nothing.
#pragma once
#include "engine/engine.h"

namespace storjnet::dht {

inline void send_past_relay(Engine& engine, const Contact& to, Method m, ByteView payload) {
  auto via = engine.via(to.key);
  if (via) engine.clear_via(to.key);
  engine.notify(to, m, payload);
  if (via) engine.set_via(to.key, *via);
}

}  // namespace storjnet::dht
