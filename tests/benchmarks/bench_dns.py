"""DNS or the Service down on one node (root): how fast the collector names it, and nothing else.

A 4-node lab (no HTTP traffic, no eBPF probe; a pod per node and the pod-network
endpoints) with its real DNS server (dnsmasq on the bridge) and its Service (a
virtual IP every node translates to the collector, lab/service.py). For the
lab's check interval (1 s, window 6 s) and for the agent's defaults (5 s,
window 30 s): a clean period with no finding allowed, then RUNS times:
``inject --dns down`` (or ``--service down``) on a node (a different one each
run) → time until /api/v1/rca's dns_findings (service_findings) name exactly
that node, for the host and the pod network; ``clear`` → time until no
finding is left. Asserts nothing; prints the table and writes
bench-results/dns.json (service.json).

    .venv/bin/python tests/benchmarks/bench_dns.py [--quick] [--check dns|service]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

from benchlib import Row, arguments, load_row, report

from lab.faults import Fault
from lab.lab import Lab
from lab.settings import LabSettings
from tests.e2e.labapi import api
from tests.e2e.labup import LIGHT_TIER, lab_up
from tests.helpers import watch

PREFIX = f"nmdn{os.getpid() % 1000}"
SUBNET = f"10.{92 + os.getpid() % 4}.0.0/24"
POD_CIDR = f"172.{24 + os.getpid() % 4}.128.0/20"
GOAL = 30.0
# check → (its fault, its findings in /api/v1/rca, the lab's interval setting)
CHECKS = {
    "dns": (Fault(dns_down=True), "dns_findings", "dns_interval"),
    "service": (Fault(service_down=True), "service_findings", "service_interval"),
}
BOTH = ("host", "pod")


def findings(lab: Lab, key: str) -> list[tuple[str | None, str, tuple[str, ...]]]:
    """Every DNS and Service finding (the benchmark's check's and the other's)."""
    body: dict[str, Any] = api(lab, "/api/v1/rca")
    return [
        (f["node"], f["kind"] if k == key else f"{k}:{f['kind']}", tuple(f.get("networks", ())))
        for k in ("dns_findings", "service_findings")
        for f in body.get(k, [])
    ]


def watch_findings(lab: Lab, key: str, done: Any, timeout: float) -> tuple[float | None, set[Any]]:
    """Seconds until ``done(findings)`` (None on timeout) and every finding seen meanwhile."""
    took, reads = watch(lambda: findings(lab, key), done, timeout)
    return took, {f for now in reads for f in now}


def one_interval(
    check: str, interval: float, runs: int, clean_seconds: float, tmp: str
) -> list[Row]:
    fault, key, setting = CHECKS[check]
    settings = LabSettings(
        nodes=4,
        pods=1,
        pod_cidr=POD_CIDR,
        prefix=PREFIX,
        subnet=SUBNET,
        state_dir=tmp,
        **LIGHT_TIER,
        **{setting: interval},
    )
    title = {"dns": "DNS", "service": "Service"}[check]
    tag = f"{title} interval {interval:g} s, window {6 * interval:g} s"
    rows: list[Row] = []
    with lab_up(settings) as lab:
        _, seen = watch_findings(lab, key, lambda _f: False, clean_seconds)
        rows.append(
            Row(f"{tag}: findings in {clean_seconds:.0f} s clean", str(len(seen)), "0", not seen)
        )
        named, gone, wrong = [], [], []
        for run in range(runs):
            node = lab.topo.nodes[run % len(lab.topo.nodes)].name
            lab.inject(node, fault)
            took, seen = watch_findings(lab, key, lambda f, n=node: (n, "failing", BOTH) in f, 120)
            wrong += [f for f in seen if f[:2] != (node, "failing")]
            named.append(took if took is not None else float("inf"))
            lab.clear(node)
            cleared, _ = watch_findings(lab, key, lambda f: not f, 120)
            gone.append(cleared if cleared is not None else float("inf"))
        med, worst = statistics.median(named), max(named)
        rows.append(
            Row(
                f"{tag}: {title} down named, host and pod network (median, worst of {runs})",
                f"{med:.1f} s, {worst:.1f} s",
                f"<= {GOAL:.0f} s",
                worst <= GOAL,
                value=med,
                unit="s",
            )
        )
        rows.append(Row(f"{tag}: anything else named", str(sorted(set(wrong))), "none", not wrong))
        rows.append(
            Row(
                f"{tag}: finding gone after clear (median, worst)",
                f"{statistics.median(gone):.1f} s, {max(gone):.1f} s",
            )
        )
    return rows


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--check", choices=sorted(CHECKS), default="dns")
    args = parser.parse_args()
    runs, clean = (1, 20.0) if args.quick else (3, 60.0)
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.check}-") as tmp:
        for interval in (1.0, 5.0):
            rows += one_interval(args.check, interval, runs, clean, tmp)
    rows.append(load_row())
    params = {"nodes": 4, "pods": 1, "runs": runs, "clean_seconds": clean}
    report(args.check, rows, params=params, started=started)


if __name__ == "__main__":
    main()
