#include "sim/chaos.h"

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>

#include "sim/faulty_storage.h"
#include "sim/network_builder.h"
#include "sim/rng.h"
#include "storjnet/dht.h"
#include "storjnet/messages.h"
#include "storjnet/simulator.h"

namespace storjnet::sim {

namespace {
using namespace std::chrono_literals;

class Chaos {
 public:
  explicit Chaos(const ChaosConfig& c)
      : cfg_(c), faults_(mix64(c.seed, 0xc4a05)), work_(mix64(c.seed, 0x3017c)), checks_(mix64(c.seed, 0xc6ec5)) {}

  ChaosReport run() {
    report_.seed = cfg_.seed;
    SimConfig sc;
    sc.seed = cfg_.seed;
    sc.node = cfg_.node;
    sc.conns.enabled = cfg_.streams;
    sim_ = std::make_unique<Simulator>(sc);
    link_ = sc.link;
    skew_.assign(cfg_.nodes, 0);
    for (size_t i = 0; i < cfg_.nodes; ++i) {
      size_t n = sim_->add_node();
      disks_.push_back(std::make_shared<Disk>([this] { return sim_->now(); }, cfg_.sync_delay));
      sim_->restart(n, cfg_.node, std::make_unique<FaultyStorage>(disks_.back()));
      // Wall clocks start skewed by up to 10 s either way.
      step_clock(n, std::chrono::microseconds(static_cast<int64_t>(faults_.below(20'000'001)) - 10'000'000));
      index_[sim_->contact(n).id] = n;
    }
    if (cfg_.streams) {
      streams_ = std::make_unique<ChaosStreams>(*sim_, cfg_.stream_per_tick, [this](std::string v) { violation(std::move(v)); });
      for (size_t i = 0; i < cfg_.nodes; ++i) {
        streams_->on_node(i);
        if (faults_.uniform() < cfg_.refuse_conns) sim_->refuse_conns(i);
      }
    }
    incarnation_.assign(cfg_.nodes, 0);
    restart_at_.assign(cfg_.nodes, std::nullopt);
    disk_heal_at_.assign(cfg_.nodes, std::nullopt);
    report_.joined = join_network(*sim_, cfg_.seed);
    sim_->run_for(5s);

    TimePoint last_check = sim_->now();
    const size_t ticks = static_cast<size_t>(cfg_.duration / cfg_.tick);
    for (tick_ = 0; tick_ < ticks; ++tick_) {
      end_faults(false);
      if (faults_.uniform() < cfg_.fault_rate) start_fault();
      workload();
      sim_->run_for(cfg_.tick);
      if (streams_) streams_->tick();
      receive();
      if (sim_->now() - last_check >= cfg_.check_every && quiet()) {
        last_check = sim_->now();
        check(cfg_.keys_per_check, false);
      }
    }
    // Everything heals, every node comes back, every wall clock is set right, holders republish (values stored on
    // one side of a partition reach the key's k closest only then); then every acknowledged value and message is
    // accounted for. A value put from a clock stepped ahead carries a version the k closest refuse as being in the
    // future (docs/protocol.md 10.8) until real time reaches it: its republish counts only from then.
    end_faults(true);
    for (size_t i = 0; i < cfg_.nodes; ++i) step_clock(i, std::chrono::microseconds(-skew_[i]));
    // Puts still out are acknowledged meanwhile: the end moves with them.
    const TimePoint healed = sim_->now();
    auto settled = [&] {
      TimePoint from = healed;
      for (const Value& v : acked_) from = std::max(from, v.acceptable_from);
      return from + 2 * cfg_.node.dht.republish_interval;
    };
    while (sim_->now() < settled()) {
      sim_->run_for(std::min<Duration>(cfg_.tick, settled() - sim_->now()));
      if (streams_) streams_->tick();  // streams still writing go on
    }
    receive();
    check(acked_.size(), true);
    for (auto& m : messages_) {
      if (!m.acked || m.received) continue;
      if (incarnation_[m.to] != m.to_incarnation) ++report_.messages_lost_with_receiver;
      else violation("message " + std::to_string(m.seq) + " from node " + std::to_string(m.from) + " to node " +
                     std::to_string(m.to) + " was acknowledged and never delivered");
    }
    report_.trace_hash = sim_->trace_hash();
    report_.conns_opened = sim_->stats().conns_opened;
    report_.conns_reset = sim_->stats().conns_reset;
    report_.conn_bytes = sim_->stats().conn_bytes;
    if (streams_) {
      report_.streams = streams_->report();
      streams_->end();  // the callbacks the nodes' destruction answers are void
    }
    return report_;
  }

 private:
  struct Value {
    std::string key;
    Bytes bytes;
    TimePoint acceptable_from{};  // its version is no longer too far in the future for a right clock
  };
  struct Message {
    size_t from = 0, to = 0;
    uint64_t seq = 0, to_incarnation = 0, received_incarnation = 0;
    bool acked = false, received = false;
  };

  void violation(std::string what) {
    if (report_.violations.size() < 100)
      report_.violations.push_back("t=" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(sim_->now()).count()) +
                                   "ms: " + std::move(what));
  }
  // The tick a fault that lasts lo to hi (drawn) ends at: faults are timed in ticks, not in virtual time, which
  // the checks' gets also advance.
  size_t ends_after(Duration lo, Duration hi) {
    Duration d = lo + Duration(static_cast<int64_t>(faults_.below(static_cast<uint64_t>((hi - lo).count()) + 1)));
    return tick_ + static_cast<size_t>(std::max<int64_t>(1, (d + cfg_.tick - Duration(1)) / cfg_.tick));
  }
  void step_clock(size_t i, std::chrono::microseconds delta) {
    skew_[i] += delta.count();
    sim_->step_wall_clock(i, delta);
  }
  size_t random_alive(Rng& rng) {
    for (;;) {
      size_t i = rng.below(cfg_.nodes);
      if (sim_->alive(i)) return i;
    }
  }
  // The fault schedule's hash (ChaosReport::fault_hash): what happened at which tick, to whom, until when.
  void note_fault(uint64_t kind, uint64_t subject, uint64_t until = 0) {
    report_.fault_hash = mix64(report_.fault_hash, mix64(tick_ * 8 + kind, mix64(subject, until)));
  }
  bool quiet() const {
    return !partition_until_ && !loss_until_ && sim_->now() - last_disturbance_ >= cfg_.quiet_for;
  }

  // ------------------------------------------------------------ faults
  void start_fault() {
    TimePoint now = sim_->now();
    switch (faults_.below(streams_ ? 6 : 5)) {
      case 0: {
        if (static_cast<double>(dead_ + 1) > cfg_.max_down * static_cast<double>(cfg_.nodes)) return;
        size_t i = random_alive(faults_);
        sim_->kill(i);
        ++dead_;
        ++report_.kills;
        ++incarnation_[i];  // its message queue dies with it
        if (streams_) streams_->on_kill(i);
        for (auto it = last_seen_.lower_bound({i, 0}); it != last_seen_.end() && it->first.first == i;)
          it = last_seen_.erase(it);
        const bool crash = faults_.below(2);
        if (crash) {
          ++report_.crashes;
          report_.values_lost_in_crashes += disks_[i]->crash();
        }
        restart_at_[i] = ends_after(5s, 60s);
        note_fault(0, i * 2 + crash, *restart_at_[i]);
        return;
      }
      case 1: {
        if (partition_until_) return;
        std::vector<uint8_t> side(cfg_.nodes, 0);
        double share = 0.1 + 0.4 * faults_.uniform();
        uint64_t sides = 0;
        for (auto& s : side) sides = mix64(sides, s = faults_.uniform() < share);
        sim_->partition(std::move(side));
        partition_until_ = ends_after(5s, 30s);
        note_fault(1, sides, *partition_until_);
        last_disturbance_ = now;
        ++report_.partitions;
        return;
      }
      case 2: {
        auto step = std::chrono::microseconds(static_cast<int64_t>(faults_.below(120'000'000)) + 1'000'000);
        auto signed_step = faults_.below(2) ? step : -step;  // drawn before the node, in this order
        size_t i = random_alive(faults_);
        step_clock(i, signed_step);
        note_fault(2, i, static_cast<uint64_t>(signed_step.count()));
        ++report_.clock_steps;
        return;
      }
      case 3: {
        size_t i = faults_.below(cfg_.nodes);
        disks_[i]->fail_writes = true;
        disk_heal_at_[i] = ends_after(5s, 30s);
        note_fault(3, i, *disk_heal_at_[i]);
        ++report_.disk_faults;
        return;
      }
      case 4: {
        if (loss_until_) return;
        LinkModel bad = link_;
        bad.loss = 0.2;
        bad.jitter = 20ms;
        sim_->set_link(bad);
        loss_until_ = ends_after(2s, 10s);
        note_fault(4, 0, *loss_until_);
        last_disturbance_ = now;
        ++report_.loss_bursts;
        return;
      }
      default: {
        // A node whose connections a middlebox forgets: the first of a few random live nodes that has some (all
        // drawn first: which ones have connections depends on the nodes, the draws must not).
        std::array<size_t, 8> tries;
        uint64_t drawn = 0;
        for (auto& i : tries) drawn = mix64(drawn, i = random_alive(faults_));
        note_fault(5, drawn);
        for (size_t i : tries) {
          if (sim_->reset_conns(i) > 0) {
            ++report_.conn_resets;
            return;
          }
        }
        return;
      }
    }
  }

  void end_faults(bool all) {
    TimePoint now = sim_->now();
    if (partition_until_ && (all || *partition_until_ <= tick_)) {
      sim_->heal();
      partition_until_.reset();
      last_disturbance_ = now;
    }
    if (loss_until_ && (all || *loss_until_ <= tick_)) {
      sim_->set_link(link_);
      loss_until_.reset();
      last_disturbance_ = now;
    }
    for (size_t i = 0; i < cfg_.nodes; ++i) {
      if (disk_heal_at_[i] && (all || *disk_heal_at_[i] <= tick_)) {
        disks_[i]->fail_writes = false;
        disk_heal_at_[i].reset();
      }
      if (restart_at_[i] && (all || *restart_at_[i] <= tick_)) {
        restart_at_[i].reset();
        sim_->restart(i, cfg_.node, std::make_unique<FaultyStorage>(disks_[i]));
        if (streams_) streams_->on_node(i);
        --dead_;
        last_disturbance_ = now;
        // It rejoins through its saved routing table and one live node.
        size_t via = random_alive(faults_);
        note_fault(6, i, via);
        sim_->node(i).dht().bootstrap({sim_->endpoint(via)}, [](bool) {});
      }
    }
  }

  // ------------------------------------------------------------ workload
  void workload() {
    if (streams_ && work_.uniform() < cfg_.streams_per_tick) start_stream();
    for (size_t p = 0; p < cfg_.puts_per_tick; ++p) {
      size_t from = random_alive(work_);
      Value v{"chaos-" + std::to_string(cfg_.seed) + "-" + std::to_string(report_.puts++), Bytes(16 + work_.below(240)),
              sim_->now() + std::max<Duration>(Duration(0), std::chrono::microseconds(skew_[from]) -
                                                                cfg_.node.dht.max_future_skew)};
      for (auto& b : v.bytes) b = static_cast<uint8_t>(work_.next());
      sim_->node(from).dht().put(v.key, v.bytes, [this, v](const PutResult& r) {
        if (!r.ok) return;
        ++report_.puts_acked;
        acked_.push_back(v);
      });
    }
    for (size_t k = 0; k < cfg_.messages_per_tick; ++k) {
      size_t from = random_alive(work_), to = random_alive(work_);
      if (from == to) continue;
      Message m;
      m.from = from;
      m.to = to;
      m.seq = next_seq_[{from, to}]++;
      size_t id = messages_.size();
      messages_.push_back(m);
      ++report_.messages;
      sim_->node(from).messages().send(sim_->contact(to).id, std::to_string(id), [this, id](bool ok) {
        if (!ok) return;
        Message& mm = messages_[id];
        mm.acked = true;
        mm.to_incarnation = incarnation_[mm.to];
        ++report_.messages_acked;
      });
    }
  }

  void start_stream() {
    size_t from = random_alive(work_), to = random_alive(work_);
    size_t bytes = 16 * 1024 + work_.below(cfg_.stream_bytes + 1);
    if (from != to) streams_->start(from, to, bytes);
  }

  void receive() {
    for (size_t to = 0; to < cfg_.nodes; ++to) {
      if (!sim_->alive(to)) continue;
      for (auto& [sender, texts] : sim_->node(to).messages().take_all()) {
        auto who = index_.find(sender);
        for (auto& text : texts) {
          size_t id = std::stoull(text);
          if (id >= messages_.size() || who == index_.end() || messages_[id].from != who->second ||
              messages_[id].to != to) {
            violation("node " + std::to_string(to) + " received a message that was not sent to it: " + text);
            continue;
          }
          Message& m = messages_[id];
          ++report_.messages_received;
          if (m.received && m.received_incarnation == incarnation_[to])
            violation("message " + std::to_string(m.seq) + " from node " + std::to_string(m.from) + " to node " +
                      std::to_string(to) + " delivered twice");
          auto [it, fresh] = last_seen_.try_emplace({to, m.from}, m.seq);
          if (!fresh) {
            if (m.seq < it->second)
              violation("message " + std::to_string(m.seq) + " from node " + std::to_string(m.from) + " to node " +
                        std::to_string(to) + " delivered after message " + std::to_string(it->second));
            it->second = std::max(it->second, m.seq);
          }
          m.received = true;
          m.received_incarnation = incarnation_[to];
        }
      }
    }
  }

  // ------------------------------------------------------------ invariants
  // A get must find a value some live node holds when one of the key's k closest live nodes holds it (the
  // set a lookup converges on); after `healed` (everything back, a republish interval passed), whenever any
  // live node holds it. A miss otherwise is counted, not a breach: a value stored on one side of a partition
  // reaches the key's k closest at the next republish.
  void check(size_t keys, bool healed) {
    ++report_.checks;
    const auto& ec = cfg_.node.engine;
    for (size_t i = 0; i < cfg_.nodes; ++i) {
      if (!sim_->alive(i)) continue;
      NodeStats s = sim_->node(i).stats();
      if (s.sessions > ec.max_sessions || s.reassembly_bytes > ec.reassembly.max_total ||
          sim_->node(i).messages().queued() > cfg_.node.messages.max_queue)
        violation("node " + std::to_string(i) + " is past a bound (sessions, reassembly or message queue)");
    }
    auto pending = std::make_shared<size_t>(0);  // a get answered after we stopped waiting must not dangle
    for (size_t k = 0; k < keys && !acked_.empty(); ++k) {
      const Value& v = keys >= acked_.size() ? acked_[k] : acked_[checks_.below(acked_.size())];
      NodeId key = dht_key(v.key);
      std::vector<std::pair<NodeId, bool>> live;  // distance to the key, holds it
      for (size_t i = 0; i < cfg_.nodes; ++i) {
        if (!sim_->alive(i)) continue;
        auto it = disks_[i]->values.find(key);
        live.push_back({sim_->contact(i).id ^ key, it != disks_[i]->values.end() && it->second.value.value == v.bytes});
      }
      size_t near_k = std::min(cfg_.node.dht.k, live.size());
      std::partial_sort(live.begin(), live.begin() + static_cast<long>(near_k), live.end());
      size_t holders = 0, near = 0;
      for (size_t j = 0; j < live.size(); ++j) {
        holders += live[j].second;
        near += live[j].second && j < near_k;
      }
      size_t must = healed ? holders : near;
      size_t from = random_alive(checks_);
      ++*pending;
      ++report_.gets;
      sim_->node(from).dht().get(v.key, [this, pending, v, holders, must, from](GetResult r) {
        --*pending;
        if (r.value) {
          ++report_.gets_found;
          if (*r.value != v.bytes) violation("get of " + v.key + " from node " + std::to_string(from) + " returned other bytes");
        } else if (must > 0) {
          violation("get of " + v.key + " from node " + std::to_string(from) + " found nothing while " +
                    std::to_string(must) + " live nodes it must reach hold it");
        } else if (holders > 0) {
          ++report_.gets_missed_far_replica;
        } else {
          ++report_.gets_without_live_replica;
        }
      });
    }
    sim_->run_until([&] { return *pending == 0; }, 60s);
    if (*pending) violation(std::to_string(*pending) + " gets never answered within 60 s");
    if (streams_) streams_->check(healed);
  }

  ChaosConfig cfg_;
  // Three streams: the faults' own (their kinds, victims, durations and the restarts' bootstrap peers), the
  // workload's, and the checks'. With faults timed in ticks, a change of the nodes' behaviour (how many puts were
  // acknowledged, how long a check's gets took) leaves the fault schedule and the workload's choices as they were:
  // two builds' runs of one seed meet the same faults at the same ticks.
  Rng faults_, work_, checks_;
  ChaosReport report_;
  LinkModel link_;
  std::vector<std::shared_ptr<Disk>> disks_;
  std::vector<uint64_t> incarnation_;
  std::vector<int64_t> skew_;  // each node's wall clock ahead of real time, us (behind: negative)
  size_t tick_ = 0;  // the fault loop's tick: faults end at a tick (ends_after)
  std::vector<std::optional<size_t>> restart_at_, disk_heal_at_;
  std::map<NodeId, size_t> index_;
  std::vector<Value> acked_;
  std::vector<Message> messages_;
  std::map<std::pair<size_t, size_t>, uint64_t> next_seq_, last_seen_;  // (from, to) and (to, from)
  std::optional<size_t> partition_until_, loss_until_;
  TimePoint last_disturbance_{};
  size_t dead_ = 0;
  std::unique_ptr<ChaosStreams> streams_;  // before sim_: it outlives the callbacks the nodes hold
  std::unique_ptr<Simulator> sim_;  // last: destroyed first, while what its callbacks touch still lives
};

}  // namespace

ChaosReport run_chaos(const ChaosConfig& config) { return Chaos(config).run(); }

}  // namespace storjnet::sim
