"""The netlab test's traffic over the whole lab (tests/netlab/netlab_test.py, docs/netlab.md steps 6 and 7, and
the summary line): 1 MiB streams between every pair of NATed nodes, one pubsub topic everywhere."""
import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from lab import POLL_SECONDS, RESULTS, check, parallel, pct, result_json
from nat_pairs import PATH_KINDS, path_of, traversal_without_relay


STREAM_BYTES = 1 << 20


def check_streams(lab, mapping_on, round_no=1):
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
    base = f"{lab.state}/streams" + (f"-{round_no}" if round_no > 1 else "")
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

    stalls = {}

    def transfer(p):
        """file_send, then polls the sender's file_transfers until it ended: (transfer info, sender's status).
        A transfer that made no progress for STALL_SNAPSHOT_S has both ends' view of its stream recorded in
        `stalls` (the stream is gone once the transfer fails)."""
        try:
            tid = lab.call(p[0], "file_send", [lab.ids[p[1]], sent[p][0]])
        except RuntimeError as e:
            return {"state": "not started", "error": str(e)}, None
        deadline = time.monotonic() + POLL_SECONDS
        last_bytes, last_move = -1, time.monotonic()
        while True:
            lst = lab.call(p[0], "file_transfers").get("transfers", [])
            t = next((t for t in lst if t.get("id") == tid and t.get("direction") == "send"), {})
            if t.get("state") in ("done", "failed") or time.monotonic() > deadline:
                return t, lab.status(p[0])
            if t.get("bytes") != last_bytes:
                last_bytes, last_move = t.get("bytes"), time.monotonic()
            elif time.monotonic() - last_move > STALL_SNAPSHOT_S and p not in stalls:
                stalls[p] = stream_views(lab, p)
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
                           f"sender's relay paths {relay.get('paths')}, refused {relay.get('refused')}; "
                           f"stalled: {stalls.get(p, 'no snapshot')})"))
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


STALL_SNAPSHOT_S = 10


def stream_views(lab, p):
    """Both ends' view of the stream between p[0] and p[1] (their /api/status `streams` entries for each other,
    whether each lists the other among its relay paths or punched paths), for the report of a stalled stream."""
    out = {}
    for me, other in (p, (p[1], p[0])):
        try:
            st = lab.status(me)
        except Exception as e:  # a daemon that no longer answers is itself the finding
            out[me] = f"status failed: {e}"
            continue
        oid = lab.ids[other]
        out[me] = {"streams": [s for s in st.get("streams", []) if s.get("peer") == oid],
                   "relay_path": [r for r in st.get("relay", {}).get("paths", []) if r.get("peer") == oid],
                   "punched": [r for r in st.get("punched_paths", []) if r.get("peer") == oid],
                   "nat_traversal": {k: v for k, v in st.get("nat_traversal", {}).items() if k.startswith("upgrade")},
                   "drops": st.get("drops")}
    return out


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
