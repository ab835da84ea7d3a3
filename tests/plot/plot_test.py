#!/usr/bin/env python3
"""Test of scripts/plot: feeds it a small sample of bench results (sim-dht and sim-pubsub with --cdf, one
sim-dht line without, a `dht` line of ours with --cdf and one of OpenDHT with summary quantiles only) and
checks that every chart is written as valid SVG naming what it should; that a bad line fails with its line
number; and that a file with nothing to chart writes nothing.
Usage: plot_test.py PATH_TO_scripts/plot"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

PLOT = sys.argv[1]
SVG = "{http://www.w3.org/2000/svg}svg"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def pct(lo, hi):
    return [lo + (hi - lo) * (i / 100) ** 2 for i in range(101)]


def summary(lo, med, hi):
    return {"n": 200, "min": lo, "median": med, "p90": med * 1.5, "p99": hi * 0.9, "max": hi, "mean": med}


def phase(impl_cdf, lo, med, hi, extra=None):
    p = {"attempted": 200, "ok": 200, "success_rate": 1.0, "latency_ms": summary(lo, med, hi)}
    if impl_cdf:
        p["latency_cdf_ms"] = pct(lo, hi)
    p.update(extra or {})
    return p


RECORDS = [
    {"workload": "sim-dht", "nodes": 1000, "ops": 500, "seed": 3, "kill": 0, "rounds_p50": 3},  # no --cdf
    {"workload": "sim-dht", "nodes": 1000, "ops": 500, "seed": 1, "kill": 0, "rounds_p50": 3},  # replaced below
    {"workload": "sim-dht", "nodes": 1000, "ops": 500, "seed": 1, "kill": 0, "rounds_p50": 3,
     "cdf": {"put_sim_ms": pct(40, 900), "get_sim_ms": pct(30, 700)},
     "rounds_histogram": {"put": {"2": 100, "3": 300, "4": 100}, "get": {"1": 20, "2": 200, "3": 260}}},
    {"workload": "sim-dht", "nodes": 200, "ops": 100, "seed": 2, "kill": 0.2,
     "cdf": {"put_sim_ms": pct(35, 500), "get_sim_ms": []},  # no remote get: empty
     "rounds_histogram": {"put": {"2": 60, "3": 40}, "get": {}}},
    {"workload": "sim-pubsub", "nodes": 1000, "mode": "both", "kill": 0, "topology": "dht", "delivery": 0.99,
     "latency_cdf_ms": pct(20, 400),
     "per_subscribers": [{"subscribers": s, "delivery": d, "latency_cdf_ms": pct(20, 100 * (i + 1))}
                         for i, (s, d) in enumerate([(1, 1.0), (10, 0.995), (100, 0.98)])]},
    {"bench": "storjnet-bench dht", "impl": "storjnet", "nodes": 200, "label": "sn-n200",
     "put64": phase(True, 0.5, 1.8, 7), "get64": phase(True, 0.02, 0.06, 4), "put1k": phase(True, 0.6, 2, 8),
     "get1k": phase(True, 0.02, 0.07, 5), "listen": phase(True, 0.3, 1.1, 3, {"delivery_rate": 1.0}),
     "burst_get": phase(True, 0.1, 2, 30)},
    {"bench": "odht_bench", "impl": "opendht", "nodes": 200, "label": "odht-n200",
     "put64": phase(False, 0.4, 1.4, 2.7), "get64": phase(False, 0.1, 0.9, 2.4),
     "put1k": phase(False, 0.5, 1.3, 2.5), "get1k": phase(False, 0.1, 0.8, 1.8),
     "listen": phase(False, 0.1, 0.25, 0.7, {"delivery_rate": 1.0}), "burst_get": phase(False, 1, 8, 58)},
]

EXPECTED = {
    "lookup-latency-cdf.svg": ["put N=1000 kill=0 seed=1", "get N=1000 kill=0 seed=1", "put N=200 kill=0.2"],
    "lookup-rounds.svg": ["rounds", "500 lookups", "480 lookups"],
    "pubsub-latency-cdf.svg": ["100 subscribers", "1 subscribers"],
    "pubsub-delivery.svg": ["subscribers per topic", "opendht N=200", "storjnet N=200"],
    "dht-latency-cdf.svg": ["put64", "get1k", "listen", "burst_get", "opendht N=200 (odht-n200) (quantiles)",
                            "storjnet N=200 (sn-n200)"],
}


def run(args):
    # Through its own #! line: Debian's python3, where python3-matplotlib is installed.
    return subprocess.run([PLOT] + args, capture_output=True, text=True, timeout=120)


with tempfile.TemporaryDirectory(prefix="storjnet-plot-test.") as tmp:
    results = os.path.join(tmp, "bench-results.jsonl")
    with open(results, "w") as f:
        for r in RECORDS[:6]:
            f.write(json.dumps(r) + "\n")
    reference = os.path.join(tmp, "opendht.jsonl")
    with open(reference, "w") as f:
        f.write("RESULT_JSON " + json.dumps(RECORDS[6]) + "\n")  # the prefix is accepted too
    out = os.path.join(tmp, "plots")
    p = run(["--out", out, results, reference])
    check(p.returncode == 0, f"plot exit {p.returncode}: {p.stderr}")
    check("1 run(s) without --cdf" in p.stdout, f"no note about the run without --cdf: {p.stdout}")
    made = sorted(os.listdir(out)) if os.path.isdir(out) else []
    check(made == sorted(EXPECTED), f"files {made}, wanted {sorted(EXPECTED)}")
    for name, texts in EXPECTED.items():
        path = os.path.join(out, name)
        if not os.path.exists(path):
            continue
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            check(False, f"{name}: not XML: {e}")
            continue
        check(root.tag == SVG, f"{name}: root element {root.tag}")
        body = open(path, encoding="utf-8").read()
        check("<path" in body, f"{name}: no path drawn")
        for t in texts:
            check(t in body, f"{name}: no text {t!r}")

    # Same input, same bytes (stable ids), so charts can be compared between runs.
    out2 = os.path.join(tmp, "plots2")
    run(["--out", out2, results, reference])
    for name in EXPECTED:
        a, b = os.path.join(out, name), os.path.join(out2, name)
        if os.path.exists(a) and os.path.exists(b):
            check(open(a, "rb").read() == open(b, "rb").read(), f"{name}: differs between two runs")

    bad = os.path.join(tmp, "bad.jsonl")
    with open(bad, "w") as f:
        f.write(json.dumps(RECORDS[2]) + "\n{not json\n")
    p = run(["--out", os.path.join(tmp, "bad-plots"), bad])
    check(p.returncode != 0 and "bad.jsonl:2" in p.stderr, f"bad line: exit {p.returncode}, {p.stderr!r}")

    other = os.path.join(tmp, "other.jsonl")
    with open(other, "w") as f:
        f.write(json.dumps({"workload": "ping", "rtt_p50_us": 30}) + "\n")
    empty_out = os.path.join(tmp, "none")
    p = run(["--out", empty_out, other])
    check(p.returncode == 0 and "nothing to chart" in p.stdout, f"nothing to chart: {p.returncode} {p.stdout}")
    check(not os.path.isdir(empty_out) or not os.listdir(empty_out), "files written for nothing")

if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("plot_test: ok")
