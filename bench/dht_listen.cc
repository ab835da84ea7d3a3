// The listen phase of `storjnet-bench dht`, exactly as section 2.6 of ../shared/bench/opendht/README.md:
// listen(key_t) = pubsub subscribe("bench-topic-<seed>-<t>"), a put of an event on the topic key = publish of
// a JSON event {"seq", "topic", "payload"} where payload is the hex of the 64-byte value of 2.6.
// Put completion = publish() returning true (it is local and synchronous).
#include "dht_listen.h"

#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench_util.h"
#include "engine/engine.h"
#include "storjnet/node.h"
#include "storjnet/real_driver.h"

namespace storjnet::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kWarmupBase = 1ull << 40;
constexpr uint64_t kMagic = 0x6f6468742d62656eull;  // "odht-ben"

Bytes event_payload(uint64_t seq, uint32_t topic, size_t len) {
  Bytes b(len, 0);
  std::memcpy(b.data(), &kMagic, 8);
  std::memcpy(b.data() + 8, &seq, 8);
  std::memcpy(b.data() + 16, &topic, 4);
  for (size_t i = 20; i < len; ++i) b[i] = static_cast<uint8_t>(seq * 31 + i);
  return b;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Namespace-wide UDP RcvbufErrors (informational, as in the OpenDHT harness).
long rcvbuf_errors() {
  std::ifstream in("/proc/net/snmp");
  std::string head, vals;
  while (std::getline(in, head) && std::getline(in, vals)) {
    if (head.rfind("Udp:", 0) != 0) continue;
    std::istringstream h(head), v(vals);
    std::string name, val;
    while (h >> name && v >> val)
      if (name == "RcvbufErrors") return std::stol(val);
  }
  return 0;
}

nlohmann::json summary(std::vector<double> v) {
  double mean = 0, mn = 0, mx = 0;
  if (!v.empty()) {
    std::sort(v.begin(), v.end());
    for (double x : v) mean += x;
    mean /= v.size();
    mn = v.front();
    mx = v.back();
  }
  return {{"n", v.size()},           {"median", percentile(v, 0.5)}, {"p90", percentile(v, 0.9)},
          {"p99", percentile(v, 0.99)}, {"max", mx},                  {"mean", mean},
          {"min", mn}};
}

struct Delivery {
  std::mutex m;
  std::condition_variable cv;
  std::map<uint64_t, Clock::time_point> first_seen;
  long duplicates = 0, callbacks = 0, foreign = 0;
};

struct Tx {
  uint64_t datagrams = 0, bytes = 0, ratelimit = 0;
  uint64_t quasar = 0, walk = 0, route = 0, holder = 0;  // PubsubStats sums over all nodes
};

}  // namespace

nlohmann::json run_listen_phase(const ListenPhaseArgs& a) {
  RealDriver& driver = *a.driver;
  auto& nodes = a.nodes;
  auto& rng = *a.rng;
  const int N = static_cast<int>(nodes.size());
  const int T = a.topics;
  if (N < 2 || T < 1) return nullptr;
  auto tx_now = [&] {
    return driver.call([&] {
      Tx t;
      for (auto* n : nodes) {
        t.datagrams += n->stats().datagrams_out;
        t.bytes += n->stats().bytes_out;
        t.ratelimit += n->stats().drop_count("rate_limited");
        auto ps = n->pubsub().stats();
        t.quasar += ps.quasar_forwards;
        t.walk += ps.walk_forwards;
        t.route += ps.route_forwards;
        t.holder += ps.holder_deliveries;
      }
      return t;
    });
  };
  const Tx tx0 = tx_now();
  const long rcv0 = rcvbuf_errors();
  const double c0 = cpu_seconds();
  const auto w0 = Clock::now();

  struct Topic {
    std::string name;
    int listener = -1, publisher = -1;
  };
  std::vector<Topic> topics(T);
  std::vector<std::shared_ptr<Delivery>> dl(T);
  std::uniform_int_distribution<int> pick(0, N - 1);
  std::uniform_int_distribution<int> pick_other(0, N - 2);
  for (int t = 0; t < T; ++t) {
    auto& tp = topics[t];
    tp.name = "bench-topic-" + std::to_string(a.seed) + "-" + std::to_string(t);
    tp.listener = pick(rng);
    tp.publisher = pick_other(rng);
    if (tp.publisher >= tp.listener) tp.publisher++;
    dl[t] = std::make_shared<Delivery>();
  }
  // One observer per listener node, dispatching by topic (a node may listen to several topics).
  std::map<int, std::map<std::string, std::shared_ptr<Delivery>>> by_node;
  for (int t = 0; t < T; ++t) by_node[topics[t].listener][topics[t].name] = dl[t];
  driver.call([&] {
    for (auto& [node, table] : by_node) {
      nodes[node]->pubsub().set_on_event([table](const std::string& topic, const std::string& ev) {
        auto now = Clock::now();
        auto it = table.find(topic);
        if (it == table.end()) return;
        auto& d = *it->second;
        uint64_t seq = 0;
        bool ok = false;
        try {
          auto j = nlohmann::json::parse(ev);
          auto p = from_hex(j.at("payload").get<std::string>());
          uint64_t magic = 0;
          if (p && p->size() >= 20) {
            std::memcpy(&magic, p->data(), 8);
            std::memcpy(&seq, p->data() + 8, 8);
            ok = magic == kMagic;
          }
        } catch (const std::exception&) {
        }
        std::lock_guard<std::mutex> l(d.m);
        d.callbacks++;
        if (!ok) {
          d.foreign++;
          return;
        }
        if (!d.first_seen.emplace(seq, now).second) d.duplicates++;
        d.cv.notify_all();
      });
    }
    for (auto& tp : topics) nodes[tp.listener]->pubsub().subscribe(tp.name);
  });
  auto publish = [&](const Topic& tp, uint64_t seq, uint32_t t) {
    std::string ev =
        nlohmann::json{{"seq", seq}, {"topic", t}, {"payload", to_hex(event_payload(seq, t, 64))}}.dump();
    return driver.call(*nodes[tp.publisher], [&] { return nodes[tp.publisher]->pubsub().publish(tp.name, ev); });
  };
  auto wait_seen = [&](Delivery& d, uint64_t seq, Clock::time_point t0) {
    std::unique_lock<std::mutex> l(d.m);
    auto limit = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.event_timeout_s));
    return d.cv.wait_until(l, limit, [&] { return d.first_seen.count(seq) > 0; });
  };

  // Subscription settle: the fixed wait of the workload definition.
  std::this_thread::sleep_for(std::chrono::duration<double>(a.sub_settle_s));
  size_t warmup_ok = 0;
  for (int t = 0; t < T; ++t) {
    uint64_t seq = kWarmupBase + t;
    auto t0 = Clock::now();
    publish(topics[t], seq, t);
    warmup_ok += wait_seen(*dl[t], seq, t0);
  }
  const double subscribe_s = std::chrono::duration<double>(Clock::now() - w0).count();

  size_t events = 0, delivered = 0, put_ok = 0, late = 0;
  std::vector<double> lat_ms, put_ms;
  std::vector<Clock::time_point> sent(a.ops);
  for (int e = 0; e < a.ops; ++e) {
    int t = e % T;
    auto t0 = Clock::now();
    sent[e] = t0;
    bool ok = publish(topics[t], static_cast<uint64_t>(e), t);
    auto t_put = Clock::now();
    events++;
    if (ok) {
      put_ok++;
      put_ms.push_back(std::chrono::duration<double, std::milli>(t_put - t0).count());
    }
    auto& d = *dl[t];
    if (wait_seen(d, e, t0)) {
      delivered++;
      std::lock_guard<std::mutex> l(d.m);
      lat_ms.push_back(std::chrono::duration<double, std::milli>(d.first_seen[e] - t0).count());
    }
  }
  const Tx tx1 = tx_now();
  long duplicates = 0, callbacks = 0;
  for (int e = 0; e < a.ops; ++e) {
    auto& d = *dl[e % T];
    std::lock_guard<std::mutex> l(d.m);
    auto it = d.first_seen.find(static_cast<uint64_t>(e));
    if (it != d.first_seen.end() &&
        std::chrono::duration<double>(it->second - sent[e]).count() > a.event_timeout_s)
      late++;
  }
  for (int t = 0; t < T; ++t) {
    std::lock_guard<std::mutex> l(dl[t]->m);
    duplicates += dl[t]->duplicates;
    callbacks += dl[t]->callbacks;
  }
  driver.call([&] {
    for (auto& tp : topics) nodes[tp.listener]->pubsub().unsubscribe(tp.name);
    for (auto& [node, table] : by_node) nodes[node]->pubsub().set_on_event({});
  });

  nlohmann::json j;
  j["events"] = events;
  j["delivered"] = delivered;
  j["delivery_rate"] = events ? double(delivered) / events : 0;
  j["late"] = late;
  j["duplicates"] = duplicates;
  j["callbacks"] = callbacks;
  j["warmup_ok"] = warmup_ok;
  j["subscribe_warmup_s"] = subscribe_s;
  j["latency_ms"] = summary(lat_ms);
  if (a.cdf) j["latency_cdf_ms"] = cdf_points(lat_ms);
  j["put_ok"] = put_ok;
  j["put_latency_ms"] = summary(put_ms);
  j["wall_s"] = std::chrono::duration<double>(Clock::now() - w0).count();
  j["cpu_s"] = cpu_seconds() - c0;
  j["tx_datagrams_per_event"] = events ? double(tx1.datagrams - tx0.datagrams) / events : 0;
  j["tx_bytes_per_event"] = events ? double(tx1.bytes - tx0.bytes) / events : 0;
  j["ratelimit_drops"] = tx1.ratelimit - tx0.ratelimit;
  // Where the pubsub traffic of the phase (warm-up included) went, per measured event (PubsubStats).
  auto per_event = [&](uint64_t a0, uint64_t a1) { return events ? double(a1 - a0) / events : 0.0; };
  j["pubsub_per_event"] = {{"quasar_forwards", per_event(tx0.quasar, tx1.quasar)},
                           {"walk_forwards", per_event(tx0.walk, tx1.walk)},
                           {"route_forwards", per_event(tx0.route, tx1.route)},
                           {"holder_deliveries", per_event(tx0.holder, tx1.holder)}};
  j["rxqueue_drops"] = 0;
  j["netns_rcvbuf_errors"] = rcvbuf_errors() - rcv0;
  return j;
}

}  // namespace storjnet::bench
