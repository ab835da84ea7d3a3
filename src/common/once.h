// Once: a user callback that runs exactly once. Copies share one callback: the first call runs it, later
// calls do nothing. If the last copy dies before any call (the service that held it was destroyed, or its
// Engine::Scope ended and the engine dropped the continuation that held it), the callback runs then, with the
// `cancelled` arguments given at construction. So a service that wraps each user callback in a Once on entry
// keeps the "exactly once" promise however its work ends; no path can lose a callback silently.
#pragma once
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace storjnet {

template <class... A>
class Once {
 public:
  Once() = default;
  Once(std::function<void(A...)> fn, std::decay_t<A>... cancelled)
      : s_(std::make_shared<State>(std::move(fn), std::tuple<std::decay_t<A>...>(std::move(cancelled)...))) {}

  // Runs the callback if it has not run yet.
  void operator()(A... a) const {
    if (!s_ || !s_->fn) return;
    auto fn = std::move(s_->fn);
    s_->fn = nullptr;
    fn(std::forward<A>(a)...);
  }
  bool pending() const { return s_ && s_->fn; }

 private:
  struct State {
    State(std::function<void(A...)> f, std::tuple<std::decay_t<A>...> c) : fn(std::move(f)), cancelled(std::move(c)) {}
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    ~State() {
      if (!fn) return;
      auto f = std::move(fn);
      fn = nullptr;
      std::apply(f, std::move(cancelled));
    }
    std::function<void(A...)> fn;
    std::tuple<std::decay_t<A>...> cancelled;
  };
  std::shared_ptr<State> s_;
};

}  // namespace storjnet
