#!/usr/bin/env python3
"""The rebuild's per-object timings from the agents' logs of a kept bench run:

    RUST_LOG=info,axon::dataplane::cluster::frontend=debug AXON_BENCH_KEEP=1 \
      AXON_BENCH_ONLY=rebuild AXON_BENCH_SECS=10 cargo bench --bench cluster_io
    python3 docs/experiments/repair-timings.py target/bench-cluster

Reads the frontend's debug lines `repair KEY stripe I: fetch D, decode D, put D` and
`repair KEY: publish D` and prints count, p50, p90 and max of each step in ms.
"""
import glob
import re
import sys

UNITS = {"s": 1000.0, "ms": 1.0, "µs": 1e-3, "us": 1e-3, "ns": 1e-6}


def ms(s):
    m = re.match(r"([\d.]+)(ms|µs|us|ns|s)$", s)
    return float(m.group(1)) * UNITS[m.group(2)]


steps = {"fetch": [], "decode": [], "put": [], "publish": []}
base = sys.argv[1] if len(sys.argv) > 1 else "target/bench-cluster"
for fn in glob.glob(f"{base}/b*/agent.log"):
    for line in open(fn, encoding="utf-8", errors="replace"):
        line = line.strip()
        m = re.search(r"fetch (\S+), decode (\S+), put (\S+)$", line)
        if m:
            for k, v in zip(("fetch", "decode", "put"), m.groups()):
                steps[k].append(ms(v))
        m = re.search(r": publish (\S+)$", line)
        if m:
            steps["publish"].append(ms(m.group(1)))
for k, v in steps.items():
    if not v:
        print(f"{k}: none found")
        continue
    v.sort()
    print(f"{k}: {len(v)}, p50 {v[len(v) // 2]:.1f} ms, p90 {v[int(len(v) * 0.9)]:.1f} ms, max {v[-1]:.1f} ms")
