#include "real/port_mapping.h"

#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#define ENABLE_STRNATPMPERR 1  // declares strnatpmperr (Debian builds it in)
#include <natpmp.h>
#include <sys/select.h>

#include <cstring>

namespace storjnet::real {

namespace {

constexpr int kUpnpConflict = 718;        // ConflictInMappingEntry: another host holds the external port
constexpr int kUpnpOnlyPermanent = 725;   // OnlyPermanentLeasesSupported (IGD v1 routers)

std::string upnp_error(const std::string& what, int code) {
  const char* s = strupnperror(code);
  return std::string("upnp: ") + what + ": " + std::to_string(code) + (s ? std::string(" ") + s : "");
}

// A public external address, or the reason it is not one (a router behind another NAT maps nothing useful).
std::string check_external(const Endpoint& e) {
  if (!e.valid() || e.is_unspecified()) return "router has no external address";
  if (e.is_private_or_loopback()) return "router's external address " + e.to_string() + " is private (double NAT)";
  return "";
}

}  // namespace

struct PortMapper::Igd {
  UPNPUrls urls{};
  IGDdatas data{};
  char lan[64] = {};
  Igd() = default;
  Igd(const Igd&) = delete;
  Igd& operator=(const Igd&) = delete;
  ~Igd() { FreeUPNPUrls(&urls); }
};

PortMapper::PortMapper(PortMappingOptions options) : opt_(std::move(options)), state_(opt_.state) {
  thread_ = std::thread([this] { run(); });
}

PortMapper::~PortMapper() { stop(); }

void PortMapper::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      if (!thread_.joinable()) return;
    }
    stopping_ = true;
    state_.stop();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool PortMapper::wait_first(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return first_done_ || stopping_; });
  return state_.phase() == PortMapState::Phase::kMapped;
}

PortMappingStatus PortMapper::status() const {
  std::lock_guard lock(mu_);
  PortMappingStatus s;
  TimePoint t = now();
  s.state = PortMapState::phase_name(state_.phase());
  s.internal_port = opt_.port;
  s.last_error = state_.last_error();
  s.attempts = state_.attempts();
  s.renewals = state_.renewals();
  s.failures = state_.failures();
  if (auto m = state_.mapped_at()) s.mapped_after_s = std::chrono::duration<double>(*m).count();
  if (state_.phase() == PortMapState::Phase::kMapped && state_.external()) {
    s.protocol = state_.protocol();
    s.external = state_.external()->to_string();
    s.lease_s = std::chrono::duration_cast<std::chrono::seconds>(state_.lease()).count();
    if (auto e = state_.expires_at()) s.expires_in_s = std::chrono::duration_cast<std::chrono::seconds>(*e - t).count();
  }
  return s;
}

void PortMapper::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    TimePoint t = now();
    state_.tick(t);
    auto action = state_.next(t);
    if (action == PortMapState::Action::kRemove) {
      lock.unlock();
      remove();
      lock.lock();
      state_.on_removed();
      continue;
    }
    if (action == PortMapState::Action::kMap) {
      lock.unlock();
      attempt();
      lock.lock();
      first_done_ = true;
      cv_.notify_all();
      continue;
    }
    auto at = state_.wake_at();
    if (!at) break;  // stopped
    cv_.wait_for(lock, *at - t);
  }
  igd_.reset();
}

void PortMapper::attempt() {
  Endpoint external;
  Duration lease{0};
  std::string err = try_upnp(external, lease);
  std::string protocol = "upnp";
  if (!err.empty()) {
    std::string err2 = try_natpmp(external, lease);
    if (err2.empty()) {
      err.clear();
      protocol = "natpmp";
    } else {
      err += "; " + err2;
    }
  }
  std::lock_guard lock(mu_);
  if (err.empty())
    state_.on_mapped(protocol, external, lease, now());
  else
    state_.on_failed(err, now());
}

std::string PortMapper::try_upnp(Endpoint& external, Duration& lease) {
  if (!igd_) {
    int error = 0;
    UPNPDev* devs = upnpDiscover(opt_.discover_ms, nullptr, nullptr, UPNP_LOCAL_PORT_ANY, 0, 2, &error);
    if (!devs) return "upnp: no device answered discovery";
    auto igd = std::make_unique<Igd>();
#if MINIUPNPC_API_VERSION >= 18
    char wan[64] = {};
    int r = UPNP_GetValidIGD(devs, &igd->urls, &igd->data, igd->lan, sizeof igd->lan, wan, sizeof wan);
#else
    int r = UPNP_GetValidIGD(devs, &igd->urls, &igd->data, igd->lan, sizeof igd->lan);
#endif
    freeUPNPDevlist(devs);
    if (r != 1) return "upnp: no connected Internet Gateway Device (" + std::to_string(r) + ")";
    igd_ = std::move(igd);
  }
  const char* control = igd_->urls.controlURL;
  const char* service = igd_->data.first.servicetype;
  char ext_ip[40] = {};
  int r = UPNP_GetExternalIPAddress(control, service, ext_ip);
  if (r != UPNPCOMMAND_SUCCESS) {
    igd_.reset();  // rediscover next time (the router may have restarted or moved)
    return upnp_error("GetExternalIPAddress", r);
  }
  auto ext = Endpoint::from_ip(ext_ip, opt_.port);
  if (!ext) return std::string("upnp: bad external address \"") + ext_ip + "\"";
  if (auto e = check_external(*ext); !e.empty()) return "upnp: " + e;
  std::string port = std::to_string(opt_.port);
  auto lease_s = std::chrono::duration_cast<std::chrono::seconds>(opt_.state.lease).count();
  std::string want = std::to_string(lease_s);
  r = UPNP_AddPortMapping(control, service, port.c_str(), port.c_str(), igd_->lan, opt_.description.c_str(), "UDP",
                          nullptr, want.c_str());
  if (r == kUpnpOnlyPermanent) {
    lease_s = 0;
    r = UPNP_AddPortMapping(control, service, port.c_str(), port.c_str(), igd_->lan, opt_.description.c_str(), "UDP",
                            nullptr, "0");
  }
  if (r == kUpnpConflict) return upnp_error("port " + port + " taken by another host", r);
  if (r != UPNPCOMMAND_SUCCESS) {
    if (r < 0) igd_.reset();
    return upnp_error("AddPortMapping", r);
  }
  external = *ext;
  lease = std::chrono::seconds(lease_s);
  return "";
}

namespace {

// One NAT-PMP request's answer, waiting at most `ms` (libnatpmp's own retries would take a minute).
int natpmp_wait(natpmp_t& n, natpmpresp_t& resp, int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  int r;
  do {
    timeval tv{};
    getnatpmprequesttimeout(&n, &tv);
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return NATPMP_TRYAGAIN;
    if (tv.tv_sec * 1000000 + tv.tv_usec > left.count() || tv.tv_sec < 0) {
      tv.tv_sec = static_cast<time_t>(left.count() / 1000000);
      tv.tv_usec = static_cast<suseconds_t>(left.count() % 1000000);
    }
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(n.s, &fds);
    ::select(n.s + 1, &fds, nullptr, nullptr, &tv);
    r = readnatpmpresponseorretry(&n, &resp);
  } while (r == NATPMP_TRYAGAIN);
  return r;
}

struct NatPmp {
  natpmp_t n{};
  bool open = false;
  ~NatPmp() {
    if (open) closenatpmp(&n);
  }
};

}  // namespace

std::string PortMapper::try_natpmp(Endpoint& external, Duration& lease) {
  NatPmp p;
  int r = initnatpmp(&p.n, 0, 0);
  if (r < 0) return std::string("natpmp: ") + strnatpmperr(r);
  p.open = true;
  natpmpresp_t resp{};
  if ((r = sendpublicaddressrequest(&p.n)) < 0) return std::string("natpmp: ") + strnatpmperr(r);
  if ((r = natpmp_wait(p.n, resp, opt_.natpmp_ms)) < 0)
    return std::string("natpmp: public address: ") + (r == NATPMP_TRYAGAIN ? "no answer" : strnatpmperr(r));
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &resp.pnu.publicaddress.addr, ip, sizeof ip);
  auto ext = Endpoint::from_ip(ip, opt_.port);
  if (!ext) return "natpmp: bad public address";
  if (auto e = check_external(*ext); !e.empty()) return "natpmp: " + e;
  auto lease_s = static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(opt_.state.lease).count());
  if ((r = sendnewportmappingrequest(&p.n, NATPMP_PROTOCOL_UDP, opt_.port, opt_.port, lease_s)) < 0)
    return std::string("natpmp: ") + strnatpmperr(r);
  if ((r = natpmp_wait(p.n, resp, opt_.natpmp_ms)) < 0)
    return std::string("natpmp: mapping: ") + (r == NATPMP_TRYAGAIN ? "no answer" : strnatpmperr(r));
  uint16_t got = resp.pnu.newportmapping.mappedpublicport;
  if (got != opt_.port) {
    // Useless to us (see the header): give it back at once.
    sendnewportmappingrequest(&p.n, NATPMP_PROTOCOL_UDP, opt_.port, got, 0);
    natpmp_wait(p.n, resp, opt_.natpmp_ms);
    return "natpmp: port " + std::to_string(opt_.port) + " taken (router offered " + std::to_string(got) + ")";
  }
  external = *ext;
  lease = std::chrono::seconds(resp.pnu.newportmapping.lifetime);
  return "";
}

void PortMapper::remove() {
  std::string protocol;
  {
    std::lock_guard lock(mu_);
    protocol = state_.protocol();
  }
  std::string port = std::to_string(opt_.port);
  if (protocol == "upnp" && igd_) {
    UPNP_DeletePortMapping(igd_->urls.controlURL, igd_->data.first.servicetype, port.c_str(), "UDP", nullptr);
  } else if (protocol == "natpmp") {
    NatPmp p;
    if (initnatpmp(&p.n, 0, 0) < 0) return;
    p.open = true;
    natpmpresp_t resp{};
    if (sendnewportmappingrequest(&p.n, NATPMP_PROTOCOL_UDP, opt_.port, opt_.port, 0) >= 0)
      natpmp_wait(p.n, resp, std::min(opt_.natpmp_ms, kRemoveWaitMs));
  }
}

}  // namespace storjnet::real
