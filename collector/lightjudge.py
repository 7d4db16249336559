"""Judging the light tier: loss by direction against the mesh, RTT against peers, MTU blackholes.

Each agent reports, per peer, one window of light-tier probes (netmesh/wire.py
``LightPath``). Loss is judged per direction of the *traffic that was lost*:
traffic from a to b is the forward half of a's probes to b plus the return
half (the echoes) of b's probes to a, so both agents' windows add up. The
outcome of an ordered pair (a, b, ``light``) fails when:

- **loss**: its lost count is significantly above the mesh's typical loss:
  a one-sided binomial test, P(X >= lost | n, p0) < ``light_alpha``, where p0
  is the median loss of all directed pairs (at least ``light_loss_floor``) —
  so one bad node stands out against its peers, however long it has been
  bad, and not against its own past; at least ``light_min_lost`` lost;
- **loss pooled by node**: the same test on all the traffic into a node (and
  out of it); when that is significant, every pair of that direction that
  lost more than p0 fails too. One window holds ~200 packets per pair at the
  default rates, too few to tell 1 % from 0.1 % pair by pair (4 lost needed,
  2 expected), while the ~1,000 into one node of a 6-node mesh tell it at once
  (tests/benchmarks/bench_light.py);
- **no echo at all** on a's probes to b (direction unknown): the pair a → b;
- **latency**: the median RTT of a's probes to b is above
  ``light_rtt_factor`` x the median of all pairs' medians and at least
  ``light_rtt_min_increase`` seconds above it;
- **MTU blackhole**: a's don't-fragment probes at the path MTU to b vanished
  (``light_mtu_min_probes`` or more, none answered) while small probes pass.

Outcomes are ``PathOutcome``s with protocol ``light``, mined with the
heavy-tier ones (collector/mining.py): the verdict's direction (into or out
of a node) follows from which side of the lost traffic the node is on.
Pure: reports in, outcomes out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from collector.judging import Criteria, PathOutcome
from netmesh.wire import LightPath

LIGHT = "light"


@dataclass(slots=True)
class Directed:
    """Traffic from ``source`` to ``destination``: packets sent and lost, from both agents."""

    sent: int = 0
    lost: int = 0


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (exact, no SciPy)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    total = 0.0
    for i in range(k, n + 1):
        term = math.exp(
            log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        )
        total += term
        if term < total * 1e-12 and i > n * p:
            break
    return min(1.0, total)


def directed_traffic(
    light: Mapping[str, Sequence[LightPath]], chunk: int = 0
) -> Iterator[dict[tuple[str, str], Directed] | None]:
    """Sent and lost per direction, from every agent's forward and return counts.

    A generator: yields None after every ``chunk`` paths (0 = never), then the
    result; ``traffic_of`` runs it in one go."""
    out: dict[tuple[str, str], Directed] = {}
    get = out.get
    done = 0
    for node, paths in light.items():
        for p in paths:
            if p.forward_loss_ratio is not None:
                key = (node, p.destination)
                d = get(key)
                if d is None:
                    d = out[key] = Directed()
                d.sent += p.forward_sent
                d.lost += p.forward_sent - p.forward_received
            if p.return_loss_ratio is not None:
                key = (p.destination, node)
                d = get(key)
                if d is None:
                    d = out[key] = Directed()
                d.sent += p.return_sent
                d.lost += p.return_sent - p.return_received
        done += len(paths)
        if chunk and done >= chunk:
            done = 0
            yield None
    yield out


def traffic_of(light: Mapping[str, Sequence[LightPath]]) -> dict[tuple[str, str], Directed]:
    *_, out = directed_traffic(light)
    assert out is not None
    return out


Pools = dict[tuple[str, str], tuple[Directed, list[tuple[str, str]]]]


def pooled_by_node(
    traffic: Mapping[tuple[str, str], Directed], chunk: int = 0
) -> Iterator[Pools | None]:
    """Sent and lost into (``"into"``) and out of (``"out of"``) every node over all its
    peers, with the pairs pooled (so a significant pool's pairs need no second search).
    Yields None after every ``chunk`` pairs (0 = never), then the pools."""
    out: Pools = {}
    get = out.get
    done = 0
    for (a, b), d in traffic.items():
        for key in ((b, "into"), (a, "out of")):
            entry = get(key)
            if entry is None:
                entry = out[key] = (Directed(), [])
            pool, pairs = entry
            pool.sent += d.sent
            pool.lost += d.lost
            pairs.append((a, b))
        done += 1
        if chunk and done >= chunk:
            done = 0
            yield None
    yield out


def _significant(d: Directed, p0: float, criteria: Criteria) -> float | None:
    """The p-value when ``d`` lost significantly more than ``p0``, else None."""
    if d.sent <= 0 or d.lost < criteria.light_min_lost or d.lost / d.sent <= p0:
        return None
    p_value = binomial_sf(d.lost, d.sent, p0)
    return p_value if p_value < criteria.light_alpha else None


def judge_light(
    light: Mapping[str, Sequence[LightPath]], criteria: Criteria, *, at: float = 0.0
) -> list[PathOutcome]:
    """One outcome per ordered pair the light tier saw (see the module docstring)."""
    *_, out = judge_light_steps(light, criteria, at=at)
    assert out is not None
    return out


# Seconds past a window's end that its probes may still be answered in (agent/light.py's
# grace is 1 s) plus a margin for clocks and report delay.
SETTLE_SECONDS = 2.0


def settled(
    light: Mapping[str, Sequence[LightPath]],
    started: Mapping[str, float],
    generated: Mapping[str, float],
) -> dict[str, list[LightPath]]:
    """The windows that began after both of their agents had started.

    ``started``/``generated``: node -> its agent's start time and its report's time.
    A window reaching back before the destination's agent started holds probes nobody
    could answer (no echo, loss), and one reaching back before its own agent started
    holds only the first few probes (an RTT median of a handful): agents starting one
    after the other -- a lab coming up, a DaemonSet rolling out -- named links and nodes
    in their first seconds. A destination without a report is kept (a silent peer is
    evidence)."""
    out: dict[str, list[LightPath]] = {}
    for node, paths in light.items():
        end = generated.get(node, 0.0) - SETTLE_SECONDS
        out[node] = [
            p
            for p in paths
            if started.get(node, 0.0) <= end - p.window_seconds
            and started.get(p.destination, 0.0) <= end - p.window_seconds
        ]
    return out


def judge_light_steps(
    light: Mapping[str, Sequence[LightPath]],
    criteria: Criteria,
    *,
    at: float = 0.0,
    chunk: int = 0,
) -> Iterator[list[PathOutcome] | None]:
    """``judge_light`` in steps: yields None after about every ``chunk`` paths or pairs
    (0 = never), the outcomes last. At 5,000 agents x 20 peers a run is ~100,000
    paths: a few hundred ms of Python that must not hold the collector's loop."""
    traffic: dict[tuple[str, str], Directed] = {}
    for step in directed_traffic(light, chunk):
        if step is None:
            yield None
        else:
            traffic = step
    # Every pair, grouped by source (sorted at the end, one small sort per source),
    # and the loss ratios, in steps: 200,000 pairs in one go held the loop ~0.1 s.
    by_source: dict[str, set[str]] = {}
    ratios: list[float] = []
    done = 0
    for (a, b), d in traffic.items():
        dests = by_source.get(a)
        if dests is None:
            by_source[a] = {b}
        else:
            dests.add(b)
        if d.sent > 0:
            ratios.append(d.lost / d.sent)
        done += 1
        if chunk and done >= chunk:
            done = 0
            yield None
    p0 = max(criteria.light_loss_floor, statistics.median(ratios) if ratios else 0.0)
    medians: list[float] = []
    for paths in light.values():
        medians.extend(p.rtt_median_seconds for p in paths if p.rtt_median_seconds is not None)
    if chunk:
        yield None
    typical_rtt = statistics.median(medians) if medians else None
    if chunk:
        yield None

    # Only failing pairs get a list of reasons; the others are OK.
    reasons: dict[tuple[str, str], list[str]] = {}
    for (a, b), d in traffic.items():
        if d.lost < criteria.light_min_lost:
            continue  # (the cheap part of _significant first: most pairs lose nothing)
        p_value = _significant(d, p0, criteria)
        if p_value is not None:
            reasons.setdefault((a, b), []).append(
                f"light-tier loss {d.lost}/{d.sent} ({d.lost / d.sent:.1%}) from {a} to {b}, "
                f"typical {p0:.2%} (p={p_value:.1g})"
            )
    pools: Pools = {}
    for pooled in pooled_by_node(traffic, chunk):
        if pooled is None:
            yield None
        else:
            pools = pooled
    for (node, way), (pool, pairs) in pools.items():
        p_value = _significant(pool, p0, criteria)
        if p_value is None:
            continue
        for a, b in pairs:
            d = traffic[(a, b)]
            if (a, b) in reasons:
                continue
            if d.sent > 0 and d.lost > 0 and d.lost / d.sent > p0:
                reasons[(a, b)] = [
                    f"light-tier loss {d.lost}/{d.sent} ({d.lost / d.sent:.1%}) from {a} to {b}; "
                    f"{way} {node} in all {pool.lost}/{pool.sent} ({pool.lost / pool.sent:.1%}), "
                    f"typical {p0:.2%} (p={p_value:.1g})"
                ]
    if chunk:
        yield None
    done = 0
    for node, paths in light.items():
        for p in paths:
            pair = (node, p.destination)
            dests = by_source.get(node)
            if dests is None:
                by_source[node] = {p.destination}
            else:
                dests.add(p.destination)
            if p.sent > 0 and p.received == 0:
                reasons.setdefault(pair, []).append(f"light tier: none of {p.sent} probes answered")
                continue
            median = p.rtt_median_seconds
            if (
                typical_rtt is not None
                and median is not None
                and median > criteria.light_rtt_factor * typical_rtt
                and median - typical_rtt >= criteria.light_rtt_min_increase
            ):
                reasons.setdefault(pair, []).append(
                    f"light-tier RTT median {median * 1e3:.2f} ms, typical "
                    f"{typical_rtt * 1e3:.2f} ms"
                )
            if (
                p.mtu_sent >= criteria.light_mtu_min_probes
                and p.mtu_received == 0
                and p.loss_ratio < 0.5
            ):
                reasons.setdefault(pair, []).append(
                    f"MTU blackhole: {p.mtu_sent} don't-fragment probes of {p.mtu_size} bytes "
                    "lost, small probes pass"
                )
        done += len(paths)
        if chunk and done >= chunk:
            done = 0
            yield None
    # Sorted by (source, destination), in steps: one sorted() of 200,000 pairs held
    # the loop for ~0.2 s; by source, each sort is one node's few peers.
    out: list[PathOutcome] = []
    done = 0
    for a in sorted(by_source):
        ordered = sorted(by_source[a])
        out.extend(
            PathOutcome(a, b, LIGHT, "ok", at, tuple(reasons[(a, b)]) if (a, b) in reasons else ())
            for b in ordered
        )
        done += len(ordered)
        if chunk and done >= chunk:
            done = 0
            yield None
    yield out
