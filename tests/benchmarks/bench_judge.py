"""Cost of one live RCA run at fleet scale: judging, the mesh's judgement, findings.

5,000 agents x 10 ring peers x TCP and UDP (100,000 latest tests), racks of
40 nodes with 10 Gbit/s links: one run of ``LiveRca.steps`` on a clean mesh
(every report new, then unchanged), and with faults (one node's egress at
30 %, the paths between two racks lossy). Every agent reports its kernel drop
counters: node-0007 NETFILTER_DROP at 150/s, one node in ten NO_SOCKET at 2/s
(significant evidence, and items of the mining). Prints ms per run, the
faulty mesh's ``analyse`` with and without the drop evidence, and writes JSON
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

from collector.dropevidence import DropEvidence
from collector.judging import Criteria, PathOutcome
from collector.live import LiveRca
from collector.verdict import analyse
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


def drops_at(names: list[str], now: float) -> dict[str, Any]:
    """Every node's cumulative drop counters at ``now`` (see the module docstring)."""
    from netmesh.dropreport import DropReason, DropStatus  # noqa: PLC0415 (absent in older trees)

    t = now - 1_700_000_000.0
    out: dict[str, Any] = {}
    for i, name in enumerate(names):
        reasons = [DropReason(reason="NO_SOCKET", count=int(2 * t))] if i % 10 == 3 else []
        if name == "node-0007":
            reasons.append(DropReason(reason="NETFILTER_DROP", count=int(150 * t)))
        out[name] = DropStatus(mode="tracepoint", up=1, reasons=tuple(reasons))
    return out


def one_run(live: LiveRca, reports: dict[str, Report], topology: Any, now: float) -> float:
    results = {n: r.results for n, r in reports.items()}
    kw: dict[str, Any] = {}
    if topology is not None:
        kw["topology"] = topology
    if "drops" in inspect.signature(LiveRca.steps).parameters:
        kw["drops"] = drops_at(sorted(reports), now)
    t0 = time.perf_counter()
    for _ in live.steps(results, {}, lambda _ip: None, now=now, **kw):
        pass
    return (time.perf_counter() - t0) * 1000


def mining_cost(reports: dict[str, Report], latest: Any, runs: int) -> dict[str, float]:
    """The faulty mesh's ``analyse`` (mining, findings, verdict) with and without the drop
    evidence, interleaved in one process (the full runs above vary with the machine's
    load more than the drop items cost)."""
    failed = {o.key: o.reasons for o in latest.failing}
    outcomes = [
        PathOutcome(source=t.source, destination=t.destination, protocol=t.protocol)
        for r in reports.values()
        for t in r.results
    ]
    outcomes = [o._replace(reasons=failed.get(o.key, ())) for o in outcomes]
    drops = {
        name: (DropEvidence("NO_SOCKET", 2.0),)
        for i, name in enumerate(sorted(reports))
        if i % 10 == 3
    }
    drops["node-0007"] = (DropEvidence("NETFILTER_DROP", 150.0),)
    times: dict[str, list[float]] = {"without_drops_ms": [], "with_drops_ms": []}
    for _ in range(runs):
        for label, kw in (("without_drops_ms", {}), ("with_drops_ms", {"drops": drops})):
            t0 = time.perf_counter()
            analyse(outcomes, latest.criteria, complete=False, **kw)
            times[label].append((time.perf_counter() - t0) * 1000)
    got = {k: statistics.median(v) for k, v in times.items()}
    got |= {k.replace("_ms", "_min_ms"): min(v) for k, v in times.items()}
    print(
        f"analyse {len(outcomes)} outcomes, {len(drops)} nodes dropping: "
        f"{got['without_drops_ms']:.0f} ms without the drop evidence, "
        f"{got['with_drops_ms']:.0f} ms with it (medians of {runs}, interleaved; "
        f"min {got['without_drops_min_ms']:.0f} / {got['with_drops_min_ms']:.0f} ms)"
    )
    return got


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
            "drop_rules": [r.text() for r in getattr(latest, "rules", ()) if "drops=" in r.text()],
        }
        print(
            f"{label:7s} first run {first:7.0f} ms, unchanged reports "
            f"{statistics.median(again):6.0f} ms (median of {args.runs}); "
            f"{len(latest.failing)} failing; {latest.verdict}: "
            f"{', '.join(findings) or '-'}"
        )
    if "drops" in inspect.signature(analyse).parameters:
        out["mining"] = mining_cost(bad, latest, args.runs)
    path = pathlib.Path("bench-results")
    path.mkdir(exist_ok=True)
    (path / "bench_judge.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
