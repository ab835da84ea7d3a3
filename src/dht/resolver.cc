#include "dht/resolver.h"

#include "storjnet/dht.h"

namespace storjnet {

void Resolver::remember(const Contact& c) {
  if (!c.endpoint.valid()) return;
  auto it = cache_.find(c.id);
  if (it != cache_.end()) {
    it->second = c;
    return;
  }
  if (cache_.size() >= max_cached_) cache_.erase(cache_.begin());  // arbitrary victim: a miss costs a lookup
  cache_.emplace(c.id, c);
}

void Resolver::resolve(const NodeId& id, std::function<void(std::optional<Contact>)> cb) {
  if (auto it = cache_.find(id); it != cache_.end()) return cb(it->second);
  for (const Contact& c : dht_.closest_known(id, 1)) {
    if (c.id == id) {
      remember(c);
      return cb(c);
    }
  }
  auto& waiters = waiting_[id];
  waiters.push_back(std::move(cb));
  if (waiters.size() > 1) return;  // a lookup is already running
  dht_.find_contact(id, scope_.bind<std::optional<Contact>>([this, id](std::optional<Contact> c) {
    if (c && c->id != id) c.reset();  // a contact must be self-certifying for the id asked
    if (c) remember(*c);
    auto node = waiting_.extract(id);
    if (node.empty()) return;
    for (auto& w : node.mapped()) w(c);
  }));
}

}  // namespace storjnet
