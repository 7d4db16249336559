"""Time to render the collector's /metrics for a synthetic 1,000 nodes x 10 peers.

Prints the median of several runs for a cold render (every agent's fragments
rendered from its report, as when 1,000 reports have just arrived) and a warm
scrape (cached fragments joined; what a scrape costs between reports). Asserts
nothing about time.

    .venv/bin/python tests/benchmarks/bench_render.py [--nodes 1000] [--peers 10] [--runs 7]
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import time

from agent.report import (
    AgentHealth,
    ProbeStatus,
    Report,
    RetransmitFlow,
    TestCount,
    TestResult,
)
from collector.membership import StaticMembership
from collector.metrics import render_metrics
from collector.state import CollectorState, Limits


def synthetic_report(i: int, n: int, peers: int) -> Report:
    name = f"node-{i:04d}"
    address = str(ipaddress.ip_address("10.0.0.0") + i + 1)
    results = []
    tests = []
    for k in range(1, peers + 1):
        dst = f"node-{(i + k) % n:04d}"
        for proto in ("tcp", "udp"):
            tcp = proto == "tcp"
            results.append(
                TestResult(
                    source=name,
                    destination=dst,
                    protocol=proto,
                    result="ok",
                    started_at=1_700_000_000.0 + k,
                    duration_seconds=5.01,
                    sent_bits_per_second=9.4e9 + k,
                    received_bits_per_second=9.3e9 + k,
                    retransmits=k if tcp else None,
                    rtt_min_seconds=1e-5 if tcp else None,
                    rtt_mean_seconds=2.5e-5 if tcp else None,
                    rtt_max_seconds=9e-5 if tcp else None,
                    jitter_seconds=None if tcp else 1.2e-5,
                    lost_packets=None if tcp else 3,
                    packets=None if tcp else 8000,
                    loss_ratio=None if tcp else 3 / 8000,
                )
            )
            tests.append(TestCount(destination=dst, protocol=proto, result="ok", count=100 + k))
    flows = tuple(
        RetransmitFlow(
            local=address,
            remote=str(ipaddress.ip_address("10.0.0.0") + (i + k) % n + 1),
            port=5201,
            count=k,
        )
        for k in range(1, peers + 1)
    )
    return Report(
        node=name,
        address=address,
        iperf3_port=5201,
        http_port=9101,
        generated_at=1_700_000_100.0,
        started_at=1_699_000_000.0,
        results=tuple(results),
        tests=tuple(tests),
        agent=AgentHealth(iperf3_server_up=1, members=n, epoch=1),
        probe=ProbeStatus(mode="tracepoint", up=1, map_entries=peers, map_capacity=8192),
        retransmits=flows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    reports = [synthetic_report(i, args.nodes, args.peers) for i in range(args.nodes)]
    cold: list[float] = []
    warm: list[float] = []
    size = 0
    for _ in range(args.runs):
        state = CollectorState(Limits(report_ttl=1e9, stale_after=1e9, max_agents=10**6))
        membership = StaticMembership(state)
        started = time.perf_counter()
        for r in reports:
            state.accept(r)
        body = render_metrics(state, membership.current())
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        body = render_metrics(state, membership.current())
        warm.append(time.perf_counter() - started)
        size = len(body)
    lines = body.count(b"\n")
    print(
        f"{args.nodes} nodes x {args.peers} peers: {lines} lines, {size / 1e6:.1f} MB; "
        f"median of {args.runs} runs: cold render {statistics.median(cold) * 1000:.0f} ms "
        f"(every report rendered), warm scrape {statistics.median(warm) * 1000:.1f} ms "
        f"(cached fragments joined)"
    )


if __name__ == "__main__":
    main()
