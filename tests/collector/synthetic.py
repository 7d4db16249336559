"""Synthetic meshes of real test results for the RCA tests: faults and noise by construction.

A ``Net`` says, per ordered pair, the TCP rate a path achieves and the share
of packets it loses; ``sweep`` turns it into one iperf3 TCP and one UDP result
per ordered pair (what agents report after one bandwidth sweep), with
multiplicative noise on the rates and RTTs; ``run`` feeds sweeps through the
collector's live RCA (judging, mesh judgement, findings) and returns the
latest analysis.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from collector.judging import Criteria
from collector.live import LiveRca
from collector.topology import NodeTopology
from collector.verdict import Analysis
from netmesh.wire import TestResult

MSS = 1448
UDP_OFFERED = 1e8
LINK = 1e9  # every node's link speed unless a test says otherwise

Pair = tuple[str, str]


@dataclass
class Net:
    nodes: list[str]
    rack: Mapping[str, str] = field(default_factory=dict)
    rate: Callable[[str, str], float] = lambda _s, _d: 0.94 * LINK
    loss: Callable[[str, str], float] = lambda _s, _d: 0.0
    rtt: Callable[[str, str], float] = lambda _s, _d: 0.0004
    noise: float = 0.05  # relative spread of rates and RTTs
    link_speed: float | None = LINK

    def topology(self) -> dict[str, NodeTopology]:
        speed = None if self.link_speed is None else int(self.link_speed)
        return {n: NodeTopology(rack=self.rack.get(n, ""), link_speed=speed) for n in self.nodes}

    def renamed(self, names: Mapping[str, str]) -> Net:
        back = {v: k for k, v in names.items()}
        return Net(
            nodes=[names[n] for n in self.nodes],
            rack={names[n]: r for n, r in self.rack.items()},
            rate=lambda s, d: self.rate(back[s], back[d]),
            loss=lambda s, d: self.loss(back[s], back[d]),
            rtt=lambda s, d: self.rtt(back[s], back[d]),
            noise=self.noise,
            link_speed=self.link_speed,
        )


def names(n: int) -> list[str]:
    return [f"node-{i}" for i in range(1, n + 1)]


def racks(*sizes: int) -> tuple[list[str], dict[str, str]]:
    """Nodes in racks of the given sizes: node-1.. in rack-1, then rack-2, ..."""
    nodes: list[str] = []
    rack: dict[str, str] = {}
    for r, size in enumerate(sizes, 1):
        for _ in range(size):
            name = f"node-{len(nodes) + 1}"
            nodes.append(name)
            rack[name] = f"rack-{r}"
    return nodes, rack


def sweep(net: Net, rng: random.Random, at: float) -> dict[str, tuple[TestResult, ...]]:
    """One TCP and one UDP result per ordered pair (sorted by pair, noise drawn in that order)."""
    out: dict[str, list[TestResult]] = {n: [] for n in net.nodes}
    for s in sorted(net.nodes):
        for d in sorted(net.nodes):
            if s == d:
                continue
            jitter = [max(0.2, rng.gauss(1.0, net.noise)) for _ in range(3)]
            loss = net.loss(s, d)
            rate = net.rate(s, d) * jitter[0] * (1 - loss)
            duration = 5.0
            segments = rate * duration / 8 / MSS
            out[s].append(
                TestResult(
                    source=s,
                    destination=d,
                    protocol="tcp",
                    result="ok",
                    started_at=at,
                    duration_seconds=duration,
                    sent_bits_per_second=rate,
                    received_bits_per_second=rate,
                    retransmits=round(segments * (loss + 0.0005)),
                    rtt_min_seconds=net.rtt(s, d) * 0.5,
                    rtt_mean_seconds=net.rtt(s, d) * jitter[1],
                    rtt_max_seconds=net.rtt(s, d) * 3,
                )
            )
            packets = 8000
            lost = round(packets * (loss + rng.uniform(0, 0.002)))
            out[s].append(
                TestResult(
                    source=s,
                    destination=d,
                    protocol="udp",
                    result="ok",
                    started_at=at + 0.5,
                    duration_seconds=duration,
                    sent_bits_per_second=UDP_OFFERED,
                    received_bits_per_second=min(UDP_OFFERED, net.rate(s, d) * jitter[2])
                    * (1 - lost / packets),
                    jitter_seconds=0.0001,
                    lost_packets=lost,
                    packets=packets,
                    loss_ratio=lost / packets,
                )
            )
    return {n: tuple(rs) for n, rs in out.items()}


def run(
    net: Net,
    *,
    sweeps: int = 1,
    seed: int = 0,
    criteria: Criteria | None = None,
    live: LiveRca | None = None,
    start: float = 1_700_000_000.0,
) -> Analysis:
    """``sweeps`` sweeps through the live RCA (one run per sweep); the last analysis."""
    rng = random.Random(seed)
    live = live if live is not None else LiveRca(criteria or Criteria(), baseline_samples=30)
    for i in range(sweeps):
        at = start + 60.0 * i
        for _ in live.steps(
            sweep(net, rng, at), {}, lambda _ip: None, now=at + 30, topology=net.topology()
        ):
            pass
    assert live.latest is not None
    return live.latest


def found(analysis: Analysis) -> set[tuple[str, str, str]]:
    """The findings as (kind, subject, direction)."""
    return {(f.kind, f.subject, f.direction) for f in analysis.findings}
