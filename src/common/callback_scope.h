// CallbackScope: continuations that live no longer than their owner. A service hands another service (a Dht
// lookup, a Resolver) a function made by bind() instead of a lambda capturing `this`; when the owner's scope
// ends (destroyed, or end()), every such function is destroyed and a later call does nothing. Engine::Scope
// (src/engine/engine.h) is one of these plus the engine's timers and RPCs: together, the one cancellation
// mechanism of the services (no hand-rolled liveness flags).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>

namespace storjnet {

class CallbackScope {
 public:
  CallbackScope() : core_(std::make_shared<Core>()) {}
  CallbackScope(CallbackScope&& o) noexcept : core_(std::move(o.core_)) {}
  CallbackScope& operator=(CallbackScope&& o) noexcept {
    if (this != &o) {
      end();
      core_ = std::move(o.core_);
    }
    return *this;
  }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;
  ~CallbackScope() { end(); }

  // Destroys every bound function not yet called (idempotent). A destructor may run code (a Once's cancelled
  // callback, src/common/once.h): it runs after the scope is emptied.
  void end() {
    if (!core_) return;
    auto fns = std::move(core_->fns);
    core_.reset();
  }
  bool active() const { return core_ != nullptr; }

  // A one-shot function of `f` that lives no longer than the scope. The first call runs `f` (copies share it;
  // later calls do nothing); a call after the scope ended does nothing. `f` is destroyed at its call, when every
  // copy is gone, or when the scope ends, whichever comes first.
  template <class... A, class F>
  std::function<void(A...)> bind(F&& f) const {
    using Fn = std::function<void(A...)>;
    if (!core_) return [](A...) {};
    return [ticket = hold<Fn>(std::forward<F>(f))](A... a) {
      if (auto fn = ticket->take()) (*std::static_pointer_cast<Fn>(fn))(std::forward<A>(a)...);
    };
  }
  // The same for a callback that may run many times (a handler kept by another service): every call until the
  // scope ends runs `f`; `f` is destroyed when every copy is gone or when the scope ends.
  template <class... A, class F>
  std::function<void(A...)> bind_each(F&& f) const {
    using Fn = std::function<void(A...)>;
    if (!core_) return [](A...) {};
    return [ticket = hold<Fn>(std::forward<F>(f))](A... a) {
      if (auto fn = ticket->get()) (*std::static_pointer_cast<Fn>(fn))(std::forward<A>(a)...);
    };
  }
  size_t size() const { return core_ ? core_->fns.size() : 0; }

 private:
  struct Core {
    std::unordered_map<uint64_t, std::shared_ptr<void>> fns;
    uint64_t next = 1;
  };
  // Shared by the copies of one bound function; the last copy's end forgets the function.
  struct Ticket {
    std::weak_ptr<Core> core;
    uint64_t id;
    Ticket(std::weak_ptr<Core> c, uint64_t i) : core(std::move(c)), id(i) {}
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    std::shared_ptr<void> take() {
      auto c = core.lock();
      core.reset();
      if (!c) return nullptr;
      auto node = c->fns.extract(id);
      return node ? std::move(node.mapped()) : nullptr;
    }
    std::shared_ptr<void> get() const {
      auto c = core.lock();
      if (!c) return nullptr;
      auto it = c->fns.find(id);
      return it == c->fns.end() ? nullptr : it->second;
    }
    ~Ticket() {
      if (auto c = core.lock()) {
        auto node = c->fns.extract(id);  // destroyed once the map is consistent
      }
    }
  };
  // Keeps `f` in the scope; the ticket's copies share it.
  template <class Fn, class F>
  std::shared_ptr<Ticket> hold(F&& f) const {
    uint64_t id = core_->next++;
    core_->fns.emplace(id, std::make_shared<Fn>(std::forward<F>(f)));
    return std::make_shared<Ticket>(core_, id);
  }
  std::shared_ptr<Core> core_;
};

}  // namespace storjnet
