"""Cost of one live RCA run at fleet scale: judging, the mesh's judgement, findings.

5,000 agents x 10 ring peers x TCP and UDP (100,000 latest tests), racks of
40 nodes with 10 Gbit/s links: one run of ``LiveRca.steps`` on a clean mesh
(every report new, then unchanged), and with faults (one node's egress at
30 %, the paths between two racks lossy). Prints ms per run and writes JSON
under bench-results/. Runs against whatever code PYTHONPATH gives (the RCA
of a tree without topology support is run without it).

    PYTHONPATH=$PWD python tests/benchmarks/bench_judge.py [--agents 5000]
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import pathlib
import statistics
import time
from typing import Any

from collector.judging import Criteria
from collector.live import LiveRca
from netmesh.wire import Report, TestResult
from tests.benchmarks.benchlib import machine, synthetic_report


def faulty(r: Report, n: int, rack_size: int) -> Report:
    """node-0007's egress at 30 %; 10 % UDP loss on every path between racks 1 and 2."""

    def rack(name: str) -> int:
        return int(name.split("-")[1]) // rack_size

    out: list[TestResult] = []
    for t in r.results:
        new = t
        if t.source == "node-0007" and t.protocol == "tcp":
            bps = (t.received_bits_per_second or 0) * 0.3
            new = dataclasses.replace(t, received_bits_per_second=bps, sent_bits_per_second=bps)
        if {rack(t.source), rack(t.destination)} == {1, 2} and t.protocol == "udp":
            new = dataclasses.replace(t, loss_ratio=0.1, lost_packets=800)
        out.append(new)
    return dataclasses.replace(r, results=tuple(out))


def one_run(live: LiveRca, reports: dict[str, Report], topology: Any, now: float) -> float:
    results = {n: r.results for n, r in reports.items()}
    kw: dict[str, Any] = {}
    if topology is not None:
        kw["topology"] = topology
    t0 = time.perf_counter()
    for _ in live.steps(results, {}, lambda _ip: None, now=now, **kw):
        pass
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--rack-size", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n = args.agents
    clean = {
        r.node: r for r in (synthetic_report(i, n, args.peers, flows_per_agent=0) for i in range(n))
    }
    topology = None
    if "topology" in inspect.signature(LiveRca.steps).parameters:
        from collector.topology import NodeTopology  # noqa: PLC0415 (absent in older trees)

        topology = {
            name: NodeTopology(
                rack=f"rack-{int(name.split('-')[1]) // args.rack_size}", link_speed=10**10
            )
            for name in clean
        }
    bad = {name: faulty(r, n, args.rack_size) for name, r in clean.items()}
    out: dict[str, Any] = {"agents": n, "peers": args.peers, "machine": machine()}
    for label, reports in (("clean", clean), ("faults", bad)):
        live = LiveRca(Criteria())
        first = one_run(live, reports, topology, 1_700_000_100.0)
        again = [one_run(live, reports, topology, 1_700_000_100.0 + i) for i in range(args.runs)]
        latest = live.latest
        assert latest is not None
        findings = [f"{f.kind} {f.subject}" for f in getattr(latest, "findings", ())] or [
            s.node for s in latest.suspects
        ]
        out[label] = {
            "first_run_ms": first,
            "unchanged_run_ms_median": statistics.median(again),
            "failing": len(latest.failing),
            "verdict": latest.verdict,
            "named": findings,
        }
        print(
            f"{label:7s} first run {first:7.0f} ms, unchanged reports "
            f"{statistics.median(again):6.0f} ms (median of {args.runs}); "
            f"{len(latest.failing)} failing; {latest.verdict}: "
            f"{', '.join(findings) or '-'}"
        )
    path = pathlib.Path("bench-results")
    path.mkdir(exist_ok=True)
    (path / "bench_judge.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
