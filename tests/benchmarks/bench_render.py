"""Render the collector's /metrics vs prometheus_client's ``generate_latest``, same state, same run.

A synthetic fleet (default 1,000 agents x 10 peers, TCP + UDP, a few
retransmission pairs each) is accepted into one ``CollectorState``. Then, on
that state:

- ``render_metrics`` warm: what a scrape costs (cached per-agent fragments joined);
- ``render_metrics`` cold: every report rendered from scratch (accept + render),
  as after a collector restart when every agent has just reported;
- prometheus_client: a custom collector that walks every report on each
  collect(), rendered by ``generate_latest`` — the reference the unit test
  tests/collector/test_exposition_reference.py proves parse-identical.

Series/s = series in the output / median seconds. Asserts nothing about time.

    .venv/bin/python tests/benchmarks/bench_render.py [--nodes 1000] [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable

from benchlib import Row, quick_default, report, synthetic_report
from prometheus_client import generate_latest

from collector.membership import StaticMembership
from collector.metrics import render_metrics
from collector.state import CollectorState, Limits
from tests.collector.test_exposition_reference import reference_registry

GOAL_RATIO = 10.0


def timed(fn: Callable[[], bytes], runs: int) -> tuple[float, bytes]:
    times = []
    out = b""
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def series(body: bytes) -> int:
    return body.count(b"\n") - body.count(b"\n#") - (1 if body.startswith(b"#") else 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", default=quick_default(), help="300 nodes, 3 runs"
    )
    args = parser.parse_args()
    if args.quick:
        args.nodes, args.runs = min(args.nodes, 300), 3
    started = time.monotonic()

    reports = [synthetic_report(i, args.nodes, args.peers) for i in range(args.nodes)]
    limits = Limits(report_ttl=1e9, stale_after=1e9, max_agents=10**6)

    def cold() -> bytes:
        state = CollectorState(limits)
        for r in reports:
            state.accept(r)
        return render_metrics(state, StaticMembership(state).current())

    state = CollectorState(limits)
    for r in reports:
        state.accept(r)
    members = StaticMembership(state).current()
    registry = reference_registry(state, members)

    t_cold, _ = timed(cold, args.runs)
    t_warm, ours = timed(lambda: render_metrics(state, members), args.runs)
    t_ref, theirs = timed(lambda: generate_latest(registry), max(1, args.runs // 2 + 1))
    n_ours, n_ref = series(ours), series(theirs)
    warm_ratio = (n_ours / t_warm) / (n_ref / t_ref)
    cold_ratio = (n_ours / t_cold) / (n_ref / t_ref)
    size = f"{args.nodes} agents x {args.peers} peers"
    rows = [
        Row(
            "series in /metrics",
            f"{n_ours} ({len(ours) / 1e6:.1f} MB); reference {n_ref}",
            value=n_ours,
        ),
        Row(
            "prometheus_client generate_latest",
            f"{t_ref * 1000:.0f} ms = {n_ref / t_ref / 1e6:.2f} M series/s",
            value=t_ref,
            unit="s",
        ),
        Row(
            "render_metrics cold (accept every report + render)",
            f"{t_cold * 1000:.0f} ms = {n_ours / t_cold / 1e6:.2f} M series/s "
            f"({cold_ratio:.1f}x reference)",
            value=cold_ratio,
            unit="x",
        ),
        Row(
            "render_metrics scrape (cached fragments)",
            f"{t_warm * 1000:.1f} ms = {n_ours / t_warm / 1e6:.1f} M series/s",
            value=t_warm,
            unit="s",
        ),
        Row(
            f"scrape series/s vs generate_latest ({size})",
            f"{warm_ratio:.0f}x",
            goal=f">= {GOAL_RATIO:.0f}x",
            met=warm_ratio >= GOAL_RATIO,
            value=warm_ratio,
            unit="x",
        ),
    ]
    report(
        "render",
        rows,
        params={"nodes": args.nodes, "peers": args.peers, "runs": args.runs},
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
