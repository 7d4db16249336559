"""On-demand bandwidth sweeps (root): time from the request to the last result of a node sweep.

A 4-node lab (real agents, iperf3, the collector, authenticated), the budgeted
plan sparse but active (budget 0.1). For each trial a sweep of one node is
requested through ``POST /api/v1/sweeps`` and ``GET /api/v1/sweeps/<id>`` is
polled every 0.2 s until it is done; measured: request → done (the last of its
2 x 2 x 3 = 12 results arrived at the collector), its lead and planned window,
failed tests, and "busy" tests counted by the agents over the whole run.

Two timings: the lab's (2 s tests, 3 s slots, 2 s reports) and the agent's
defaults (5 s tests + 1 s omit + 2 s guard = 8 s slots, 10 s reports).

Asserts nothing; prints the table and writes bench-results/ondemand.json.

    .venv/bin/python tests/benchmarks/bench_ondemand.py [--trials 3] [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from typing import Any

from benchlib import Row, arguments, report, skipped_without_root

from lab.lab import Lab
from lab.settings import LabSettings
from tests.e2e.labapi import agent_report
from tests.e2e.labup import QUIET, lab_up

PREFIX = f"nmo{os.getpid() % 10000}b"
SUBNET = f"10.{140 + os.getpid() % 10}.10.0/24"
TIMINGS = {
    "lab": {"test_duration": 2, "omit_seconds": 0, "guard_seconds": 1.0, "report_interval": 2.0},
    "agent defaults": {
        "test_duration": 5,
        "omit_seconds": 1,
        "guard_seconds": 2.0,
        "report_interval": 10.0,
    },
}


def call(lab: Lab, method: str, path: str, body: Any = None) -> Any:
    token = lab.token_path.read_text().strip()
    req = urllib.request.Request(
        lab.collector_url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method=method,
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def busy(lab: Lab) -> int:
    return sum(
        t["count"]
        for node in lab.topo.nodes
        for t in agent_report(lab, node.name, timeout=10)["tests"]
        if t["result"] == "busy"
    )


def trial(lab: Lab, node: str) -> dict[str, float]:
    asked = time.monotonic()
    sweep = call(lab, "POST", "/api/v1/sweeps", {"node": node})
    deadline = asked + sweep["planned_end"] - sweep["now"] + 120
    view = sweep
    while view["state"] not in ("done", "expired") and time.monotonic() < deadline:
        time.sleep(0.2)
        view = call(lab, "GET", f"/api/v1/sweeps/{sweep['id']}")
    return {
        "seconds": time.monotonic() - asked,
        "lead": sweep["start_at"] - sweep["requested_at"],
        "window": view["planned_end"] - view["planned_start"],
        "tests": view["tests"],
        "failed": view["failed"] + (view["tests"] - view["completed"]),
        "done": float(view["state"] == "done"),
    }


def run(name: str, timing: dict[str, Any], trials: int, state_dir: str) -> list[Row]:
    settings = LabSettings(
        state_dir=state_dir,
        prefix=PREFIX,
        subnet=SUBNET,
        nodes=4,
        **QUIET,
        bandwidth_budget=0.1,
        **timing,
    )
    with lab_up(settings) as lab:
        names = [n.name for n in lab.topo.nodes]
        results = [trial(lab, names[i % len(names)]) for i in range(trials)]
        collisions = busy(lab)
    times = [r["seconds"] for r in results]
    return [
        Row(
            what=f"{name}: node sweep, request to all 12 results (4 nodes)",
            measured=f"median {statistics.median(times):.1f} s (each: "
            + ", ".join(f"{t:.1f}" for t in times)
            + f"; lead {results[0]['lead']:.0f} s, window {results[0]['window']:.0f} s)",
            value=statistics.median(times),
            unit="s",
            extra={"trials": results},
        ),
        Row(
            what=f"{name}: tests failed or missing / busy tests (all agents, whole run)",
            measured=f"{sum(r['failed'] for r in results):.0f} / {collisions}",
            goal="0 / 0",
            met=sum(r["failed"] for r in results) == 0 and collisions == 0,
        ),
    ]


def main() -> int:
    parser = arguments(__doc__, quick="lab timing only, 1 trial")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    if skipped_without_root("bench_ondemand"):
        return 0
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-ondemand-") as state_dir:
        for name, timing in TIMINGS.items():
            if args.quick and name != "lab":
                continue
            rows += run(name, timing, 1 if args.quick else args.trials, state_dir)
    report("ondemand", rows, params={"trials": args.trials, "quick": args.quick}, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
