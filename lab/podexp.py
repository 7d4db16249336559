"""The seed's experiment on pods: what the collector's verdict says about one faulty pod.

``netmesh-lab experiment --pods 1 --pod-fault node-2/pod-1 --loss 20%`` puts
loss into one pod (lab/podfaults.py) during the fault phase. The collector's
RCA (``/api/v1/rca``) lists findings; a pod finding has ``kind: "pod"``,
``subject: "<namespace>/<name>"``, ``nodes: [its node]`` and its rule
``{dst=...} -> {FAIL}`` with confidence and lift; the pod rules mined from the
eBPF retransmissions are in ``pod_rules``. This module
reads those (no I/O): whether the verdict names the pod, names its node (the
wrong answer), and the lines the experiment prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lab.pods import POD_NAMESPACE, LabPod


def identity(pod: LabPod) -> str:
    """The pod as the collector names it: ``lab/node-2-pod-1``."""
    return f"{POD_NAMESPACE}/{pod.pod_name}"


def _findings(body: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not body:
        return []
    return [f for f in body.get("findings", []) if isinstance(f, dict)]


def pod_findings(body: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [f for f in _findings(body) if f.get("kind") in ("pod", "pod-network")]


def names_pod(body: dict[str, Any] | None, pod: LabPod) -> bool:
    """The verdict names this pod (a pod finding on it)."""
    return any(
        f.get("kind") == "pod" and f.get("subject") == identity(pod) for f in pod_findings(body)
    )


def names_node(body: dict[str, Any] | None, node: str) -> bool:
    """Some finding other than a pod finding names the pod's node (blame at the wrong level)."""
    for f in _findings(body):
        if f.get("kind") in ("pod", "pod-network"):
            continue
        if node == f.get("subject") or (f.get("kind") == "node" and node in f.get("nodes", [])):
            return True
    return any(s.get("node") == node for s in (body or {}).get("suspects", []))


def any_finding(body: dict[str, Any] | None) -> bool:
    return bool(_findings(body)) or bool((body or {}).get("suspects"))


def rule_lines(body: dict[str, Any] | None, pods: Iterable[str] = (), top: int = 6) -> list[str]:
    """The pod rules (those on ``pods`` first), one line each with support/confidence/lift."""
    rules = [r for r in (body or {}).get("pod_rules", []) if isinstance(r, dict)]
    wanted = set(pods)

    def first(rule: dict[str, Any]) -> tuple[bool, float]:
        item = str((rule.get("antecedent") or [""])[0]).split("=", 1)[-1]
        return (item not in wanted, -float(rule.get("lift", 0.0)))

    return [
        f"  {r.get('rule')}  support {float(r.get('support', 0)):.2f}  "
        f"confidence {float(r.get('confidence', 0)):.2f}  lift {float(r.get('lift', 0)):.2f}"
        for r in sorted(rules, key=first)[:top]
    ]


def describe(
    body: dict[str, Any] | None, pod: LabPod, named_after: float | None, fault_seconds: float
) -> str:
    """The experiment's paragraph on the RCA at the end of the fault phase."""
    if body is None:
        return "RCA verdict at the end of the fault phase: the collector did not answer"
    target = identity(pod)
    found = pod_findings(body)
    lines = [f"RCA verdict at the end of the fault phase: {body.get('verdict')}"]
    lines += [
        f"  finding: {f.get('title')}: {f.get('failing_paths')} of its {f.get('paths')} pod "
        f"pairs retransmit; confidence {float(f.get('confidence', 0)):.2f}, lift "
        f"{float(f.get('lift', 0)):.2f} ({f.get('rule')})"
        for f in found
    ]
    if names_pod(body, pod):
        when = f"{named_after:.1f} s" if named_after is not None else "?"
        lines.append(f"names the faulty pod {pod.name} ({target}) after {when} of the fault")
    elif named_after is not None:
        lines.append(f"named {pod.name} after {named_after:.1f} s, but not at the phase's end")
    else:
        lines.append(f"did not name {pod.name} ({target}) within {fault_seconds:.0f} s")
    if names_node(body, pod.node):
        lines.append(f"note: a finding names its node {pod.node} too")
    rules = rule_lines(body, [target])
    if rules:
        lines += ["pod rules (eBPF retransmissions per pod pair):", *rules]
    return "\n".join(lines)
