// flood: one honest pair (two real nodes on 127.0.0.1, each on its own driver thread) pings, puts and gets
// while an attacker thread sends crafted datagrams to the victim node as fast as it can; the honest pair's
// round trips under attack are compared with the same run's unloaded baseline. Attacks (--attack):
//   fresh-keys      every datagram claims a new valid Ed25519 key (garbage ciphertext): key work per datagram
//   forged          datagrams under the honest peer's key with garbage ciphertext: tag checks only
//   fragments       authentic fragments of never-completed 128 KiB messages: reassembly memory
//   stores          authentic kademlia_store requests of 1 KiB values under random keys: storage
//   spoofed-source  authentic requests (find_value of a 64 KiB value, find_node, stun, ping) whose source
//                   address is forged to a third socket (raw IPv4 socket; without CAP_NET_RAW the attacker's
//                   own socket plays the victim address and never answers): amplification
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "bench_util.h"
#include "node/node_internals.h"
#include "dht/codec.h"
#include "engine/engine.h"
#include "engine/message.h"
#include "storjnet/dht.h"
#include "storjnet/real_driver.h"
#include "wire/frame.h"
#include "workloads.h"

namespace storjnet::bench {

namespace {
using Clock = std::chrono::steady_clock;

// A UDP socket on 127.0.0.1 that counts what it receives (non-blocking drain).
struct Socket {
  int fd = -1;
  uint16_t port = 0;
  Socket() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Socket() { ::close(fd); }
  uint64_t drain() {
    uint64_t n = 0;
    uint8_t buf[2048];
    for (ssize_t r; (r = ::recv(fd, buf, sizeof buf, 0)) > 0;) n += static_cast<uint64_t>(r);
    return n;
  }
};

// Sends datagrams to the victim, optionally with a forged source port on 127.0.0.1 (raw socket).
struct Sender {
  Socket own;
  int raw = -1;
  sockaddr_in to{};
  uint16_t spoof_port = 0;
  explicit Sender(uint16_t victim_port, uint16_t spoof = 0) : spoof_port(spoof) {
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(victim_port);
    if (spoof) {
      raw = ::socket(AF_INET, SOCK_RAW, IPPROTO_RAW);  // IPPROTO_RAW implies IP_HDRINCL
      if (raw < 0) spoof_port = 0;
    }
  }
  ~Sender() {
    if (raw >= 0) ::close(raw);
  }
  bool spoofing() const { return raw >= 0; }
  void send(ByteView d) {
    if (raw < 0) {
      ::sendto(own.fd, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
      return;
    }
    uint8_t pkt[1500];
    auto* ip = reinterpret_cast<iphdr*>(pkt);
    auto* udp = reinterpret_cast<udphdr*>(pkt + sizeof(iphdr));
    std::memset(pkt, 0, sizeof(iphdr) + sizeof(udphdr));
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->saddr = htonl(INADDR_LOOPBACK);
    ip->daddr = htonl(INADDR_LOOPBACK);
    size_t total = sizeof(iphdr) + sizeof(udphdr) + d.size();
    ip->tot_len = htons(static_cast<uint16_t>(total));
    udp->source = htons(spoof_port);
    udp->dest = to.sin_port;
    udp->len = htons(static_cast<uint16_t>(sizeof(udphdr) + d.size()));
    std::memcpy(pkt + sizeof(iphdr) + sizeof(udphdr), d.data(), d.size());
    ::sendto(raw, pkt, total, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
};

// The attacker's datagrams, one at a time.
class Generator {
 public:
  Generator(const std::string& attack, const Node& victim, const PublicKey& honest_key) : attack_(attack) {
    victim_key_ = victim.public_key();
    honest_ = honest_key;
    if (attack == "fresh-keys")
      for (int i = 0; i < 20000; ++i) pool_.push_back(Identity::generate().public_key());
    crypto::derive_session_key(me_, victim_key_, key_, /*cache=*/false);  // the victim must pay for it
    epoch_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::system_clock::now().time_since_epoch()).count());
  }
  Bytes next() {
    ++n_;
    if (attack_ == "fresh-keys") return garbage(pool_[n_ % pool_.size()]);
    if (attack_ == "forged") return garbage(honest_);
    if (attack_ == "fragments") {
      // Every fragment but the last of 110-fragment messages: nothing ever completes.
      uint32_t msg_id = static_cast<uint32_t>(n_ / (wire::kMaxFragments - 1)) + 1;
      auto index = static_cast<uint16_t>(n_ % (wire::kMaxFragments - 1));
      Bytes fr(wire::kFragmentHeaderSize + wire::kMaxChunk, 0x66);
      fr[0] = wire::kFrameFragment;
      wire::put_u32(fr.data() + 1, msg_id);
      wire::put_u16(fr.data() + 5, index);
      wire::put_u16(fr.data() + 7, static_cast<uint16_t>(wire::kMaxFragments));
      return seal(fr);
    }
    if (attack_ == "stores") {
      StoredValue v;
      v.key = dht_key("flood-" + std::to_string(n_));
      v.value = Bytes(1024, 0x55);
      v.version = 1;
      v.owner = me_.public_key();  // unsigned: the victim still pays a signature check per store
      return seal(msg::whole_frame(msg::make(msg::kRequest, static_cast<uint32_t>(n_), static_cast<uint8_t>(Method::kStore),
                                             dht::encode_store(v))));
    }
    // spoofed-source: requests whose answers are large (or as large as possible).
    static constexpr Method kCycle[] = {Method::kFindValue, Method::kFindNode, Method::kStun, Method::kPing};
    Method m = kCycle[n_ % 4];
    Bytes payload = m == Method::kFindValue ? dht::encode_id_request(dht_key("big"))
                    : m == Method::kFindNode ? dht::encode_id_request(me_.id())
                                             : Bytes{};
    return seal(msg::whole_frame(msg::make(msg::kRequest, static_cast<uint32_t>(n_), static_cast<uint8_t>(m), payload)));
  }

 private:
  Bytes garbage(const PublicKey& claimed) {
    Bytes d;
    wire::encode_sealed_header(EngineConfig{}.network_id, claimed, wire::make_nonce(epoch_ + n_, n_, n_), d);
    d.resize(d.size() + 64 + 16, static_cast<uint8_t>(n_));
    return d;
  }
  Bytes seal(ByteView frame) {
    return msg::seal(EngineConfig{}.network_id, me_.public_key(), key_, wire::make_nonce(epoch_, 0xa77ac4, n_), frame);
  }
  std::string attack_;
  Identity me_ = Identity::generate();
  PublicKey victim_key_{}, honest_{};
  crypto::SessionKey key_{};
  std::vector<PublicKey> pool_;
  uint64_t epoch_ = 0, n_ = 0;
};

struct Phase {
  std::vector<double> ping_us;
  int ops = 0, ok = 0;
};

// Sequential ping, put, get rounds from `a` until `seconds` pass.
Phase honest_phase(RealDriver& d, Node& a, const Contact& peer, double seconds, int& key_no) {
  Phase p;
  auto t0 = Clock::now();
  while (seconds_since(t0) < seconds) {
    std::promise<bool> ping, put, get;
    auto start = Clock::now();
    d.post([&] { a.ping(peer, [&](std::optional<NodeId> id) { ping.set_value(id.has_value()); }); });
    bool ok = ping.get_future().get();
    if (ok) p.ping_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    std::string key = "honest-" + std::to_string(key_no++);
    d.post([&] { a.dht().put(key, Bytes(512, 1), [&](const PutResult& r) { put.set_value(r.ok); }); });
    bool put_ok = put.get_future().get();
    d.post([&] { a.dht().get(key, [&](GetResult r) { get.set_value(r.value.has_value()); }); });
    bool get_ok = get.get_future().get();
    p.ops += 3;
    p.ok += ok + put_ok + get_ok;
  }
  return p;
}
}  // namespace

static void add_flood(CLI::App& app) {
  auto attack = std::make_shared<std::string>("fresh-keys");
  auto seconds = std::make_shared<double>(5);
  auto* cmd = app.add_subcommand("flood", "honest pair on 127.0.0.1 under a datagram flood from one attacker");
  cmd->add_option("--attack", *attack, "fresh-keys | forged | fragments | stores | spoofed-source")
      ->check(CLI::IsMember({"fresh-keys", "forged", "fragments", "stores", "spoofed-source"}));
  cmd->add_option("--seconds", *seconds, "attack duration (the baseline runs 2 s)")->check(CLI::Range(0.5, 3600.0));
  cmd->callback([attack, seconds] {
    RealDriver dv, dh;  // victim and honest peer: one thread each
    auto lo = *Endpoint::parse("127.0.0.1:1");
    lo.port = 0;
    Node& b = dv.add_node(lo, Identity::generate());
    Node& a = dh.add_node(lo, Identity::generate());
    Endpoint eb = dv.local_endpoint(b);
    std::promise<bool> joined, stored;
    dh.post([&] { a.dht().bootstrap({eb}, [&](bool ok) { joined.set_value(ok); }); });
    if (!joined.get_future().get()) throw std::runtime_error("bootstrap failed");
    dh.post([&] { a.dht().put("big", Bytes(kMaxValueSize, 9), [&](const PutResult& r) { stored.set_value(r.ok); }); });
    stored.get_future().get();
    Contact peer = Contact::from_key(b.public_key(), eb);

    int key_no = 0;
    Phase base = honest_phase(dh, a, peer, 2, key_no);

    Socket forged_victim;  // the address a spoofed-source attacker forges
    Generator gen(*attack, b, a.public_key());
    Sender sender(eb.port, *attack == "spoofed-source" ? forged_victim.port : 0);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> sent_dg{0}, sent_bytes{0}, back_bytes{0};
    std::thread attacker([&] {
      uint64_t n = 0, bytes = 0, back = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 64; ++i) {
          Bytes d = gen.next();
          sender.send(d);
          ++n;
          bytes += d.size();
        }
        back += sender.spoofing() ? forged_victim.drain() : sender.own.drain();
      }
      sent_dg = n, sent_bytes = bytes, back_bytes = back;
    });
    auto t0 = Clock::now();
    Phase load = honest_phase(dh, a, peer, *seconds, key_no);
    double attack_s = seconds_since(t0);
    stop = true;
    attacker.join();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // late answers still count
    uint64_t back = back_bytes + (sender.spoofing() ? forged_victim.drain() : sender.own.drain());
    double rss = proc_status_kb("VmRSS") / 1024.0;

    nlohmann::json drops = nlohmann::json::object();
    auto counters = dv.call([&] { return NodeInternals::engine(b).drops(); });
    for (size_t r = 0; r < kDropReasonNames.size(); ++r)
      if (counters.by_reason[r]) drops[std::string(kDropReasonNames[r])] = counters.by_reason[r];
    auto stats = dv.call([&] { return NodeInternals::engine(b).stats(); });
    dh.stop();
    dv.stop();
    double p50 = percentile(load.ping_us, 0.5), base50 = percentile(base.ping_us, 0.5);
    print_result({{"workload", "flood"},
                  {"attack", *attack},
                  {"spoofed", sender.spoofing()},
                  {"attack_s", attack_s},
                  {"attack_pps", static_cast<double>(sent_dg) / attack_s},
                  {"honest_rtt_p50_us", p50},
                  {"baseline_rtt_p50_us", base50},
                  {"rtt_ratio", base50 > 0 ? p50 / base50 : 0},
                  {"honest_ok_ratio", load.ops ? static_cast<double>(load.ok) / load.ops : 0},
                  {"honest_ops", load.ops},
                  {"baseline_ok_ratio", base.ops ? static_cast<double>(base.ok) / base.ops : 0},
                  {"victim_rss_mb", rss},
                  {"amplification", sent_bytes ? static_cast<double>(back) / static_cast<double>(sent_bytes.load()) : 0},
                  {"key_derivations", stats.key_derivations},
                  {"cookies_sent", stats.cookies_sent},
                  {"victim_datagrams_in", stats.datagrams_in},
                  {"victim_datagrams_out", stats.datagrams_out},
                  {"victim_bytes_out", stats.bytes_out},
                  {"drops", drops}});
  });
}

STORJNET_WORKLOAD(add_flood);

}  // namespace storjnet::bench
