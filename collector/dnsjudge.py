"""Judging the nodes' DNS checks: failing, wrong answers, slow — a finding of its own per node.

Each agent (and each pod-network endpoint) resolves the same name through its
resolver configuration (agent/dns.py) and reports the window's lookups. A
node's DNS is failing, slow or cluster-wide as collector/checkjudge.py says
for every windowed check, and

- **wrong** when its latest answer differs from the answer that more than
  half of the answering nodes get (needs at least 3 answering nodes: with
  two, neither is the majority).

The host agents and the pod endpoints are judged apart and their findings
merged per node (``judge_dns_networks``). Pure: statuses in, findings out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from collector.checkjudge import (
    CLUSTER_WIDE,
    FAILING,
    SLOW,
    CheckFinding,
    CheckKind,
    WindowCriteria,
    judge_networks,
    judge_window,
)
from netmesh.dnsreport import DnsStatus

__all__ = ["CLUSTER_WIDE", "FAILING", "SLOW", "WRONG", "DnsCriteria", "DnsFinding"]

WRONG = "wrong-answer"
DnsFinding = CheckFinding


DnsCriteria = WindowCriteria  # settings rca_dns_* (collector/settings.py)


def _evidence(s: DnsStatus) -> dict[str, Any]:
    return {
        "name": s.name,
        "servers": list(s.servers),
        "lookups": s.window_lookups,
        "results": dict(s.window_results),
        "last_error": s.last_error,
    }


DNS = CheckKind(
    layer="dns", title="DNS", attempts="lookups of", subject=lambda s: s.name, evidence=_evidence
)


def _majority(statuses: Mapping[str, DnsStatus]) -> tuple[tuple[str, ...], int, int] | None:
    """The answer more than half of the answering nodes get, its count, and the answering."""
    answers = Counter(s.answers for s in statuses.values() if s.answers)
    total = sum(answers.values())
    if total < 3:
        return None
    answer, count = answers.most_common(1)[0]
    return (answer, count, total) if 2 * count > total else None


def _wrong(checked: Mapping[str, DnsStatus], bad: set[str]) -> list[DnsFinding]:
    majority = _majority(checked)
    if majority is None:
        return []
    answer, count, total = majority
    out = []
    for node in sorted(checked):
        got = checked[node].answers
        if node in bad or not got or got == answer:
            continue
        out.append(
            DnsFinding(
                node=node,
                kind=WRONG,
                layer="dns",
                summary=f"DNS on {node}: {checked[node].name} resolves to "
                f"{', '.join(got)}; {count} of {total} nodes get {', '.join(answer)}",
                evidence={"answer": list(got), "majority": list(answer), "agree": count},
            )
        )
    return out


def judge_dns(statuses: Mapping[str, DnsStatus], criteria: DnsCriteria) -> list[DnsFinding]:
    """Findings over every node's DNS status (see the module docstring), in node order."""
    checked = {n: s for n, s in statuses.items() if s.up and s.name}
    found, cluster_wide = judge_window(checked, DNS, criteria)
    if cluster_wide:
        return found
    bad = {f.node for f in found if f.kind == FAILING}
    failing = [f for f in found if f.kind == FAILING]
    return failing + _wrong(checked, bad) + [f for f in found if f.kind == SLOW]


def judge_dns_networks(
    host: Mapping[str, DnsStatus], pod: Mapping[str, DnsStatus], criteria: DnsCriteria
) -> list[DnsFinding]:
    """The host agents' and the pod endpoints' DNS, judged apart, merged per node."""
    return judge_networks(judge_dns(host, criteria), judge_dns(pod, criteria), DNS.title)
