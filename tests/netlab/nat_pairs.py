"""The netlab test's NATed pairs (tests/netlab/netlab_test.py, docs/netlab.md steps 5 and 5a): which kinds of
router connect without a relay, how a sender reaches a receiver (path_of), message_send between every ordered
pair of NATed nodes, and the upgrade of their relayed paths."""
import hashlib
import ipaddress
import time

from lab import (KEEPALIVE_INTERVAL_S, POLL_SECONDS, RESULTS, check, flush_conntrack, log, parallel, pct,
    result_json, send_all)


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
