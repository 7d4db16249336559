"""The seed's experiment (root): how fast the collector names one lossy pod, and nothing else.

A 4-node lab with one pod per node (VXLAN overlay), the pods calling each
other over HTTP all-to-all, the eBPF probe on. A clean period with no finding
allowed, then RUNS times: 20 % loss into one pod (a different one each run) →
time until /api/v1/rca names exactly that pod (a ``pod`` finding; its node
named too counts as wrong), with the rule {pod} → {FAIL} at that moment;
``clear`` → time until no finding is left. Asserts nothing; prints the table
and writes bench-results/pods.json.

    .venv/bin/python tests/benchmarks/bench_pods.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchlib import Row, arguments, load_row, report

from lab import podexp
from lab.lab import Lab
from lab.settings import LabSettings
from tests.e2e.labup import lab_up
from tests.e2e.rca_lab import verdict
from tests.helpers import watch

PREFIX = f"nmpb{os.getpid() % 1000}"
SUBNET = f"10.{86 + os.getpid() % 4}.{os.getpid() // 4 % 250}.0/24"
POD_CIDR = f"172.{20 + os.getpid() % 4}.{os.getpid() // 4 % 16 * 16}.0/20"
GOAL = 30.0
LOSS = 0.20


def watch_verdict(
    lab: Lab, done: Callable[[dict[str, Any]], bool], timeout: float
) -> tuple[float | None, dict[str, Any], list[dict[str, Any]]]:
    """Seconds until ``done(body)`` (None on timeout), the last body, every body with a finding."""
    took, bodies = watch(lambda: verdict(lab), done, timeout)
    return took, bodies[-1] if bodies else {}, [b for b in bodies if podexp.any_finding(b)]


def main() -> None:
    args = arguments(__doc__).parse_args()
    runs, clean = (1, 20.0) if args.quick else (3, 60.0)
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-pods-") as tmp:
        settings = LabSettings(
            nodes=4,
            pods=1,
            pod_cidr=POD_CIDR,
            prefix=PREFIX,
            subnet=SUBNET,
            state_dir=tmp,
            bandwidth_budget=0.05,
        )
        with lab_up(settings) as lab:
            _, _, seen = watch_verdict(lab, lambda _b: False, clean)
            rows.append(Row(f"findings in {clean:.0f} s clean", str(len(seen)), "0", not seen))
            named: list[float] = []
            gone: list[float] = []
            wrong: list[str] = []
            rules: list[str] = []
            for run in range(runs):
                pod = lab.pods.pods[1 + run % (len(lab.pods.pods) - 1)]
                lab.inject_pod(pod.name, LOSS)
                took, body, seen = watch_verdict(lab, lambda b, p=pod: podexp.names_pod(b, p), 120)
                wrong += [pod.node for b in seen if podexp.names_node(b, pod.node)]
                named.append(took if took is not None else float("inf"))
                rules += podexp.rule_lines(body, [podexp.identity(pod)], top=1)
                lab.clear_pod(pod.name)
                cleared, _, _ = watch_verdict(lab, lambda b: not podexp.any_finding(b), 120)
                gone.append(cleared if cleared is not None else float("inf"))
            med, worst = statistics.median(named), max(named)
            rows.append(
                Row(
                    f"{LOSS:.0%} loss into one pod: pod named (median, worst of {runs})",
                    f"{med:.1f} s, {worst:.1f} s",
                    f"<= {GOAL:.0f} s",
                    worst <= GOAL,
                    value=med,
                    unit="s",
                    extra={"runs": named},
                )
            )
            rows.append(Row("its node named meanwhile", str(sorted(set(wrong))), "none", not wrong))
            for line in rules:
                rows.append(Row("the pod's rule when named", line.strip()))
            rows.append(
                Row(
                    "finding gone after clear (median, worst)",
                    f"{statistics.median(gone):.1f} s, {max(gone):.1f} s",
                )
            )
    rows.append(load_row())
    report("pods", rows, params={"nodes": 4, "pods": 1, "runs": runs}, started=started)


if __name__ == "__main__":
    main()
