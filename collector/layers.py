"""Which layer fails: a node's pod network (overlay/CNI) while its host paths are fine.

The pod-network endpoints (one per node, ``network=pod``) probe each other
exactly as the host agents do, so every pair of nodes is measured on both
layers. This module compares the two, per node (pure: windows in, findings out):

1. **Pod pairs fail** by the light tier's criteria (collector/lightjudge.py:
   loss against the pod mesh, no echo, RTT, MTU blackhole) or by an **MTU
   mismatch**: at least ``mtu_min_lost`` of the pair's don't-fragment probes at
   the sender's interface MTU lost (at least ``mtu_loss_ratio`` of them) while
   its small probes pass — the classic overlay MTU mismatch (a node's pods think
   their MTU is 1500, the encapsulation needs 50 bytes of it). Unlike the
   blackhole criterion, earlier answered MTU probes in the same window do not
   hide it, so a mismatch that begins is named within a couple of MTU intervals.
2. **A node is named** (greedy, most failing pod pairs first) when at least
   ``min_failing`` of its pod pairs in one direction (out of it, into it) fail
   and they are at least ``node_share`` of its pairs in that direction — and its
   **host paths are fine**: under ``host_share`` of its host pairs (light tier
   and iperf3 tests) fail. A node whose host paths fail as well is an underlay
   problem: the host RCA names it; here its pod pairs are only explained.
3. The finding's kind: ``overlay-mtu`` when every failing pair it explains is an
   MTU mismatch or blackhole (summary "overlay MTU on node X"), else
   ``pod-network`` (the overlay/CNI of node X: loss, no echo, latency). Its
   layer is ``overlay``.
4. **Cluster-wide**: when at least ``cluster_share`` of all pod pairs fail and
   the host pairs are fine, one finding for the whole pod network (node "").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.judging import Criteria, PathOutcome
from collector.lightjudge import judge_light
from netmesh.wire import LightPath, TestResult

OVERLAY = "overlay"
OVERLAY_MTU, POD_NETWORK = "overlay-mtu", "pod-network"
CLUSTER_WIDE = ""
Pair = tuple[str, str]


@dataclass(frozen=True, kw_only=True)
class LayerCriteria:
    min_failing: int = 2  # failing pod pairs a node needs (1 in a two-node mesh)
    node_share: float = 0.5  # of the node's pod pairs in that direction
    host_share: float = 0.5  # a node's host paths are fine below this failing share
    mtu_min_lost: int = 2
    mtu_loss_ratio: float = 0.5
    cluster_share: float = 0.5


@dataclass(frozen=True, kw_only=True)
class LayerFinding:
    node: str  # CLUSTER_WIDE for the whole pod network
    kind: str  # OVERLAY_MTU or POD_NETWORK
    direction: str  # outbound, inbound or both ("" cluster-wide)
    summary: str
    evidence: dict[str, Any]
    layer: str = OVERLAY

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node or None,
            "scope": "cluster-wide" if self.node == CLUSTER_WIDE else "node",
            "layer": self.layer,
            "network": "pod",
            "kind": self.kind,
            "direction": self.direction,
            "summary": self.summary,
            "evidence": self.evidence,
        }


def mtu_mismatch(p: LightPath, criteria: LayerCriteria) -> str | None:
    """Why the pair's don't-fragment probes show an MTU mismatch, or None."""
    lost = p.mtu_sent - p.mtu_received
    if p.mtu_sent <= 0 or lost < criteria.mtu_min_lost:
        return None
    if lost / p.mtu_sent < criteria.mtu_loss_ratio or p.sent <= 0 or p.loss_ratio >= 0.5:
        return None
    return (
        f"MTU mismatch: {lost} of {p.mtu_sent} don't-fragment probes of {p.mtu_size} bytes "
        "lost, small probes pass"
    )


def pod_pair_reasons(
    light: Mapping[str, Sequence[LightPath]], criteria: Criteria, layer: LayerCriteria
) -> tuple[dict[Pair, list[str]], set[Pair]]:
    """Failing pod pairs with their reasons, and every pod pair measured."""
    reasons: dict[Pair, list[str]] = {}
    pairs: set[Pair] = set()
    for o in judge_light(light, criteria):
        pairs.add((o.source, o.destination))
        if o.failed:
            reasons.setdefault((o.source, o.destination), []).extend(o.reasons)
    for node, paths in light.items():
        for p in paths:
            pairs.add((node, p.destination))
            why = mtu_mismatch(p, layer)
            found = reasons.get((node, p.destination), [])
            if why is not None and not any(r.startswith("MTU blackhole") for r in found):
                reasons.setdefault((node, p.destination), []).append(why)
    return reasons, pairs


def host_failing_share(
    light: Mapping[str, Sequence[LightPath]],
    results: Mapping[str, Sequence[TestResult]],
    criteria: Criteria,
    judged: Sequence[PathOutcome] | None = None,
) -> dict[str, float]:
    """Per node, the share of its host pairs (either direction) that fail.

    ``judged``: the host light tier's outcomes when the host RCA already has them
    (collector/live.py), else the host light windows are judged here.
    """
    failing: set[Pair] = set()
    pairs: set[Pair] = set()
    for o in judged if judged is not None else judge_light(light, criteria):
        pairs.add((o.source, o.destination))
        if o.failed:
            failing.add((o.source, o.destination))
    for node, latest in results.items():
        for r in latest:
            pairs.add((node, r.destination))
            if not r.ok and r.result != "busy":  # a collision is no evidence
                failing.add((node, r.destination))
    total: dict[str, int] = {}
    bad: dict[str, int] = {}
    for a, b in pairs:
        for n in (a, b):
            total[n] = total.get(n, 0) + 1
            bad[n] = bad.get(n, 0) + ((a, b) in failing)
    return {n: bad[n] / total[n] for n in total}


def _direction(node: str, pairs: set[Pair]) -> str:
    outbound = sum(1 for a, _ in pairs if a == node)
    inbound = len(pairs) - outbound
    if outbound and not inbound:
        return "outbound"
    return "inbound" if inbound and not outbound else "both"


def _candidate(
    node: str, failing: set[Pair], every: set[Pair], criteria: LayerCriteria, need: int
) -> set[Pair]:
    """The node's failing pod pairs when a direction qualifies (else empty)."""
    chosen: set[Pair] = set()
    for side in (0, 1):
        mine = {p for p in every if p[side] == node}
        bad = {p for p in failing if p[side] == node}
        if mine and len(bad) >= need and len(bad) >= criteria.node_share * len(mine):
            chosen |= bad
    return chosen


def _finding(node: str, explained: set[Pair], reasons: Mapping[Pair, list[str]]) -> LayerFinding:
    why = {f"{a} -> {b}": reasons[(a, b)] for a, b in sorted(explained)}
    mtu = all(
        all(r.startswith(("MTU mismatch", "MTU blackhole")) for r in reasons[p]) for p in explained
    )
    direction = _direction(node, explained)
    way = {"outbound": "from it", "inbound": "into it", "both": "to and from it"}[direction]
    if mtu:
        sizes = sorted(
            {r.split(" bytes")[0].rsplit(" ", 1)[-1] for p in explained for r in reasons[p]}
        )
        summary = (
            f"overlay MTU on node {node}: don't-fragment probes of {'/'.join(sizes)} bytes "
            f"{way} are lost on {len(explained)} pod paths while small probes pass and its "
            "host paths are fine (the pod MTU does not leave room for the encapsulation)"
        )
    else:
        summary = (
            f"pod network (overlay/CNI) of node {node}: {len(explained)} pod paths {way} fail "
            "while its host paths are fine"
        )
    return LayerFinding(
        node=node,
        kind=OVERLAY_MTU if mtu else POD_NETWORK,
        direction=direction,
        summary=summary,
        evidence={"failing_pod_paths": len(explained), "reasons": why},
    )


class LayerJudge:
    """The latest layer findings of the live collector (replaced whole on every run).

    A run judges both networks' light tiers (10 ms at 100 nodes x 20 peers, ~140 ms
    at 1,000, on the event loop): it runs again only after ``duty`` times its
    latest cost went by, so at most 1/``duty`` of the loop's time goes to it.
    """

    def __init__(
        self,
        criteria: Criteria,
        layer: LayerCriteria | None = None,
        *,
        duty: float = 20.0,
        perf: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.criteria = criteria
        self.layer = layer or LayerCriteria()
        self.duty = duty
        self.perf = perf
        self.findings: tuple[LayerFinding, ...] = ()
        self.seconds = 0.0  # the latest run's cost
        self._next = -math.inf  # perf() time of the next allowed run

    def run(
        self,
        pod_light: Mapping[str, Sequence[LightPath]],
        host_light: Mapping[str, Sequence[LightPath]],
        host_results: Mapping[str, Sequence[TestResult]],
        host_judged: Sequence[PathOutcome] | None = None,
    ) -> tuple[LayerFinding, ...]:
        """Judge; nothing to do (and no cost) while no pod-network endpoint reports.
        ``host_judged``: the host RCA's light-tier outcomes, when it has them."""
        if not pod_light:
            self.findings = ()
            return self.findings
        started = self.perf()
        if started < self._next:
            return self.findings
        self.findings = tuple(
            judge_layers(
                pod_light,
                host_light,
                host_results,
                self.criteria,
                self.layer,
                host_judged=host_judged,
            )
        )
        self.seconds = self.perf() - started
        self._next = started + self.duty * self.seconds
        return self.findings


def judge_layers(
    pod_light: Mapping[str, Sequence[LightPath]],
    host_light: Mapping[str, Sequence[LightPath]],
    host_results: Mapping[str, Sequence[TestResult]],
    criteria: Criteria,
    layer: LayerCriteria | None = None,
    *,
    host_judged: Sequence[PathOutcome] | None = None,
) -> list[LayerFinding]:
    """The nodes whose pod network fails while their host paths are fine (see above)."""
    layer = layer or LayerCriteria()
    reasons, every = pod_pair_reasons(pod_light, criteria, layer)
    if not reasons:
        return []
    host = host_failing_share(host_light, host_results, criteria, host_judged)
    nodes = {n for pair in every for n in pair}
    need = min(layer.min_failing, max(1, len(nodes) - 1))
    unexplained = set(reasons)
    findings: list[LayerFinding] = []
    host_fine = all(share < layer.host_share for share in host.values())
    if host_fine and len(nodes) > 2 and len(reasons) >= layer.cluster_share * len(every):
        named = [n for n in nodes if _candidate(n, set(reasons), every, layer, need)]
        if len(named) > len(nodes) / 2:
            return [
                LayerFinding(
                    node=CLUSTER_WIDE,
                    kind=POD_NETWORK,
                    direction="",
                    summary=f"pod network cluster-wide: {len(reasons)} of {len(every)} pod "
                    "paths fail while the host paths are fine",
                    evidence={"failing_pod_paths": len(reasons), "pod_paths": len(every)},
                )
            ]
    while unexplained:
        best: tuple[int, str, set[Pair]] | None = None
        for node in sorted(nodes):
            pairs = _candidate(node, unexplained, every, layer, need)
            if pairs and (best is None or len(pairs) > best[0]):
                best = (len(pairs), node, pairs)
        if best is None:
            break
        _, node, pairs = best
        unexplained -= pairs
        if host.get(node, 0.0) >= layer.host_share:
            continue  # its host paths fail too: the underlay, named by the host RCA
        findings.append(_finding(node, pairs, reasons))
    return findings
