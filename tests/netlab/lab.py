"""The netlab test's tools (tests/netlab/netlab_test.py, docs/netlab.md): checks and RESULT_JSON lines, the lab
itself (scripts/netlab up/down, one storjnetd per host, their JSON-RPC APIs), sockets inside a namespace, and
message_send over many pairs at once."""
import contextlib
import ctypes
import json
import os
import re
import select
import socket
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor


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


@contextlib.contextmanager
def in_netns(ns):
    """This thread inside network namespace ns for the block, back in its own after (sockets made in the block
    keep ns)."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


def udp_socket_in(ns, port):
    """A UDP socket bound to 0.0.0.0:port inside network namespace ns (sockets keep the namespace they were
    made in, so one thread can use sockets of every host)."""
    with in_netns(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        s.setblocking(False)
    return s


def flush_conntrack(ns):
    """Deletes every conntrack entry (so every NAT mapping and filter entry) in network namespace ns, as a
    router's mappings expire when idle: one ctnetlink IPCTNL_MSG_CT_DELETE without attributes for AF_INET (what
    `conntrack -F` sends; conntrack-tools is not needed). Returns the netlink error code (0: done)."""
    with in_netns(ns):
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
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
