"""Judging the heavy tier against the mesh: peers, capacity, latency (no I/O here).

``collector/judging.py`` judges each test on its own (its loss, its
retransmissions, the path's own history). A fault that every test of a node
shares, or that predates the agent, looks normal there; against the mesh it
does not. Over the latest successful test of every path, a test FAILs when:

- **peers**: its bandwidth is below ``peer_fraction`` of the median of the
  comparable paths (same protocol, same bottleneck link speed when known),
  and the shortfall is more than ``peer_mad_factor`` robust standard
  deviations (1.4826 x the median absolute deviation) of them; or its
  source's (destination's) median bandwidth is, by the same two tests, below
  the other sources' (destinations') medians — then each of that node's
  paths below ``peer_fraction`` of the nodes' median fails too (robust when
  more than half the paths are slow: a slow rack uplink in a small mesh).
  "Everything out of node X runs at 30 % of everyone else" so fails from
  the first sweep, with no history.
  Needs ``peer_min_paths`` comparable paths (nodes).
- **capacity**: a TCP test below ``capacity_fraction`` of the link speed of
  the slower of its two nodes (both must report one) — even when every path
  is as slow, where peers see nothing.
- **latency**: a TCP test whose iperf3 RTT mean (measured under load, so the
  thresholds are loose) is above ``rtt_factor`` x its peers' median RTT, at
  least ``rtt_min_increase`` seconds and ``peer_mad_factor`` robust standard
  deviations above it. The light tier judges RTT at rest
  (``collector/lightjudge.py``).

``mesh_reasons`` returns the extra reasons per path; the live RCA adds them
to the outcomes of ``PathJudge`` before mining.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from collector.judging import Criteria, PathKey
from collector.topology import NodeTopology
from netmesh.wire import TestResult

MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of a normal sample


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of a sample and its robust standard deviation."""

    median: float
    sigma: float
    size: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        med = statistics.median(values)
        mad = statistics.median(abs(v - med) for v in values)
        return cls(med, MAD_SCALE * mad, len(values))

    def far_below(self, value: float, fraction: float, k: float) -> bool:
        return value < fraction * self.median and self.median - value > k * self.sigma

    def far_above(self, value: float, factor: float, min_increase: float, k: float) -> bool:
        excess = value - self.median
        return value > factor * self.median and excess >= min_increase and excess > k * self.sigma


def _mbit(bps: float) -> str:
    return f"{bps / 1e6:.0f} Mbit/s"


def capacity(r: TestResult, topology: Mapping[str, NodeTopology]) -> int | None:
    """The link speed of the slower end of ``r``'s path, when both ends report one."""
    a, b = topology.get(r.source), topology.get(r.destination)
    if a is None or b is None or a.link_speed is None or b.link_speed is None:
        return None
    return min(a.link_speed, b.link_speed)


def _bw(r: TestResult) -> float:
    return r.received_bits_per_second or 0.0


def _key(r: TestResult) -> PathKey:
    return (r.source, r.destination, r.protocol)


def mesh_reasons(
    results: Iterable[TestResult], topology: Mapping[str, NodeTopology], criteria: Criteria
) -> dict[PathKey, list[str]]:
    """Extra FAIL reasons per path from its peers, its capacity and its RTT (module docstring)."""
    ok = [r for r in results if r.ok and r.received_bits_per_second is not None]
    out: dict[PathKey, list[str]] = defaultdict(list)
    groups: dict[tuple[str, int | None], list[TestResult]] = defaultdict(list)
    for r in ok:
        cap = capacity(r, topology)
        groups[(r.protocol, cap)].append(r)
        if (
            cap is not None
            and r.protocol == "tcp"
            and criteria.capacity_fraction > 0
            and _bw(r) < criteria.capacity_fraction * cap
        ):
            out[_key(r)].append(
                f"bandwidth {_mbit(_bw(r))} < {criteria.capacity_fraction:.0%} of the link "
                f"speed {_mbit(cap)} (the slower end)"
            )
    if criteria.peer_fraction > 0:
        for group in groups.values():
            if len(group) >= criteria.peer_min_paths:
                _peers(group, criteria, out)
    if criteria.rtt_factor > 0:
        _latency(ok, criteria, out)
    return dict(out)


def _peers(group: Sequence[TestResult], c: Criteria, out: dict[PathKey, list[str]]) -> None:
    mesh = Spread.of([_bw(r) for r in group])
    flagged: set[PathKey] = set()
    for r in group:
        if mesh.far_below(_bw(r), c.peer_fraction, c.peer_mad_factor):
            flagged.add(_key(r))
            out[_key(r)].append(
                f"bandwidth {_mbit(_bw(r))} < {c.peer_fraction:.0%} of its peers' median "
                f"{_mbit(mesh.median)} ({mesh.size} {r.protocol} paths)"
            )
    for role, way in (("source", "out of"), ("destination", "into")):
        by_node: dict[str, list[TestResult]] = defaultdict(list)
        for r in group:
            by_node[getattr(r, role)].append(r)
        if len(by_node) < c.peer_min_paths:
            continue
        medians = {n: statistics.median(_bw(r) for r in rs) for n, rs in by_node.items()}
        nodes = Spread.of(list(medians.values()))
        for node, med in medians.items():
            if not nodes.far_below(med, c.peer_fraction, c.peer_mad_factor):
                continue
            for r in by_node[node]:
                if _key(r) in flagged or _bw(r) >= c.peer_fraction * nodes.median:
                    continue
                flagged.add(_key(r))
                out[_key(r)].append(
                    f"bandwidth {_mbit(_bw(r))}: {way} {node} the median is {_mbit(med)}, "
                    f"< {c.peer_fraction:.0%} of the nodes' median {_mbit(nodes.median)}"
                )


def _latency(ok: Sequence[TestResult], c: Criteria, out: dict[PathKey, list[str]]) -> None:
    tcp = [r for r in ok if r.protocol == "tcp" and r.rtt_mean_seconds is not None]
    if len(tcp) < c.peer_min_paths:
        return
    rtts = Spread.of([r.rtt_mean_seconds or 0.0 for r in tcp])
    for r in tcp:
        rtt = r.rtt_mean_seconds or 0.0
        if rtts.far_above(rtt, c.rtt_factor, c.rtt_min_increase, c.peer_mad_factor):
            out[_key(r)].append(
                f"iperf3 RTT {rtt * 1e3:.2f} ms (under load) > {c.rtt_factor:g}x its peers' "
                f"median {rtts.median * 1e3:.2f} ms"
            )
