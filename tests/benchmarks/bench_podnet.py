"""Pod-network endpoints (root): their cost, and how fast an overlay MTU mismatch is named.

A 4-node lab with one workload pod per node (no HTTP traffic, no eBPF probe) and a
pod-network endpoint per node (the agent with network=pod in a pod namespace of its own):

- **cost**: with the agent's production defaults for the heavy tier and reports
  (bandwidth budget 0.01, report interval 10 s; light tier at its defaults), RSS and
  CPU share of every pod endpoint's process over a measuring period, after a warm-up;
  its iperf3 server (a child) counted separately;
- **overlay MTU**: RUNS times ``inject --node X --overlay-mtu 1500`` (a different node
  each run) → time until /api/v1/rca's layer_findings name exactly "overlay MTU on node
  X", whether the host light paths stayed clean meanwhile; ``clear`` → time until no
  layer finding is left.

Asserts nothing; prints the table and writes bench-results/podnet.json.

    .venv/bin/python tests/benchmarks/bench_podnet.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

from benchlib import (
    MiB,
    Row,
    arguments,
    children_cpu_seconds,
    cpu_seconds,
    load_row,
    report,
    rss_bytes,
)

from lab.lab import Lab
from lab.settings import LabSettings
from tests.e2e.labapi import api
from tests.e2e.labup import QUIET, lab_up
from tests.helpers import watch

PID = os.getpid()
PREFIX = f"nme{PID % 1000}b"
SUBNET = f"10.{70 + PID % 10}.{250 - PID // 10 % 50}.0/24"
POD_CIDR = f"172.{24 + PID % 4}.{PID // 4 % 16 * 16}.0/20"
GOAL_SECONDS, GOAL_RSS, GOAL_CPU = 30.0, 50 * MiB, 0.02


def layer_findings(lab: Lab) -> list[tuple[str | None, str]]:
    return [(f["node"], f["kind"]) for f in api(lab, "/api/v1/rca").get("layer_findings", [])]


def host_clean(lab: Lab) -> bool:
    return all(
        p["values"]["netmesh_light_loss_ratio"] == 0.0
        and not p["values"]["netmesh_light_mtu_loss_ratio"]
        for p in api(lab, "/api/v1/light")["paths"]
    )


def watch_layers(lab: Lab, done: Any, timeout: float) -> tuple[float | None, set[Any], bool]:
    """Seconds until ``done(findings)`` (None on timeout), every finding seen, host clean."""
    took, reads = watch(
        lambda: (layer_findings(lab), host_clean(lab)), lambda r: done(r[0]), timeout
    )
    return took, {f for now, _ in reads for f in now}, all(clean for _, clean in reads)


def cost(lab: Lab, warmup: float, seconds: float) -> list[Row]:
    pids = {n.name: lab.load_state()["pids"][f"{n.name}-podnet"] for n in lab.topo.nodes}
    time.sleep(warmup)
    before = {n: (cpu_seconds(p), children_cpu_seconds(p)) for n, p in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    shares = {n: (cpu_seconds(p) - before[n][0]) / took for n, p in pids.items()}
    rss = {n: rss_bytes(p) for n, p in pids.items()}
    worst_cpu, worst_rss = max(shares.values()), max(rss.values())
    return [
        Row(
            "pod endpoint RSS (max of 4)",
            f"{worst_rss / MiB:.1f} MiB",
            f"<= {GOAL_RSS / MiB:.0f} MiB",
            worst_rss <= GOAL_RSS,
            value=worst_rss / MiB,
            unit="MiB",
        ),
        Row(
            f"pod endpoint CPU over {seconds:.0f} s (max of 4; median)",
            f"{worst_cpu:.2%}; {statistics.median(shares.values()):.2%}",
            f"<= {GOAL_CPU:.0%} of a core",
            worst_cpu <= GOAL_CPU,
            value=worst_cpu,
            unit="ratio",
        ),
    ]


def overlay_mtu(lab: Lab, runs: int) -> list[Row]:
    named, gone, dirty = [], [], 0
    wrong: list[tuple[str | None, str]] = []
    other_kind: list[tuple[str | None, str]] = []
    for run in range(runs):
        node = lab.topo.nodes[(run + 1) % len(lab.topo.nodes)].name
        lab.inject_overlay_mtu(node, 1500)
        try:
            took, seen, clean = watch_layers(lab, lambda f, n=node: f == [(n, "overlay-mtu")], 120)
        finally:
            lab.clear(node)
        wrong += [f for f in seen if f[0] != node]
        other_kind += [f for f in seen if f[0] == node and f[1] != "overlay-mtu"]
        dirty += not clean
        named.append(took if took is not None else float("inf"))
        cleared, _, _ = watch_layers(lab, lambda f: not f, 120)
        gone.append(cleared if cleared is not None else float("inf"))
    med, worst = statistics.median(named), max(named)
    return [
        Row(
            f"overlay MTU 1500 on one node named (median, worst of {runs})",
            f"{med:.1f} s, {worst:.1f} s",
            f"<= {GOAL_SECONDS:.0f} s",
            worst <= GOAL_SECONDS,
            value=med,
            unit="s",
        ),
        Row("another node named", str(sorted(set(wrong), key=str)), "none", not wrong),
        Row(
            "the faulty node named with another kind meanwhile",
            str(sorted(set(other_kind), key=str)),
        ),
        Row("runs whose host light paths lost anything", str(dirty), "0", dirty == 0),
        Row(
            "finding gone after clear (median, worst)",
            f"{statistics.median(gone):.1f} s, {max(gone):.1f} s",
        ),
    ]


def main() -> None:
    args = arguments(__doc__).parse_args()
    runs, warmup, seconds = (1, 10.0, 30.0) if args.quick else (3, 30.0, 120.0)
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-podnet-") as tmp:
        settings = LabSettings(
            nodes=4,
            pods=1,
            pod_cidr=POD_CIDR,
            prefix=PREFIX,
            subnet=SUBNET,
            state_dir=tmp,
            **QUIET,
            bandwidth_budget=0.01,
            report_interval=10.0,
            dns_server=False,
        )
        with lab_up(settings) as lab:
            rows += cost(lab, warmup, seconds)
            rows += overlay_mtu(lab, runs)
    rows.append(load_row())
    params = {"nodes": 4, "runs": runs, "warmup": warmup, "cost_seconds": seconds}
    report("podnet", rows, params=params, started=started)


if __name__ == "__main__":
    main()
