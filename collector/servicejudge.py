"""Judging the nodes' Service checks: a node whose connects to the Service fail or are slow.

Each agent (and each pod-network endpoint) connects to the same Service at a
steady rate (agent/service.py). A node whose connects fail while the others'
succeed points at that node's Service implementation (kube-proxy's rules, a
CNI's Service handling, conntrack); most nodes failing is one cluster-wide
finding (the Service or its backends). The windowed judging is
collector/checkjudge.py's; host agents and pod endpoints are judged apart and
merged per node.

A target whose name never resolved on a node (no address known: no connect
tried, every attempt "unresolved") is a finding of its own, kind
**unresolved** — most nodes: cluster-wide, most likely a wrong
``--service-target`` — rather than silence. Pure: statuses in, findings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.checkjudge import (
    CLUSTER_WIDE,
    CheckFinding,
    CheckKind,
    WindowCriteria,
    judge_networks,
)
from collector.checkjudge import judge_window as _judge_window
from netmesh.servicereport import UNRESOLVED, ServiceStatus

UNRESOLVED_KIND = "unresolved"

ServiceCriteria = WindowCriteria  # settings rca_service_* (collector/settings.py)


def _evidence(s: ServiceStatus) -> dict[str, Any]:
    return {
        "target": s.target,
        "address": s.address,
        "connects": s.window_connects,
        "results": dict(s.window_results),
        "last_error": s.last_error,
    }


SERVICE = CheckKind(
    layer="service",
    title="Service",
    attempts="connects to",
    subject=lambda s: s.target,
    evidence=_evidence,
)


def judge_service(
    statuses: Mapping[str, ServiceStatus], criteria: ServiceCriteria
) -> list[CheckFinding]:
    """Findings over every node's Service check, in node order."""
    checked = {n: s for n, s in statuses.items() if s.up and s.target}
    return _unresolved(checked, criteria) + _judge_window(checked, SERVICE, criteria)[0]


def _unresolved(checked: Mapping[str, ServiceStatus], c: ServiceCriteria) -> list[CheckFinding]:
    """Nodes whose window is only "unresolved" attempts (at least ``min_attempts``)."""
    nodes = [
        n
        for n in sorted(checked)
        if checked[n].window_connects == 0
        and dict(checked[n].window_results).get(UNRESOLVED, 0) >= c.min_attempts
    ]
    if not nodes:
        return []
    target = checked[nodes[0]].target
    if 2 * len(nodes) > len(checked) and len(checked) > 1:
        return [
            CheckFinding(
                node=CLUSTER_WIDE,
                kind=UNRESOLVED_KIND,
                layer="service",
                summary=f"Service cluster-wide: {target} does not resolve on {len(nodes)} of "
                f"{len(checked)} nodes, no connect tried (is --service-target right?)",
                evidence={"nodes": nodes, "checked": len(checked), "target": target},
            )
        ]
    return [
        CheckFinding(
            node=n,
            kind=UNRESOLVED_KIND,
            layer="service",
            summary=f"Service on {n}: {checked[n].target} has never resolved there, no "
            f"connect tried ({checked[n].last_error})",
            evidence=_evidence(checked[n]),
        )
        for n in nodes
    ]


def judge_service_networks(
    host: Mapping[str, ServiceStatus], pod: Mapping[str, ServiceStatus], criteria: ServiceCriteria
) -> list[CheckFinding]:
    """The host agents' and the pod endpoints' Service checks, judged apart, merged per node."""
    return judge_networks(
        judge_service(host, criteria), judge_service(pod, criteria), SERVICE.title
    )
