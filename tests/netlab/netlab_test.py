#!/usr/bin/env python3
"""The netlab test (docs/netlab.md): storjnetd daemons on a lab of network namespaces and NAT routers.

Usage: netlab_test.py STORJNETD [--netlab scripts/netlab] [--public N --v6only N --cone N --restricted N
                      --symmetric N --upnp N] [--keep] [--no-port-mapping]

Needs root and network namespaces; it FAILS (exit 1) when it cannot make them, it never skips. It brings a lab
up under its own prefix (sn-t<pid>-), checks it and takes it down, also on failure or SIGTERM/SIGINT.

Asserts (issue 12, "Real networks"):
  0. every upnp host's node maps its port on the UPnP router (its /api/status, the router's nftables rules and
     `upnpc -l` agree), unsolicited datagrams from a stranger's port reach it, message_send from every node
     behind a cone, restricted or symmetric router to it succeeds, and a clean stop removes its mapping
     (--no-port-mapping: no mapping is made; the rest is measured);
  1. the routers behave as documented (RFC 4787 mapping and filtering per kind, UPnP port mapping by upnpc);
  2. dht_stun on every NATed node answers its router's public address (and port 4000 behind cone and
     restricted routers, which preserve the port);
  3. dht_put on every node, read by every other node with dht_get;
  4. message_send between every ordered pair of nodes (public ones included) is delivered (the pairs only a relay
     connects: measured, see check_nat_to_nat); each pair's path
     (direct, upnp, lan, punched, relayed) comes from the sender's own /api/status, and a relay carries exactly
     the NATed pairs nothing else can connect (traversal_without_relay: symmetric on both sides, symmetric with
     an unmapped port-restricted router); of those, the pairs of a symmetric and a port-restricted router are
     then made direct by the upgrade of their relayed path (birthday punching, check_upgrades: asserted, every
     one, both ways); two hosts behind the one non-hairpinning UPnP router connect over
     their LAN addresses (docs/protocol.md 5.2, "Same router"), asserted both ways; the IPv6-only hosts reach
     the dual-stack public ones and each other directly (asserted not relayed), and the NATed IPv4-only ones,
     with which they share no family, only through dual-stack relays (asserted relayed, docs/protocol.md 5.3,
     "Families");
  5. a 1 MiB stream between every pair of NATed nodes arrives bit-exact (file_send / file_receive), those
     between two hosts behind one router included;
  6. one pubsub topic with every node subscribed: every node publishes events, every node receives each once;
  7. RESULT_JSON lines with the issue's bench fields (pairs, pairs_ok, direct, upnp, lan, punched, relayed,
     connect_ms_p50/p99 and stream_mib_per_s per path kind; the `netlab` line).
Measures without failing the dial-back's addresses.reachable per NAT kind.
"""
import argparse
import ctypes
import hashlib
import ipaddress
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
POLL_SECONDS = 60  # generous bound for every "until it holds" poll
LEASE_S = 30  # the port mapping lease the daemons ask for (--port-mapping-lease)
KEEPALIVE_INTERVAL_S = 15  # a NATed node's keepalive interval (DhtConfig::keepalive_interval)
CHECKS = {"passed": 0, "failed": 0}
FAILURES = []


def log(msg):
    print(msg, flush=True)


def check(cond, what):
    if cond:
        CHECKS["passed"] += 1
    else:
        CHECKS["failed"] += 1
        FAILURES.append(what)
        log(f"FAIL: {what}")
    return cond


def result_json(obj):
    log("RESULT_JSON " + json.dumps(obj, sort_keys=True))


class Lab:
    def __init__(self, netlab, prefix):
        self.netlab = netlab
        self.prefix = prefix
        self.env = dict(os.environ, NETLAB_PREFIX=prefix)
        self.state = f"/run/{prefix}netlab"
        self.hosts = {}  # name -> dict(kind, ns, addr, router, wan, addr6)
        self.ids = {}

    def run(self, *args, check_rc=True, timeout=120):
        p = subprocess.run([self.netlab, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check_rc and p.returncode != 0:
            raise RuntimeError(f"netlab {' '.join(args)} failed (exit {p.returncode}): {p.stderr.strip()}")
        return p

    def load(self):
        with open(f"{self.state}/hosts") as f:
            for line in f:
                if line.startswith("#"):
                    continue
                name, kind, ns, addr, router, wan, addr6 = line.split()
                self.hosts[name] = dict(kind=kind, ns=ns, addr=addr, router=router, wan=wan, addr6=addr6)
        with open(f"{self.state}/ids") as f:
            for line in f:
                name, node_id = line.split()
                self.ids[name] = node_id

    def of_kind(self, *kinds):
        return [h for h, v in self.hosts.items() if v["kind"] in kinds]

    def api_url(self, host):
        """As scripts/netlab's api_url: IPv6-only hosts have no 127.0.0.1, their API listens on ::1."""
        return "http://[::1]:5000" if self.hosts[host]["kind"] == "v6only" else "http://127.0.0.1:5000"

    def rpc_raw(self, host, body, timeout=90):
        cookie = f"{self.state}/node/{host}/data/.cookie"
        with open(cookie) as f:
            token = f.readline().strip()
        p = subprocess.run(
            ["ip", "netns", "exec", self.hosts[host]["ns"], "curl", "-gsS", "--max-time", str(timeout),
             "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json",
             "--data-binary", "@-", self.api_url(host) + "/"],
            input=json.dumps(body), capture_output=True, text=True, timeout=timeout + 10)
        if p.returncode != 0:
            raise RuntimeError(f"rpc on {host}: curl exit {p.returncode}: {p.stderr.strip()}")
        return json.loads(p.stdout)

    def status(self, host, timeout=30):
        """GET /api/status of host's node (docs/api.md)."""
        with open(f"{self.state}/node/{host}/data/.cookie") as f:
            token = f.readline().strip()
        p = subprocess.run(
            ["ip", "netns", "exec", self.hosts[host]["ns"], "curl", "-gsS", "--max-time", str(timeout),
             "-H", f"Authorization: Bearer {token}", self.api_url(host) + "/api/status"],
            capture_output=True, text=True, timeout=timeout + 10)
        if p.returncode != 0:
            raise RuntimeError(f"/api/status on {host}: curl exit {p.returncode}: {p.stderr.strip()}")
        return json.loads(p.stdout)

    def node_port(self, host):
        """As scripts/netlab's node_port: upnpN listens on 4000+N-1 (they share one router), the others on 4000."""
        m = re.fullmatch(r"upnp(\d+)", host)
        return 4000 + int(m.group(1)) - 1 if m else 4000

    def call(self, host, method, params=None):
        r = self.rpc_raw(host, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        if "error" in r:
            raise RuntimeError(f"{method} on {host}: {r['error']}")
        return r["result"]

    def batch(self, host, calls):
        """calls: [(method, params)] -> [result or None on error], in order."""
        if not calls:
            return []
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        out = [None] * len(calls)
        for r in self.rpc_raw(host, body):
            if "result" in r:
                out[r["id"]] = r["result"]
        return out


def parallel(fn, items):
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(items)))) as ex:
        return dict(zip(items, ex.map(fn, items)))


# ---------------------------------------------------------------------------------------- NAT behaviour probes

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def udp_socket_in(ns, port):
    """A UDP socket bound to 0.0.0.0:port inside network namespace ns (sockets keep the namespace they were
    made in, so one thread can use sockets of every host)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", port))
            s.setblocking(False)
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)
    return s


def flush_conntrack(ns):
    """Deletes every conntrack entry (so every NAT mapping and filter entry) in network namespace ns, as a
    router's mappings expire when idle: one ctnetlink IPCTNL_MSG_CT_DELETE without attributes for AF_INET (what
    `conntrack -F` sends; conntrack-tools is not needed). Returns the netlink error code (0: done)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)
    with s:
        s.bind((0, 0))
        s.settimeout(5)
        # nlmsghdr: len, type (NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE), flags (REQUEST | ACK), seq, pid;
        # nfgenmsg: family AF_INET, version 0, res_id 0.
        s.send(struct.pack("=IHHII", 20, (1 << 8) | 2, 1 | 4, 1, 0) + struct.pack("=BBH", socket.AF_INET, 0, 0))
        ack = s.recv(4096)
        return struct.unpack_from("=i", ack, 16)[0] if len(ack) >= 20 else -1


def recv_from(sock, want_payload, seconds):
    """Waits up to `seconds` for a datagram whose payload is want_payload; returns its source or None."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if r:
            data, src = sock.recvfrom(2048)
            if data == want_payload:
                return src


def probe_nat(lab, host, port_base=5500):
    """RFC 4787 behaviour of host's router, seen from three public hosts. Returns a dict."""
    h = lab.hosts[host]
    pubs = lab.of_kind("public")[:3]
    ns = {p: lab.hosts[p]["ns"] for p in pubs}
    a, b, c = pubs
    inner = udp_socket_in(h["ns"], 4100)
    sa = udp_socket_in(ns[a], port_base)
    sa2 = udp_socket_in(ns[a], port_base + 1)
    sb = udp_socket_in(ns[b], port_base)
    sc = udp_socket_in(ns[c], port_base)
    try:
        tag = f"{host}:{time.monotonic_ns()}".encode()
        out = {}
        # Outbound to two destinations: the mappings they see.
        inner.sendto(tag + b"/a", (lab.hosts[a]["addr"], port_base))
        inner.sendto(tag + b"/b", (lab.hosts[b]["addr"], port_base))
        ma = recv_from(sa, tag + b"/a", 10)
        mb = recv_from(sb, tag + b"/b", 10)
        if ma is None or mb is None:
            return {"host": host, "kind": h["kind"], "error": "outbound probe lost"}
        out["mapped_a"], out["mapped_b"] = f"{ma[0]}:{ma[1]}", f"{mb[0]}:{mb[1]}"
        out["public_ip_ok"] = ma[0] == h["wan"] and mb[0] == h["wan"]
        out["mapping"] = "endpoint-independent" if ma == mb else "address-and-port-dependent"
        out["port_preserved"] = ma[1] == 4100
        # The contacted endpoint answers: always passes.
        sa.sendto(tag + b"/reply", ma)
        out["reply_ok"] = recv_from(inner, tag + b"/reply", 10) is not None
        # Unsolicited: the same host from another port, and a host never contacted. A negative answer can only
        # be observed by waiting (1.5 s, for both at once); a cone router lets both through.
        sa2.sendto(tag + b"/other-port", ma)
        sc.sendto(tag + b"/other-host", ma)
        got = set()
        deadline = time.monotonic() + 1.5
        while len(got) < 2 and time.monotonic() < deadline:
            if select.select([inner], [], [], max(0.0, deadline - time.monotonic()))[0]:
                data, _ = inner.recvfrom(2048)
                got.add(data)
        got_port = tag + b"/other-port" in got
        got_host = tag + b"/other-host" in got
        if got_port and got_host:
            out["filtering"] = "endpoint-independent"
        elif got_port:
            out["filtering"] = "address-dependent"
        elif not got_host:
            out["filtering"] = "address-and-port-dependent"
        else:
            out["filtering"] = "inconsistent"
        return {"host": host, "kind": h["kind"], **out}
    finally:
        for s in (inner, sa, sa2, sb, sc):
            s.close()


EXPECTED_NAT = {
    "cone": dict(mapping="endpoint-independent", filtering="endpoint-independent", port_preserved=True),
    "restricted": dict(mapping="endpoint-independent", filtering="address-and-port-dependent", port_preserved=True),
    "symmetric": dict(mapping="address-and-port-dependent", filtering="address-and-port-dependent"),
    "upnp": dict(mapping="endpoint-independent", filtering="address-and-port-dependent"),
}


def check_nat_kinds(lab):
    kinds = [k for k in EXPECTED_NAT if lab.of_kind(k)]
    probes = parallel(lambda k: probe_nat(lab, lab.of_kind(k)[0], 5500 + 10 * kinds.index(k)), kinds)
    for kind in kinds:
        want, hosts, got = EXPECTED_NAT[kind], lab.of_kind(kind), probes[kind]
        result_json({"bench": "netlab_nat", **got})
        check("error" not in got, f"NAT probe of {hosts[0]}: {got.get('error')}")
        if "error" in got:
            continue
        check(got["public_ip_ok"], f"{kind}: mapped address {got['mapped_a']} is not the router's {lab.hosts[hosts[0]]['wan']}")
        check(got["reply_ok"], f"{kind}: the contacted endpoint's reply did not come through")
        for k, v in want.items():
            check(got[k] == v, f"{kind}: {k} is {got[k]}, expected {v}")


def check_upnp_mapping(lab):
    """upnpc maps an external UDP port on the UPnP router; an unsolicited packet to it reaches the host."""
    hosts = lab.of_kind("upnp")
    if not hosts:
        return
    host = hosts[-1]
    h = lab.hosts[host]
    ns = h["ns"]
    port = 4200
    sock = udp_socket_in(ns, port)
    try:
        p = subprocess.run(["ip", "netns", "exec", ns, "upnpc", "-e", "netlab test", "-a", h["addr"], str(port),
                            str(port), "UDP"], capture_output=True, text=True, timeout=60)
        mapped = f"external {h['wan']}:{port} UDP is redirected to internal {h['addr']}:{port}" in p.stdout
        check(mapped, f"upnpc -a on {host}: exit {p.returncode}: {p.stdout[-400:]} {p.stderr[-200:]}")
        pub = lab.of_kind("public")[-1]
        sp = udp_socket_in(lab.hosts[pub]["ns"], 5557)
        try:
            tag = b"upnp-" + str(time.monotonic_ns()).encode()
            sp.sendto(tag, (h["wan"], port))
            ok = recv_from(sock, tag, 10) is not None
        finally:
            sp.close()
        check(ok, f"an unsolicited packet from {pub} to the UPnP mapping {h['wan']}:{port} did not reach {host}")
        d = subprocess.run(["ip", "netns", "exec", ns, "upnpc", "-d", str(port), "UDP"], capture_output=True,
                           text=True, timeout=60)
        check(d.returncode == 0, f"upnpc -d on {host}: exit {d.returncode}")
        result_json({"bench": "netlab_upnp", "host": host, "mapped": mapped, "unsolicited_delivered": ok})
    finally:
        sock.close()


# ---------------------------------------------------------------------------------------- node checks

def check_stun(lab):
    nat = lab.of_kind("cone", "restricted", "symmetric", "upnp")
    answers = parallel(lambda h: lab.call(h, "dht_stun"), nat)
    for h in nat:
        kind, wan = lab.hosts[h]["kind"], lab.hosts[h]["wan"]
        a = answers[h]
        ok_ip = isinstance(a, list) and a[0] == wan
        check(ok_ip, f"dht_stun on {h} ({kind}): {a}, expected the router's address {wan}")
        if kind in ("cone", "restricted"):
            check(ok_ip and a[1] == 4000, f"dht_stun on {h} ({kind}): {a}, expected port 4000 (preserved)")
    result_json({"bench": "netlab_stun", "answers": {h: answers[h] for h in nat}})


def check_nat_view(lab):
    """Each node's own verdict on its NAT (/api/status addresses.nat, docs/protocol.md 5.1 "Mapping"), from several
    peers' stun answers: the symmetric hosts see a new port per destination ("dependent", their router's address),
    the rest one port for every destination ("independent": their own address when public, else their router's);
    IPv6-only hosts have no IPv4 verdict. Polled while verdicts are still "unknown" (a node asks 10 s after it
    starts, again after 30 s, 60 s, ... while it has too few contacts)."""
    hosts = [h for h in lab.hosts if lab.hosts[h]["kind"] != "v6only"]
    deadline = time.monotonic() + 240
    while True:
        st = parallel(lambda h: lab.status(h)["addresses"]["nat"], hosts)
        if all(st[h]["v4"]["mapping"] != "unknown" for h in hosts) or time.monotonic() > deadline:
            break
        time.sleep(5)
    for h in hosts:
        kind, v4 = lab.hosts[h]["kind"], st[h]["v4"]
        if kind == "public":
            want = ("independent", f"{lab.hosts[h]['addr']}:4000")
        elif kind == "symmetric":
            want = ("dependent", lab.hosts[h]["wan"])
        else:
            want = ("independent", None)
        ok = v4["mapping"] == want[0] and (v4["address"] == want[1] if want[1] else
                                          str(v4["address"]).startswith(lab.hosts[h]["wan"] + ":"))
        check(ok, f"addresses.nat.v4 on {h} ({kind}): {v4}, expected {want[0]} at {want[1] or lab.hosts[h]['wan']}")
    result_json({"bench": "netlab_nat_view", "hosts": len(hosts),
                 "verdicts": {h: [st[h]["v4"]["mapping"], st[h]["v4"]["address"]] for h in hosts}})


def check_dht(lab):
    hosts = list(lab.hosts)
    t0 = time.monotonic()
    puts = parallel(lambda h: lab.call(h, "dht_put", [f"netlab/{h}", {"host": h, "id": lab.ids[h]}]), hosts)
    for h in hosts:
        check(puts[h] is True, f"dht_put on {h} answered {puts[h]}")
    want = {(r, w) for r in hosts for w in hosts if r != w}
    missing = set(want)
    deadline = time.monotonic() + POLL_SECONDS
    while missing and time.monotonic() < deadline:
        by_reader = {}
        for r, w in missing:
            by_reader.setdefault(r, []).append(w)

        def read(r):
            ws = by_reader[r]
            return list(zip(ws, lab.batch(r, [("dht_get", [f"netlab/{w}"]) for w in ws])))

        for r, res in parallel(read, list(by_reader)).items():
            for w, v in res:
                if isinstance(v, dict) and v.get("host") == w and v.get("id") == lab.ids[w]:
                    missing.discard((r, w))
    got = len(want) - len(missing)
    # Reads across the families: an IPv6-only node's value read by an IPv4-only (NATed) node, or the other way.
    v4only = set(lab.of_kind("cone", "restricted", "symmetric", "upnp"))
    v6only = set(lab.of_kind("v6only"))
    cross = {(r, w) for r, w in want if (r in v4only and w in v6only) or (r in v6only and w in v4only)}
    result_json({"bench": "netlab_dht", "puts": len(hosts), "puts_ok": sum(puts[h] is True for h in hosts),
                 "gets": len(want), "gets_ok": got, "gets_cross_family": len(cross),
                 "gets_cross_family_ok": len(cross - missing), "seconds": round(time.monotonic() - t0, 2)})
    check(not missing, f"dht_get: {len(missing)} of {len(want)} (reader, writer) pairs never read the value, "
                       f"e.g. {sorted(missing)[:5]}")


def send_all(lab, pairs, label, batched=True):
    """message_send for every (src, dst) pair, all at once: batched per sender, or one call per pair (then the
    time of each call is its own). Then polls message_list on the receivers until every message that was
    accepted arrived. Returns {pair: (accepted, received, ms)}."""
    nonce = f"{label}-{time.monotonic_ns()}"

    def body(s, d):
        return [lab.ids[d], {"netlab": nonce, "from": s, "to": d}]

    accepted = {}
    if batched:
        by_src = {}
        for s, d in pairs:
            by_src.setdefault(s, []).append(d)

        def send(s):
            t = time.monotonic()
            res = lab.batch(s, [("message_send", body(s, d)) for d in by_src[s]])
            return [(d, r, (time.monotonic() - t) * 1000) for d, r in zip(by_src[s], res)]

        for s, res in parallel(send, list(by_src)).items():
            for d, r, ms in res:
                accepted[(s, d)] = (r is True, ms)
    else:
        def send_one(p):
            t = time.monotonic()
            try:
                r = lab.call(p[0], "message_send", body(*p))
            except RuntimeError:
                r = None
            return (r is True, (time.monotonic() - t) * 1000)

        accepted = parallel(send_one, list(pairs))
    received = set()
    expect = {p for p, (ok, _) in accepted.items() if ok}
    receivers = sorted({d for _, d in pairs})
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        for d, msgs in parallel(lambda d: lab.call(d, "message_list"), receivers).items():
            for sender_id, lst in (msgs or {}).items():
                for m in lst:
                    if isinstance(m, dict) and m.get("netlab") == nonce and m.get("to") == d:
                        received.add((m.get("from"), d))
        if expect <= received or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {p: (accepted[p][0], p in received, accepted[p][1]) for p in pairs}


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 1)


# What the summary line (summary()) reads: {(src, dst): (delivered, path, ms or None)} for every ordered pair of
# nodes, and {(src, dst): (path, MiB/s)} for the streams.
RESULTS = {"pairs": {}, "streams": {}}


def check_messages(lab, mapping_on):
    """message_send between every public node and every other node, each way (public pairs included), batched per
    sender; each delivered pair's path from the sender's /api/status right after. The IPv6-only hosts with the
    (dual-stack) public ones and with each other: delivered, and never relayed (they share IPv6)."""
    pubs = lab.of_kind("public")
    sixes = lab.of_kind("v6only")
    nat = lab.of_kind("cone", "restricted", "symmetric", "upnp")
    for label, pairs in (("public_to_public", [(a, b) for a in pubs for b in pubs if a != b]),
                         ("v6only_with_public", [(a, b) for a in sixes for b in pubs + sixes if a != b] +
                          [(p, s) for p in pubs for s in sixes]),
                         ("nat_to_public", [(n, p) for n in nat for p in pubs]),
                         ("public_to_nat", [(p, n) for p in pubs for n in nat])):
        if not pairs:
            continue
        res = send_all(lab, pairs, label)
        status = parallel(lambda h: lab.status(h), sorted({a for a, _ in pairs}))
        ok = [p for p, (acc, rec, _) in res.items() if acc and rec]
        for p in pairs:
            RESULTS["pairs"][p] = (p in ok, path_of(lab, status, p[0], p[1], mapping_on), None)
        bad = [p for p in pairs if p not in ok]
        ms = [res[p][2] for p in ok]
        paths = {k: sum(1 for p in ok if RESULTS["pairs"][p][1] == k) for k in PATH_KINDS}
        result_json({"bench": "netlab_messages", "direction": label, "pairs": len(pairs), "pairs_ok": len(ok),
                     "batch_ms_p50": pct(ms, 0.5), "batch_ms_p99": pct(ms, 0.99), **paths})
        check(not bad, f"message_send {label}: {len(bad)} of {len(pairs)} pairs failed, e.g. "
                       f"{[(p, res[p][:2]) for p in bad[:6]]}")
        if label == "v6only_with_public":
            relayed = [f"{a}->{b}" for a, b in ok if RESULTS["pairs"][(a, b)][1] == "relayed"]
            check(not relayed, f"message_send {label}: relayed although both have IPv6: {relayed}")


def check_v6only_nat(lab, mapping_on):
    """message_send between every IPv6-only host and every NATed (IPv4-only) host, each way, one call each. They
    share no family, so nothing but a dual-stack relay connects them (docs/protocol.md 5.3, "Families": a
    single-family node in a mixed network keeps reservations with relays that have an address of the other
    family, and a fallback picks a listed relay of a family the initiator sends on). Two rounds, as in
    check_nat_to_nat: IPv6-only -> NATed first, then NATed -> IPv6-only. Asserted: every pair delivered, and
    through a relay (the sender's relay.paths)."""
    sixes = lab.of_kind("v6only")
    nat = lab.of_kind("cone", "restricted", "symmetric", "upnp")
    hosts = sixes + nat
    rounds = (("v6only_to_nat", [(s, n) for s in sixes for n in nat]),
              ("nat_to_v6only", [(n, s) for s in sixes for n in nat]))
    pairs = rounds[0][1] + rounds[1][1]
    if not pairs:
        return
    counters = relay_counters(lab, hosts)
    res, path = {}, {}
    for label, sub in rounds:
        r = send_all(lab, sub, label, batched=False)
        res.update(r)
        status = parallel(lambda h: lab.status(h), hosts)
        path.update({p: path_of(lab, status, p[0], p[1], mapping_on) for p in sub})
        sub_ok = [p for p in sub if r[p][0] and r[p][1]]
        ms = [r[p][2] for p in sub_ok]
        result_json({"bench": "netlab_messages", "direction": label, "pairs": len(sub), "pairs_ok": len(sub_ok),
                     "send_ms_p50": pct(ms, 0.5), "send_ms_p99": pct(ms, 0.99),
                     **{k: sum(1 for p in sub_ok if path[p] == k) for k in PATH_KINDS}})
    after = relay_counters(lab, hosts)
    ok = [p for p in pairs if res[p][0] and res[p][1]]
    for p in pairs:
        RESULTS["pairs"][p] = (p in ok, path[p], res[p][2])
    result_json({"bench": "netlab_v6only_relays", "relay_fallbacks_found": sum(after[h][0] - counters[h][0] for h in hosts),
                 "relayed_out": sum(after[h][1] - counters[h][1] for h in hosts),
                 "reservations_held": {h: status[h].get("relay", {}).get("reservations_held", 0) for h in sixes}})
    bad = [f"{a}->{b}" for a, b in pairs if (a, b) not in ok]
    if not check(not bad, f"message_send IPv6-only <-> NATed IPv4-only: {len(bad)} of {len(pairs)} failed: {bad}"):
        diagnose_relayed(lab, [p for p in pairs if p not in ok])
    unrelayed = [f"{a}->{b} ({path[(a, b)]})" for a, b in ok if path[(a, b)] != "relayed"]
    check(not unrelayed, f"message_send IPv6-only <-> NATed IPv4-only: delivered but not relayed: {unrelayed}")


def traversal_without_relay(ka, kb, mapping_on):
    """Whether a node behind a `ka` router can reach one behind `kb` without a relay: directly, through a mapped
    port, through a punched hole, or (two hosts behind the one UPnP router, which does not hairpin) at the LAN
    address the punch passes between nodes at one public address (docs/protocol.md 5.2, "Same router"). Not:
    symmetric on both sides, or symmetric with a port-restricted router without a mapping (the symmetric side's
    port towards the other is new and random, and the other's filter lets only announced ports in; port
    prediction cannot guess `masquerade random`). Those pairs need a relay (docs/protocol.md 5.3)."""
    if ka == kb == "upnp":
        return True
    if "symmetric" in (ka, kb):
        other = kb if ka == "symmetric" else ka
        return other == "cone" or (other == "upnp" and mapping_on)
    return True


def birthday_pair(ka, kb, mapping_on):
    """Whether only a relay connects a node behind a `ka` router to one behind `kb` at first, and the upgrade of
    the relayed path then makes it direct by birthday punching (docs/protocol.md 5.2, "Upgrade"): symmetric with
    a port-restricted router (restricted, or the UPnP router without a mapping). Symmetric on both sides stays
    relayed."""
    if "symmetric" not in (ka, kb) or ka == kb:
        return False
    other = kb if ka == "symmetric" else ka
    return other == "restricted" or (other == "upnp" and not mapping_on)


UPGRADE_WAIT_S = 45


def check_upgrades(lab, mapping_on):
    """The pairs a relay connects first and birthday punching then makes direct (birthday_pair), both ways: each
    side's /api/status is polled until it reaches the other by a punched path (path_of: no relayed path, and
    punched_paths, which lists an upgrade of either side's), for at most UPGRADE_WAIT_S from the end of the
    message rounds (an upgrade starts 1.5 s after its relayed path carried something; a failed try is tried again
    10 s later, 3 tries). Asserted: every such pair direct. The pair's path in the summary becomes "punched" (its
    connect_ms stays that of its first message, through the relay)."""
    nat = lab.of_kind("cone", "restricted", "symmetric", "upnp")
    pairs = [(a, b) for a in nat for b in nat
             if a != b and birthday_pair(lab.hosts[a]["kind"], lab.hosts[b]["kind"], mapping_on)]
    if not pairs:
        return
    t0 = time.monotonic()
    while True:
        status = parallel(lambda h: lab.status(h), nat)
        path = {p: path_of(lab, status, p[0], p[1], mapping_on) for p in pairs}
        left = [p for p in pairs if path[p] != "punched"]
        if not left or time.monotonic() - t0 > UPGRADE_WAIT_S:
            break
        time.sleep(1)
    seconds = round(time.monotonic() - t0, 1)
    check(not left, f"upgrade of relayed paths (birthday punching): {len(left)} of {len(pairs)} pairs not direct "
                    f"after {seconds} s: {[f'{a}->{b} ({path[(a, b)]})' for a, b in left]}")
    fields = ("upgrade_syncs_sent", "upgrade_syncs_served", "upgrades_ok", "upgrades_failed", "upgrades_futile",
              "birthdays", "birthday_ports", "birthday_probes", "upgrade_refused")
    totals = {k: sum(status[h].get("nat_traversal", {}).get(k, 0) for h in nat) for k in fields}
    result_json({"bench": "netlab_upgrade", "mapping": mapping_on, "pairs": len(pairs),
                 "direct": len(pairs) - len(left), "seconds": seconds, **totals})
    for p in pairs:
        if p in RESULTS["pairs"] and RESULTS["pairs"][p][0]:
            RESULTS["pairs"][p] = (True, path[p], RESULTS["pairs"][p][2])


def path_of(lab, status, src, dst, mapping_on):
    """How src reaches dst, from src's own /api/status: "relayed" while src has a relayed path to dst
    (relay.paths), "lan" when src reaches dst at its LAN address (its punch did, punched_paths or peers[].path, or
    its routing table holds that address: same router), "punched" when
    src last reached dst through a hole it or an upgrade punched (punched_paths), "upnp" when dst's
    node mapped its port on the UPnP router (the node cannot tell this one: the test knows the layout), else
    "direct"."""
    st, dst_id = status[src], lab.ids[dst]
    if any(p.get("peer") == dst_id for p in st.get("relay", {}).get("paths", [])):
        return "relayed"
    peer = next((p for p in st.get("peers", []) if p.get("id") == dst_id), None)
    if peer is not None and peer.get("path") == "relayed":
        return "relayed"
    # The routing table need not hold every peer a node talks to: punched_paths lists those reached through a hole.
    punched = next((p for p in st.get("punched_paths", []) if p.get("peer") == dst_id), None)
    if punched is not None:
        return punched["path"]
    if peer is not None and peer.get("path") in ("lan", "punched"):
        return peer["path"]
    if peer is not None and peer.get("address", "").startswith("192.168."):
        return "lan"  # src reaches dst at its LAN address (the reverse of a LAN punch: no punch needed)
    if mapping_on and lab.hosts[dst]["kind"] == "upnp":
        return "upnp"
    return "direct"


PATH_KINDS = ("direct", "upnp", "lan", "punched", "relayed")


def relay_counters(lab, hosts):
    """Per host: the relay fallbacks that set a relayed path (relay.fallbacks_found), and datagrams sent through
    a relay (relay.relayed_out)."""
    st = parallel(lambda h: lab.status(h).get("relay", {}), hosts)
    return {h: (st[h].get("fallbacks_found", 0), st[h].get("relayed_out", 0)) for h in hosts}


def relay_list(lab, target):
    """target's published relay list (docs/protocol.md 5.3: 01 | count | count x (public key | endpoint)), read
    from a public node: [(relay host name or id, "ip:port")], or a string saying why there is none."""
    names = {v: k for k, v in lab.ids.items()}
    try:
        got = lab.call(lab.of_kind("public")[0], "dht_get_all", [f"storjnet-relay/{lab.ids[target]}"])
    except RuntimeError as e:
        return f"error: {e}"
    mine = [g for g in got if g.get("owner") == lab.ids[target]]
    if not mine or "hex" not in mine[0].get("value", {}):
        return "none"
    b = bytes.fromhex(mine[0]["value"]["hex"])
    out, at = [], 2
    for _ in range(b[1] if len(b) > 1 else 0):
        key = b[at:at + 32]
        at += 32
        if b[at] == 4:
            ep = f"{'.'.join(str(x) for x in b[at + 1:at + 5])}:{int.from_bytes(b[at + 5:at + 7], 'big')}"
            at += 7
        else:
            ep = f"[{ipaddress.IPv6Address(b[at + 1:at + 17])}]:{int.from_bytes(b[at + 17:at + 19], 'big')}"
            at += 19
        rid = hashlib.blake2b(key, digest_size=20).hexdigest()
        out.append((names.get(rid, rid[:8]), ep))
    return out


def diagnose_pairs(lab, failed):
    """Logs, for failed pairs, how each sender knows its target: the routing-table entry (address, path) and any
    relayed path, beside the target's own observed address."""
    names = {v: k for k, v in lab.ids.items()}
    for b in sorted({b for _, b in failed}):
        st = lab.status(b)
        log(f"DIAG: target {b}: observed {st.get('addresses', {}).get('observed')}, reachability "
            f"{st.get('addresses', {}).get('reachability')}, port mapping {st.get('port_mapping')}")
    for a, b in failed[:12]:
        st = lab.status(a)
        entry = next((p for p in st.get("peers", []) if p.get("id") == lab.ids[b]), None)
        paths = [names.get(p["relay"], p["relay"][:8]) for p in st.get("relay", {}).get("paths", [])
                 if p.get("peer") == lab.ids[b]]
        log(f"DIAG: sender {a} -> {b}: table entry {entry}; relayed via {paths}; relay "
            f"{ {k: v for k, v in st.get('relay', {}).items() if k != 'paths'} }; nat "
            f"{st.get('nat_traversal')}")


def diagnose_relayed(lab, failed):
    """Logs, for relay-only pairs that failed, what each side knew: the target's published relays and its relay
    counters, and the sender's relayed path to the target (docs/netlab.md, "Hole punching")."""
    names = {v: k for k, v in lab.ids.items()}
    for b in sorted({b for _, b in failed}):
        st = lab.status(b)
        r = {k: v for k, v in st.get("relay", {}).items() if k != "paths"}
        log(f"DIAG: target {b} ({st.get('addresses', {}).get('observed')}): published relays {relay_list(lab, b)}; "
            f"relay counters {r}")
    for a, b in failed:
        st = lab.status(a)
        paths = [names.get(p["relay"], p["relay"][:8]) for p in st.get("relay", {}).get("paths", [])
                 if p.get("peer") == lab.ids[b]]
        r = st.get("relay", {})
        log(f"DIAG: sender {a} -> {b}: relayed path via {paths}; fallbacks {r.get('fallbacks')}, found "
            f"{r.get('fallbacks_found')}, switched {r.get('paths_switched')}")


def check_nat_to_nat(lab, mapping_on=False):
    """message_send between every ordered pair of NATed nodes: every one must be delivered (issue 12: every pair
    connects). Two rounds, so that no pair is helped by its reverse sending at the same moment (an accidental
    simultaneous open): "forward", every pair (a, b) with a listed before b; then "reverse", every (b, a), after
    a's attempt opened a's router towards b. The DHT traffic of the earlier steps (lookups that reach NATed
    nodes at the public mappings other nodes saw) has left state in the routers, so they are flushed first and
    only the keepalives towards the rendezvous are let to reopen them. Each delivered pair's path comes from
    the sender's own /api/status right after its round (path_of); asserted: a relay carries only the pairs
    nothing else can connect (traversal_without_relay), and every such pair is relayed."""
    nat = lab.of_kind("cone", "restricted", "symmetric", "upnp")
    first = [(a, b) for i, a in enumerate(nat) for b in nat[i + 1:]]
    reverse = [(b, a) for a, b in first]
    if not first:
        return
    # The earlier steps' DHT traffic opened most routers towards most peers. As in the field once mappings
    # idle out, every router forgets them here; then, within one keepalive interval (15 s), the NATed nodes'
    # keepalives open their routers again towards their rendezvous peers only.
    routers = sorted({lab.hosts[h]["router"] for h in nat})
    keepalives = lambda: parallel(lambda h: lab.status(h).get("nat_traversal", {}).get("keepalives_sent", 0), nat)
    errors = {r: flush_conntrack(r) for r in routers}
    check(all(e == 0 for e in errors.values()), f"conntrack flush on the routers: {errors}")
    before = keepalives()  # read after the flush: a keepalive counted from here on went through empty routers
    # Wait (on the nodes' own counters, not a fixed time) until every node that keeps its mappings alive has
    # sent its next round of keepalives after the flush.
    sending = [h for h in nat if before[h] > 0]
    deadline = time.monotonic() + KEEPALIVE_INTERVAL_S + POLL_SECONDS
    while True:
        now = keepalives()
        late = [h for h in sending if now[h] <= before[h]]
        if not late or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    check(not late, f"keepalives after the conntrack flush: none from {late}")
    # The same for relay reservations: a NATed node renews each one every keepalive interval, and a renewal
    # through the emptied router moves the relay's delivery address to the new mapping (docs/protocol.md 5.3).
    # Until then a relay delivers to the mapping the flush removed. Wait until every node that held
    # reservations has had as many renewed (or made anew) as it held.
    def reservations():
        st = parallel(lambda h: lab.status(h).get("relay", {}), nat)
        return {h: (st[h].get("reservations_held", 0),
                    st[h].get("reservations_renewed", 0) + st[h].get("reservations_made", 0)) for h in nat}
    held = reservations()
    deadline = time.monotonic() + KEEPALIVE_INTERVAL_S + POLL_SECONDS
    while True:
        now = reservations()
        unrenewed = [h for h in nat if held[h][0] and now[h][1] - held[h][1] < held[h][0]]
        if not unrenewed or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    check(not unrenewed, f"relay reservations after the conntrack flush: not renewed by {unrenewed}")
    res, path, fallbacks = {}, {}, 0
    counters = relay_counters(lab, nat)
    for label, pairs in (("forward", first), ("reverse", reverse)):
        r = send_all(lab, pairs, label, batched=False)
        res.update(r)
        status = parallel(lambda h: lab.status(h), nat)
        for p in pairs:
            path[p] = path_of(lab, status, p[0], p[1], mapping_on)
        after = {h: (status[h].get("relay", {}).get("fallbacks_found", 0),
                     status[h].get("relay", {}).get("relayed_out", 0)) for h in nat}
        round_fallbacks = sum(after[h][0] - counters[h][0] for h in nat)
        fallbacks += round_fallbacks
        counters = after
        ok = [p for p in pairs if r[p][0] and r[p][1]]
        ms = [r[p][2] for p in ok]
        fail_ms = [r[p][2] for p in pairs if p not in ok]
        result_json({"bench": "netlab_nat_pairs", "round": label, "pairs": len(pairs), "pairs_ok": len(ok),
                     "send_ms_p50": pct(ms, 0.5), "send_ms_p99": pct(ms, 0.99),
                     "failed_send_ms_p50": pct(fail_ms, 0.5), "relay_fallbacks_found": round_fallbacks,
                     **{k: sum(1 for p in ok if path[p] == k) for k in PATH_KINDS}})
    pairs = first + reverse
    ok = [p for p in pairs if res[p][0] and res[p][1]]
    by_path = {k: [p for p in ok if path[p] == k] for k in PATH_KINDS}
    status = parallel(lambda h: lab.status(h), nat)
    traversal = {}
    for h in nat:
        for k, v in status[h].get("nat_traversal", {}).items():
            traversal[k] = traversal.get(k, 0) + v
    need_relay = {p for p in pairs if not traversal_without_relay(lab.hosts[p[0]]["kind"], lab.hosts[p[1]]["kind"],
                                                                  mapping_on)}
    # Asserted: every pair, those that need no relay and those only a relay connects (at first: birthday punching
    # makes some of them direct later, check_upgrades). Each kind is diagnosed its own way when one fails.
    failed = [f"{a}->{b}" for a, b in pairs if (a, b) not in ok and (a, b) not in need_relay]
    if not check(not failed, f"message_send between NATed nodes (no relay needed): {len(failed)} failed: {failed}"):
        diagnose_pairs(lab, [(a, b) for a, b in pairs if (a, b) not in ok and (a, b) not in need_relay])
    relay_failed = [f"{a}->{b}" for a, b in pairs if (a, b) not in ok and (a, b) in need_relay]
    if not check(not relay_failed, f"message_send between NATed nodes only a relay connects: {len(relay_failed)} of "
                                   f"{len(need_relay)} failed: {relay_failed}"):
        diagnose_relayed(lab, [(a, b) for a, b in pairs if (a, b) not in ok and (a, b) in need_relay])
    needless = [f"{a}->{b}" for a, b in by_path["relayed"] if (a, b) not in need_relay]
    check(not needless, f"relayed although a direct path, a mapping or a punch can connect them: {needless}")
    # A pair birthday punching connects may already be direct (check_upgrades waits for every one of them).
    unrelayed = [f"{a}->{b} ({path[(a, b)]})" for a, b in ok if (a, b) in need_relay and path[(a, b)] != "relayed"
                 and not (birthday_pair(lab.hosts[a]["kind"], lab.hosts[b]["kind"], mapping_on)
                          and path[(a, b)] == "punched")]
    check(not unrelayed, f"pairs only a relay can connect, delivered but not seen relayed: {unrelayed}")
    # Two hosts behind one router: both ways, over their LAN addresses (docs/protocol.md 5.2, "Same router").
    same = [p for p in pairs if lab.hosts[p[0]]["router"] == lab.hosts[p[1]]["router"]]
    not_lan = [f"{a}->{b} ({path[(a, b)] if (a, b) in ok else 'failed'})" for a, b in same
               if (a, b) not in ok or path[(a, b)] != "lan"]
    check(not not_lan, f"message_send between two hosts behind one router: not over the LAN: {not_lan}")
    out = {"bench": "netlab_nat_to_nat", "mapping": mapping_on, "what": "message_send between NATed nodes",
           "pairs": len(pairs), "pairs_ok": len(ok), "need_relay": len(need_relay),
           "relay_only_failed": len(relay_failed),
           **{k: len(v) for k, v in by_path.items()},
           # relayed paths set during the rounds, of which a later punch (or direct datagram) ended some
           "relay_fallbacks_found": fallbacks,
           "punch": {k: traversal.get(k, 0) for k in ("punch_attempts", "punch_ok", "punch_failed",
                                                      "punch_no_rendezvous", "punch_refused", "keepalives_sent")}}
    for k, v in by_path.items():
        out[f"connect_ms_p50_{k}"] = pct([res[p][2] for p in v], 0.5)
        out[f"connect_ms_p99_{k}"] = pct([res[p][2] for p in v], 0.99)
    result_json(out)
    kinds = [k for k in ("cone", "restricted", "symmetric", "upnp") if lab.of_kind(k)]
    for ka in kinds:
        for kb in kinds:
            row = {"bench": "netlab_kind_pairs", "pair": f"{ka}->{kb}",
                   "without_relay": traversal_without_relay(ka, kb, mapping_on)}
            for label, round_pairs in (("forward", first), ("reverse", reverse)):
                sub = [p for p in round_pairs if lab.hosts[p[0]]["kind"] == ka and lab.hosts[p[1]]["kind"] == kb]
                if sub:
                    kinds_seen = {k: sum(1 for p in sub if p in ok and path[p] == k) for k in PATH_KINDS}
                    row[label] = f"{sum(1 for p in sub if p in ok)}/{len(sub)} " + \
                        " ".join(f"{k} {n}" for k, n in kinds_seen.items() if n)
            if "forward" in row or "reverse" in row:
                result_json(row)
    for p in pairs:
        RESULTS["pairs"][p] = (p in ok, path[p], res[p][2])


STREAM_BYTES = 1 << 20


def check_streams(lab, mapping_on):
    """A 1 MiB stream between every pair of NATed nodes (issue 12): file_send (the sending daemon writes the file
    to a stream, docs/api.md "File transfer") to a node in receive mode, which checks the sender's BLAKE2b
    trailer; then the test compares the received file with the sent one byte for byte. Each node takes part in
    one transfer at a time (all 120 at once overran the daemons: most stalled), the pairs only a relay connects
    first (the slowest). The path of each stream is its sender's report right after it ended (path_of); its
    rate is 1 MiB / the sending daemon's transfer time (stream open to the receiver's verdict)."""
    nat = lab.of_kind("cone", "restricted", "symmetric", "upnp")
    pairs = [(a, b) if (i + j) % 2 else (b, a) for i, a in enumerate(nat) for j, b in enumerate(nat) if i < j]
    if not pairs:
        return
    base = f"{lab.state}/streams"
    for h in nat:
        os.makedirs(f"{base}/in/{h}", exist_ok=True)
    os.makedirs(f"{base}/out", exist_ok=True)
    modes = parallel(lambda h: lab.call(h, "file_receive", [f"{base}/in/{h}"]), nat)
    for h in nat:
        check(isinstance(modes[h], dict), f"file_receive on {h}: {modes[h]}")
    sent = {}
    for a, b in pairs:
        path = f"{base}/out/{a}-to-{b}.bin"
        data = os.urandom(STREAM_BYTES)
        with open(path, "wb") as f:
            f.write(data)
        sent[(a, b)] = (path, data)

    def transfer(p):
        """file_send, then polls the sender's file_transfers until it ended: (transfer info, sender's status)."""
        try:
            tid = lab.call(p[0], "file_send", [lab.ids[p[1]], sent[p][0]])
        except RuntimeError as e:
            return {"state": "not started", "error": str(e)}, None
        deadline = time.monotonic() + POLL_SECONDS
        while True:
            lst = lab.call(p[0], "file_transfers").get("transfers", [])
            t = next((t for t in lst if t.get("id") == tid and t.get("direction") == "send"), {})
            if t.get("state") in ("done", "failed") or time.monotonic() > deadline:
                return t, lab.status(p[0])
            time.sleep(0.1)

    def need_relay(p):
        return not traversal_without_relay(lab.hosts[p[0]]["kind"], lab.hosts[p[1]]["kind"], mapping_on)

    pending = sorted(pairs, key=lambda p: not need_relay(p))
    results, running, busy = {}, {}, set()
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, len(nat) // 2)) as ex:
        while pending or running:
            for p in list(pending):
                if p[0] not in busy and p[1] not in busy:
                    busy |= {p[0], p[1]}
                    pending.remove(p)
                    running[ex.submit(transfer, p)] = p
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for f in done:
                p = running.pop(f)
                results[p] = f.result()
                busy -= {p[0], p[1]}
    seconds = time.monotonic() - t0
    out, bad, corrupt = {}, [], []
    for p in pairs:
        t, st = results[p]
        got = None
        rpath = f"{base}/in/{p[1]}/{p[0]}-to-{p[1]}.bin"
        if os.path.exists(rpath):
            with open(rpath, "rb") as f:
                got = f.read()
        if got is not None and got != sent[p][1]:
            corrupt.append(f"{p[0]}->{p[1]}")
        if t.get("state") != "done" or got != sent[p][1]:
            relay = (st or {}).get("relay", {})
            bad.append((p, f"{p[0]}->{p[1]} ({t.get('state')}: {t.get('error') or ('bytes differ' if got else 'no file')}; "
                           f"sender's relay paths {relay.get('paths')}, refused {relay.get('refused')})"))
            continue
        out[p] = (path_of(lab, {p[0]: st}, p[0], p[1], mapping_on), STREAM_BYTES / (1 << 20) / max(t["elapsed"], 1e-6))
    check(not corrupt, f"1 MiB streams: a received file differs from the sent one: {corrupt}")
    # Asserted: every stream, those a relay carries too (paced since 2026-12-03: docs/protocol.md 7, "Pacing"),
    # and those between two hosts behind one router (over their LAN addresses: docs/protocol.md 5.2, "Same
    # router"; measured only before that).
    same_router = lambda p: lab.hosts[p[0]]["router"] == lab.hosts[p[1]]["router"]
    bad_direct = [m for p, m in bad if not need_relay(p)]
    bad_relayed = [m for p, m in bad if need_relay(p)]
    check(not bad_direct, f"1 MiB streams between NATed nodes (no relay needed): {len(bad_direct)} not done bit-exact: "
                          f"{bad_direct}")
    check(not bad_relayed, f"1 MiB streams through relays: {len(bad_relayed)} of "
                           f"{sum(1 for p in pairs if need_relay(p))} not done bit-exact: {bad_relayed}")
    same = [p for p in pairs if same_router(p)]
    result_json({"bench": "netlab_same_router_streams", "streams": len(same),
                 "bit_exact": sum(1 for p in same if p in out), "lan": sum(1 for p in same if out.get(p, ("",))[0] == "lan")})
    by_path = {k: [r for kind, r in out.values() if kind == k] for k in PATH_KINDS}
    result_json({"bench": "netlab_streams", "streams": len(pairs), "bytes_each": STREAM_BYTES, "bit_exact": len(out),
                 "need_relay": sum(1 for p in pairs if need_relay(p)), "relayed_failed": len(bad_relayed),
                 "seconds": round(seconds, 1), **{k: len(v) for k, v in by_path.items()},
                 **{f"stream_mib_per_s_p50_{k}": pct(v, 0.5) for k, v in by_path.items() if v},
                 **{f"stream_mib_per_s_min_{k}": round(min(v), 2) for k, v in by_path.items() if v}})
    parallel(lambda h: lab.call(h, "file_receive", [None]), nat)
    RESULTS["streams"] = out


PUBSUB_EVENTS_EACH = 3


def check_pubsub(lab):
    """One pubsub topic with every node subscribed gets every event everywhere (issue 12): every node publishes
    PUBSUB_EVENTS_EACH events, and every node (publishers included) must receive each of them exactly once.
    The subscriptions are ready when one node's warm-up events (one a second, not counted) have reached every
    node; the asserted events are published after that. Runs after the streams, so the routers hold whatever
    state the earlier steps left, and events to the nodes only a relay reaches go through relays."""
    hosts = list(lab.hosts)
    topic = "netlab-every-node"
    subs = parallel(lambda h: lab.rpc_raw(h, {"jsonrpc": "2.0", "id": 1, "method": "pubsub_subscribe",
                                              "params": [topic]}), hosts)
    check(all("error" not in r for r in subs.values()), f"pubsub_subscribe: {[h for h, r in subs.items() if 'error' in r]}")
    warm, n, missing = {h: 0 for h in hosts}, 0, hosts
    deadline = time.monotonic() + POLL_SECONDS
    while missing and time.monotonic() < deadline:
        lab.call(hosts[0], "pubsub_publish", [topic, {"warm": n}])
        n += 1
        time.sleep(1)
        got = parallel(lambda h: lab.call(h, "pubsub_events", [topic]), hosts)
        for h in hosts:
            warm[h] += len(got[h])
        missing = [h for h in hosts if not warm[h]]
    check(not missing, f"pubsub: {hosts[0]}'s warm-up events ({n}) never reached {missing}")
    t0 = time.monotonic()
    want = {(h, i) for h in hosts for i in range(PUBSUB_EVENTS_EACH)}
    parallel(lambda h: [lab.call(h, "pubsub_publish", [topic, {"from": h, "i": i}])  # an error raises
                        for i in range(PUBSUB_EVENTS_EACH)], hosts)
    seen = {h: [] for h in hosts}
    first_all = {}
    deadline = time.monotonic() + POLL_SECONDS
    while time.monotonic() < deadline:
        got = parallel(lambda h: lab.call(h, "pubsub_events", [topic]), hosts)
        for h in hosts:
            seen[h] += [(e["from"], e["i"]) for e in got[h] if isinstance(e, dict) and "from" in e]
            if h not in first_all and want <= set(seen[h]):
                first_all[h] = time.monotonic() - t0
        if len(first_all) == len(hosts):
            break
        time.sleep(0.5)
    lost = {h: len(want - set(seen[h])) for h in hosts if want - set(seen[h])}
    dup = {h: len(seen[h]) - len(set(seen[h])) for h in hosts if len(seen[h]) != len(set(seen[h]))}
    check(not lost, f"pubsub: events lost (node: how many of {len(want)}): {lost}")
    check(not dup, f"pubsub: events delivered twice (node: how many): {dup}")
    secs = sorted(first_all.values())
    result_json({"bench": "netlab_pubsub", "nodes": len(hosts), "events": len(want),
                 "deliveries": sum(len(set(v) & want) for v in seen.values()), "expected": len(want) * len(hosts),
                 "warmup_events": n, "all_received_s_p50": pct(secs, 0.5), "all_received_s_max": pct(secs, 1.0)})


def summary(lab, mapping_on):
    """The issue's bench line, over every ordered pair of nodes: how many delivered their message_send, by path
    (the sender's report); connect_ms: the message_send call's time, for the NATed pairs (sent one call each; the
    pairs with a public node are sent in batches per sender, so they have no time of their own); stream rate:
    1 MiB / the sending daemon's transfer time (stream open to the receiver's verdict)."""
    pairs, streams = RESULTS["pairs"], RESULTS["streams"]
    if not pairs:
        return
    n = len(lab.hosts)
    out = {"bench": "netlab", "mapping": mapping_on, "hosts": n, "pairs": n * (n - 1), "pairs_measured": len(pairs),
           "pairs_ok": sum(1 for ok, _, _ in pairs.values() if ok), "streams": len(streams)}
    # The pairs with an IPv6-only node on either side (among the pairs above).
    v6 = set(lab.of_kind("v6only"))
    v6_pairs = [p for p in pairs if p[0] in v6 or p[1] in v6]
    out["pairs_v6only"] = len(v6_pairs)
    out["pairs_v6only_ok"] = sum(1 for p in v6_pairs if pairs[p][0])
    for k in PATH_KINDS:
        out[k] = sum(1 for ok, path, _ in pairs.values() if ok and path == k)
        ms = [m for ok, path, m in pairs.values() if ok and path == k and m is not None]
        out[f"connect_ms_p50_{k}"] = pct(ms, 0.5)
        out[f"connect_ms_p99_{k}"] = pct(ms, 0.99)
        out[f"stream_mib_per_s_{k}"] = pct([r for path, r in streams.values() if path == k], 0.5)
    result_json(out)
    check(out["pairs_measured"] == out["pairs"], f"summary: {out['pairs_measured']} of {out['pairs']} pairs measured")


# ---------------------------------------------------------------------------------------- port mapping

def router_mappings(lab):
    """The UPnP router's forwards, from its nftables chain: {(internal ip, internal port): external port}."""
    router = lab.hosts[lab.of_kind("upnp")[0]]["router"]
    out = subprocess.run(["ip", "netns", "exec", router, "nft", "list", "chain", "inet", "upnp", "prerouting_miniupnpd"],
                         capture_output=True, text=True, timeout=30).stdout
    found = {}
    for m in re.finditer(r"th dport (\d+) dnat ip to ([\d.]+):(\d+)", out):
        found[(m.group(2), int(m.group(3)))] = int(m.group(1))
    return found


def upnpc_list(lab):
    """`upnpc -l` from a LAN host: the IGD's own list of mappings, as (external port, internal ip:port) pairs."""
    host = lab.of_kind("upnp")[0]
    p = subprocess.run(["ip", "netns", "exec", lab.hosts[host]["ns"], "upnpc", "-l"], capture_output=True, text=True,
                       timeout=60)
    return set((int(m.group(1)), m.group(2)) for m in re.finditer(r"UDP\s+(\d+)->([\d.]+:\d+)", p.stdout))


def check_port_mapping(lab, mapping_on):
    """Every upnp host's node mapped its own port on the router (its /api/status, the router's rules and the
    IGD's list agree), or, with --no-port-mapping, none did."""
    hosts = lab.of_kind("upnp")
    if not hosts:
        return
    want = {h: f"{lab.hosts[h]['wan']}:{lab.node_port(h)}" for h in hosts}
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        st = parallel(lambda h: lab.status(h).get("port_mapping", {}), hosts)
        done = [h for h in hosts if (st[h].get("state") == "mapped") == mapping_on]
        if len(done) == len(hosts) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    rules = router_mappings(lab)
    listed = upnpc_list(lab)
    for h in hosts:
        pm, addr, port = st[h], lab.hosts[h]["addr"], lab.node_port(h)
        if mapping_on:
            check(pm.get("state") == "mapped" and pm.get("external") == want[h],
                  f"port mapping on {h}: {pm}, expected {want[h]} mapped")
            check(rules.get((addr, port)) == port, f"router has no forward of {port} to {h} ({addr}:{port}): {rules}")
            check((port, f"{addr}:{port}") in listed, f"upnpc -l does not list {port}->{addr}:{port}: {listed}")
        else:
            check(pm.get("state") == "off", f"port mapping on {h} with --no-port-mapping: {pm}")
            check((addr, port) not in rules, f"router forwards {port} to {h} with --no-port-mapping")
    after = [st[h].get("mapped_after_s") for h in hosts if st[h].get("mapped_after_s") is not None]
    result_json({"bench": "netlab_port_mapping", "mapping": mapping_on, "upnp_hosts": len(hosts),
                 "mapped": sum(1 for h in hosts if st[h].get("state") == "mapped"),
                 "protocols": sorted({st[h].get("protocol") for h in hosts if st[h].get("protocol")}),
                 "router_forwards": len(rules), "upnpc_listed": len(listed),
                 "mapped_after_s_max": max(after) if after else None,
                 "mapped_after_s": {h: st[h].get("mapped_after_s") for h in hosts}})


def measure_reachable(lab, mapping_on, when):
    """addresses.reachable (dial-back: a stranger's probe came in unsolicited, docs/protocol.md 5.1) per NAT kind.
    Measured, not asserted: the probed node calls a probe unsolicited only when it sent nothing to the helper's IP
    address in the last 5 minutes, and in a lab of 24 nodes every node has talked to nearly every other one by
    the time it is probed, so the flag stays false for most nodes, public ones included, mapped or not.
    check_unsolicited asserts what the flag stands for."""
    hosts = list(lab.hosts)
    reach = parallel(lambda h: bool(lab.status(h)["addresses"]["reachable"]), hosts)
    by_kind = {}
    for h in hosts:
        k = lab.hosts[h]["kind"]
        by_kind.setdefault(k, [0, 0])
        by_kind[k][0] += reach[h]
        by_kind[k][1] += 1
    result_json({"bench": "netlab_reachable", "mapping": mapping_on, "when": when,
                 **{k: f"{r}/{n}" for k, (r, n) in sorted(by_kind.items())}})


def check_unsolicited(lab, mapping_on):
    """Reachable from strangers, seen from the node itself: a public host sends, from a port it never used, three
    datagrams of another protocol version to each NATed node's public address (router address : node port;
    symmetric routers get their dht_stun answer); the node counts them as `bad_version` drops when they arrive.
    Behind the UPnP router they must arrive with port mapping (the forward lets them in), and may not without it
    (address-and-port-dependent filtering); other kinds are measured. A negative answer can only be seen by
    waiting: 3 s for all hosts at once."""
    nat = lab.of_kind("cone", "restricted", "symmetric", "upnp")
    pub = lab.of_kind("public")[-1]
    target = {}
    for h in nat:
        if lab.hosts[h]["kind"] == "symmetric":
            a = lab.call(h, "dht_stun")
            target[h] = (a[0], a[1])
        else:
            target[h] = (lab.hosts[h]["wan"], lab.node_port(h))

    def bad_version(h):
        return lab.status(h).get("drops", {}).get("bad_version", 0)

    before = parallel(bad_version, nat)
    sock = udp_socket_in(lab.hosts[pub]["ns"], 5601)
    try:
        for h in nat:
            for _ in range(3):
                sock.sendto(b"\xee" + b"netlab unsolicited probe".ljust(63, b"."), target[h])
    finally:
        sock.close()
    deadline = time.monotonic() + 3.0
    while True:
        after = parallel(bad_version, nat)
        got = {h for h in nat if after[h] > before[h]}
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    by_kind = {}
    for h in nat:
        k = lab.hosts[h]["kind"]
        by_kind.setdefault(k, [0, 0])
        by_kind[k][0] += h in got
        by_kind[k][1] += 1
    result_json({"bench": "netlab_unsolicited", "mapping": mapping_on, "from": pub,
                 **{k: f"{r}/{n}" for k, (r, n) in sorted(by_kind.items())}})
    for h in lab.of_kind("upnp"):
        if mapping_on:
            check(h in got, f"{h}: an unsolicited datagram to its mapped address {target[h]} did not reach the node")


def check_to_upnp(lab, mapping_on):
    """message_send from every node behind another router (cone, restricted, symmetric) to every upnp host: the
    mapped port lets the first packet in. Asserted with port mapping, measured without."""
    upnp = lab.of_kind("upnp")
    others = lab.of_kind("cone", "restricted", "symmetric")
    pairs = [(a, u) for a in others for u in upnp]
    if not pairs:
        return
    res = send_all(lab, pairs, "to_upnp", batched=False)
    ok = [p for p in pairs if res[p][0] and res[p][1]]
    by_kind = {}
    for p in pairs:
        k = lab.hosts[p[0]]["kind"]
        by_kind.setdefault(k, [0, 0])
        by_kind[k][0] += p in ok
        by_kind[k][1] += 1
    result_json({"bench": "netlab_to_upnp", "mapping": mapping_on, "pairs": len(pairs), "pairs_ok": len(ok),
                 "send_ms_p50": pct([res[p][2] for p in ok], 0.5),
                 **{k: f"{a}/{n}" for k, (a, n) in sorted(by_kind.items())}})
    if mapping_on:
        bad = [p for p in pairs if p not in ok]
        if not check(not bad, f"message_send to upnp hosts: {len(bad)} of {len(pairs)} failed, e.g. {bad[:6]}"):
            diagnose_pairs(lab, bad)


def check_mapping_removed_on_stop(lab, mapping_on):
    """Every upnp host's mapping was renewed (the daemons ask a LEASE_S lease); then SIGTERM to one upnp host's
    daemon: it stops cleanly and its forward is gone from the router."""
    hosts = lab.of_kind("upnp")
    if not hosts or not mapping_on:
        return
    # Renewed at half the lease (LEASE_S): by now (the earlier steps took longer) or within a lease.
    deadline = time.monotonic() + LEASE_S + 10
    while True:
        st = parallel(lambda h: lab.status(h).get("port_mapping", {}), hosts)
        if all(st[h].get("renewals", 0) >= 1 for h in hosts) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for h in hosts:
        check(st[h].get("renewals", 0) >= 1 and st[h].get("state") == "mapped" and st[h].get("failures") == 0,
              f"{h}: the mapping was not renewed within its {LEASE_S} s lease: {st[h]}")
    result_json({"bench": "netlab_mapping_renewed", "lease_s": LEASE_S,
                 "renewals": {h: st[h].get("renewals") for h in hosts},
                 "expires_in_s": {h: st[h].get("expires_in_s") for h in hosts}})
    host = hosts[-1]
    addr, port = lab.hosts[host]["addr"], lab.node_port(host)
    check((addr, port) in router_mappings(lab), f"{host}'s forward is not on the router before the stop")
    with open(f"{lab.state}/node/{host}/pid") as f:
        pid = int(f.read())
    t = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    deadline = t + POLL_SECONDS
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        try:  # reap it if it is our child (it is not: netlab started it), else poll /proc
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            pass
        if open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.1)
    stop_s = time.monotonic() - t
    with open(f"{lab.state}/node/{host}/out") as f:
        stopped = "storjnetd: stopped" in f.read()
    check(stopped, f"{host}'s daemon did not stop cleanly within {POLL_SECONDS} s")
    rules = router_mappings(lab)
    listed = upnpc_list(lab)
    check((addr, port) not in rules, f"{host}'s forward is still on the router after a clean stop: {rules}")
    check((port, f"{addr}:{port}") not in listed, f"upnpc -l still lists {host}'s mapping after a clean stop")
    result_json({"bench": "netlab_mapping_removed", "host": host, "stopped": stopped, "stop_s": round(stop_s, 2),
                 "removed": (addr, port) not in rules, "others_left": len(rules)})


# ---------------------------------------------------------------------------------------- main

def remove_stale_labs(netlab):
    """Labs of test runs that were killed (ctest's timeout sends SIGKILL): their pid is gone."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    pids = {int(m.group(1)) for m in re.finditer(r"^sn-t(\d+)-", out, re.M)}
    for pid in sorted(pids):
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            log(f"removing the lab of a killed test run (sn-t{pid}-)")
            subprocess.run([netlab, "down"], env=dict(os.environ, NETLAB_PREFIX=f"sn-t{pid}-"), timeout=120)


def dump_logs(lab):
    """On failure: the end of every daemon's stderr and of miniupnpd's log, before the lab goes."""
    for name in lab.hosts:
        path = f"{lab.state}/node/{name}/err"
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                tail = f.readlines()[-5:]
            if tail:
                log(f"--- {name} stderr (last lines)\n" + "".join(tail).rstrip())
    path = f"{lab.state}/miniupnpd.log"
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            log("--- miniupnpd.log (last lines)\n" + "".join(f.readlines()[-10:]).rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("storjnetd")
    ap.add_argument("--netlab", default=os.path.join(ROOT, "scripts", "netlab"))
    for k, v in (("public", 8), ("v6only", 2), ("cone", 4), ("restricted", 4), ("symmetric", 4), ("upnp", 4)):
        ap.add_argument(f"--{k}", type=int, default=v)
    ap.add_argument("--keep", action="store_true", help="leave the lab up at the end (prefix sn-)")
    ap.add_argument("--no-port-mapping", action="store_true",
                    help="daemons run with --no-port-mapping: no upnp host maps its port (reachability measured)")
    args = ap.parse_args()
    if args.public < 3:
        ap.error("--public must be at least 3 (the NAT probes use three public hosts)")

    if os.geteuid() != 0:
        log("FAIL: the netlab test needs root (network namespaces); it does not skip")
        return 1
    prefix = "sn-" if args.keep else f"sn-t{os.getpid()}-"
    lab = Lab(args.netlab, prefix)
    mapping_on = not args.no_port_mapping
    # A 30 s lease, renewed every 15 s, so that the run sees renewals (the default is 1 h).
    lab.env["NETLAB_DAEMON_ARGS"] = f"--port-mapping-lease {LEASE_S}" if mapping_on else "--no-port-mapping"
    remove_stale_labs(args.netlab)

    def on_signal(sig, _frame):
        raise SystemExit(f"netlab test: signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t0 = time.monotonic()
    try:
        layout = [x for k in ("public", "v6only", "cone", "restricted", "symmetric", "upnp")
                  for x in (f"--{k}", str(getattr(args, k)))]
        up = lab.run("up", "--storjnetd", args.storjnetd, *layout)
        lab.load()
        log(up.stdout.strip())
        t_up = time.monotonic() - t0
        log(f"lab up with {len(lab.hosts)} nodes in {t_up:.1f} s")
        result_json({"bench": "netlab_up", "hosts": len(lab.hosts), "seconds": round(t_up, 1)})
        steps = [("port mapping by the nodes", lambda lab: check_port_mapping(lab, mapping_on)),
                 ("unsolicited datagrams", lambda lab: check_unsolicited(lab, mapping_on)),
                 ("reachability (dial-back, measured)", lambda lab: measure_reachable(lab, mapping_on, "start")),
                 ("NAT kinds", check_nat_kinds), ("UPnP mapping", check_upnp_mapping), ("dht_stun", check_stun),
                 ("NAT mapping as the nodes see it", check_nat_view),
                 ("dht_put/dht_get", check_dht), ("message_send with public nodes", lambda lab: check_messages(lab, mapping_on)),
                 ("message_send to upnp hosts", lambda lab: check_to_upnp(lab, mapping_on)),
                 ("message_send NATed<->NATed", lambda lab: check_nat_to_nat(lab, mapping_on)),
                 ("relayed paths made direct (birthday)", lambda lab: check_upgrades(lab, mapping_on)),
                 ("message_send IPv6-only<->NATed", lambda lab: check_v6only_nat(lab, mapping_on)),
                 ("1 MiB streams NATed<->NATed", lambda lab: check_streams(lab, mapping_on)),
                 ("pubsub: every event to every node", check_pubsub),
                 ("summary", lambda lab: summary(lab, mapping_on)),
                 ("reachability again (measured)", lambda lab: measure_reachable(lab, mapping_on, "end")),
                 ("mapping removed on a clean stop", lambda lab: check_mapping_removed_on_stop(lab, mapping_on))]
        for name, fn in steps:
            t = time.monotonic()
            fn(lab)
            log(f"step {name}: {time.monotonic() - t:.1f} s")
    except (Exception, SystemExit) as e:  # noqa: BLE001 -- every failure (or signal) fails the test loudly
        check(False, f"netlab test aborted: {type(e).__name__}: {e}")
    finally:
        if CHECKS["failed"]:
            dump_logs(lab)
        if not args.keep:
            d = lab.run("down", check_rc=False)
            check(d.returncode == 0, f"netlab down: {d.stderr.strip()}")
            left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
            check(prefix not in left and not os.path.exists(lab.state), f"namespaces left behind: {left}")
    log(f"netlab: {time.monotonic() - t0:.1f} s in all")
    log(f"{CHECKS['passed']} passed, {CHECKS['failed']} failed")
    return 1 if CHECKS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
