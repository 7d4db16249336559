"""Judging a per-node check that reports a window of attempts: failing, slow, cluster-wide.

The DNS check (collector/dnsjudge.py) and the Service check
(collector/servicejudge.py) both report, per endpoint, a window of attempts
with their failures and the median time of the good ones. A node's check is

- **failing** when at least ``min_attempts`` attempts in its window ended and
  at least ``failure_ratio`` of them failed;
- **slow** when its median is above ``slow_factor`` x the median of the other
  nodes' medians and above ``slow_min_seconds`` (needs two other nodes);

and when more than half of the checked nodes fail, that is one cluster-wide
finding (the service behind the check, not every node). The host agents and
the pod-network endpoints are judged apart (``judge_networks``) and a node's
findings of the same kind merged: "DNS on node-2" (host and pod network) or
"DNS from the pod network on node-2" (the node's own resolver works). Pure:
statuses in, findings out.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from netmesh.checkwindow import WindowedStatus

FAILING, SLOW = "failing", "slow"
CLUSTER_WIDE = ""  # the node of a cluster-wide finding


@dataclass(frozen=True, kw_only=True)
class WindowCriteria:
    min_attempts: int = 3
    failure_ratio: float = 0.5
    slow_factor: float = 5.0
    slow_min_seconds: float = 0.1


@dataclass(frozen=True, kw_only=True)
class CheckFinding:
    node: str  # CLUSTER_WIDE for the whole cluster
    kind: str
    layer: str  # dns or service
    summary: str
    evidence: dict[str, Any]
    networks: tuple[str, ...] = ("host",)  # whose check found it: host agents, pod endpoints

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node or None,
            "scope": "cluster-wide" if self.node == CLUSTER_WIDE else "node",
            "layer": self.layer,
            "kind": self.kind,
            "networks": list(self.networks),
            "summary": self.summary,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, kw_only=True)
class CheckKind:
    """How one check is named in findings."""

    layer: str  # "dns"
    title: str  # "DNS"
    attempts: str  # "lookups of"
    subject: Callable[[Any], str]  # status → what it checks (a name, host:port)
    evidence: Callable[[Any], dict[str, Any]]  # status → extra evidence of a failing node


def failing(
    node: str, s: WindowedStatus, kind: CheckKind, c: WindowCriteria
) -> CheckFinding | None:
    ratio = s.failure_ratio
    if s.window_total < c.min_attempts or ratio is None or ratio < c.failure_ratio:
        return None
    return CheckFinding(
        node=node,
        kind=FAILING,
        layer=kind.layer,
        summary=f"{kind.title} on {node}: {s.window_failures} of {s.window_total} "
        f"{kind.attempts} {kind.subject(s)} failed in {s.window_seconds:.0f} s "
        f"(mostly {s.dominant_failure()})",
        evidence={
            **kind.evidence(s),
            "attempts": s.window_total,
            "failures": s.window_failures,
            "failure_ratio": ratio,
        },
    )


def checked(statuses: Mapping[str, WindowedStatus]) -> dict[str, WindowedStatus]:
    """The nodes whose check runs."""
    return {n: s for n, s in statuses.items() if s.up}


def judge_window(
    statuses: Mapping[str, WindowedStatus], kind: CheckKind, c: WindowCriteria
) -> tuple[list[CheckFinding], bool]:
    """Failing nodes (or one cluster-wide finding: then True) and slow nodes."""
    up = checked(statuses)
    bad = [f for n in sorted(up) if (f := failing(n, up[n], kind, c))]
    if bad and 2 * len(bad) > len(up) and len(up) > 1:
        names = ", ".join(f.node for f in bad)
        return [
            CheckFinding(
                node=CLUSTER_WIDE,
                kind=FAILING,
                layer=kind.layer,
                summary=f"{kind.title} cluster-wide: {kind.attempts.split()[0]} fail on "
                f"{len(bad)} of {len(up)} nodes ({names})",
                evidence={"nodes": [f.node for f in bad], "checked": len(up)},
            )
        ], True
    return bad + slow(up, {f.node for f in bad}, kind, c), False


def slow(
    up: Mapping[str, WindowedStatus], bad: set[str], kind: CheckKind, c: WindowCriteria
) -> list[CheckFinding]:
    medians = {
        n: m for n, s in up.items() if (m := s.latency_median_seconds) is not None and n not in bad
    }
    out = []
    for node in sorted(medians):
        others = [m for n, m in medians.items() if n != node]
        if len(others) < 2:
            continue
        typical = statistics.median(others)
        mine = medians[node]
        if mine > max(c.slow_factor * typical, c.slow_min_seconds):
            out.append(
                CheckFinding(
                    node=node,
                    kind=SLOW,
                    layer=kind.layer,
                    summary=f"{kind.title} on {node} is slow: median {mine * 1e3:.0f} ms, "
                    f"others {typical * 1e3:.1f} ms",
                    evidence={"median_seconds": mine, "others_median_seconds": typical},
                )
            )
    return out


POD = "pod"
POD_TITLE = " from the pod network"


def judge_networks(
    host: list[CheckFinding], pod: list[CheckFinding], title: str
) -> list[CheckFinding]:
    """One list from the host agents' and the pod endpoints' findings of one check.

    A node (or the cluster) found by both keeps the host finding, marked for
    both networks; found by the pod endpoints only, the finding says "from the
    pod network" (the node's own resolver or Service path works: the pod
    network's way to it does not).
    """
    out = []
    pod_by = {(f.node, f.kind): f for f in pod}
    for f in host:
        also = pod_by.pop((f.node, f.kind), None)
        if also is None:
            out.append(f)
        else:
            out.append(
                replace(
                    f,
                    networks=("host", POD),
                    summary=f.summary + "; the pod network's too",
                    evidence={**f.evidence, "pod_network": also.evidence},
                )
            )
    for f in pod_by.values():
        out.append(
            replace(
                f,
                networks=(POD,),
                summary=f.summary.replace(title, title + POD_TITLE, 1),
            )
        )
    return sorted(out, key=lambda f: (f.node, f.kind, f.networks))
