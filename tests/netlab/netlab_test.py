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
  4. message_send between every ordered pair of nodes (public ones included) is delivered (those only a relay
     connects too; nat_pairs.check_nat_to_nat); each pair's path
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

The lab and the checks' tools are in lab.py, the NATed pairs (steps 4-5a) in nat_pairs.py, the streams, pubsub
and summary line in traffic.py; this file holds the other checks and main().
"""

import argparse
import os
import re
import select
import signal
import subprocess
import sys
import time

from lab import (CHECKS, LEASE_S, Lab, POLL_SECONDS, RESULTS, ROOT, check, log, parallel, pct, recv_from,
    result_json, send_all, udp_socket_in)
from nat_pairs import (PATH_KINDS, check_nat_to_nat, check_upgrades, diagnose_pairs, diagnose_relayed,
    path_of, relay_counters)
from traffic import check_pubsub, check_streams, summary


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
            preserved = ok_ip and a[1] == 4000
            if ok_ip and not preserved:
                # One neighbour may see another port: when its first datagram to the host and the host's first to
                # it cross the router at once, the outbound flow's port-4000 tuple clashes with the inbound
                # one's conntrack entry and Linux picks a free port for it. The router still preserves the
                # port for every other flow: the node's own verdict (several neighbours' answers) shows it.
                v4 = lab.status(h)["addresses"]["nat"]["v4"]
                preserved = v4["address"] == f"{wan}:4000"
                log(f"MEASURED: dht_stun on {h}: one neighbour sees port {a[1]}; the node's verdict: {v4}")
            check(preserved, f"dht_stun on {h} ({kind}): {a}, expected port 4000 (preserved)")
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
    ap.add_argument("--stream-rounds", type=int, default=1,
                    help="run the 1 MiB streams step this many times (hunting an intermittent stall)")
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
                 ("NAT kinds", check_nat_kinds), ("UPnP mapping", check_upnp_mapping),
                 ("NAT mapping as the nodes see it", check_nat_view), ("dht_stun", check_stun),
                 ("dht_put/dht_get", check_dht), ("message_send with public nodes", lambda lab: check_messages(lab, mapping_on)),
                 ("message_send to upnp hosts", lambda lab: check_to_upnp(lab, mapping_on)),
                 ("message_send NATed<->NATed", lambda lab: check_nat_to_nat(lab, mapping_on)),
                 ("relayed paths made direct (birthday)", lambda lab: check_upgrades(lab, mapping_on)),
                 ("message_send IPv6-only<->NATed", lambda lab: check_v6only_nat(lab, mapping_on)),
                 *[(f"1 MiB streams NATed<->NATed (round {r})", lambda lab, r=r: check_streams(lab, mapping_on, r))
                   for r in range(1, args.stream_rounds + 1)],
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
