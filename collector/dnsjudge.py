"""Judging the nodes' DNS checks: failing, wrong answers, slow — a finding of its own per node.

Each agent resolves the same name through its node's resolver configuration
(agent/dns.py) and reports the window's lookups. A node's DNS is

- **failing** when at least ``min_lookups`` lookups in its window ended and
  at least ``failure_ratio`` of them failed (timeout, SERVFAIL, NXDOMAIN ...);
- **wrong** when its latest answer differs from the answer that more than
  half of the answering nodes get (needs at least 3 answering nodes: with
  two, neither is the majority);
- **slow** when its median lookup time is above ``slow_factor`` x the median
  of the other nodes' medians and above ``slow_min_seconds``.

When more than half of the checked nodes fail, that is one cluster-wide
finding (the DNS service, not every node). Pure: statuses in, findings out.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netmesh.dnsreport import DnsStatus

FAILING, WRONG, SLOW = "failing", "wrong-answer", "slow"
CLUSTER_WIDE = ""  # the node of a cluster-wide finding


@dataclass(frozen=True, kw_only=True)
class DnsCriteria:
    min_lookups: int = 3
    failure_ratio: float = 0.5
    slow_factor: float = 5.0
    slow_min_seconds: float = 0.1


@dataclass(frozen=True, kw_only=True)
class DnsFinding:
    node: str  # CLUSTER_WIDE for the whole cluster
    kind: str  # FAILING, WRONG or SLOW
    summary: str
    evidence: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node or None,
            "scope": "cluster-wide" if self.node == CLUSTER_WIDE else "node",
            "layer": "dns",
            "kind": self.kind,
            "summary": self.summary,
            "evidence": self.evidence,
        }


def _failing(node: str, s: DnsStatus, criteria: DnsCriteria) -> DnsFinding | None:
    ratio = s.failure_ratio
    if s.window_lookups < criteria.min_lookups or ratio is None or ratio < criteria.failure_ratio:
        return None
    cause = s.dominant_failure()
    summary = (
        f"DNS on {node}: {s.window_failures} of {s.window_lookups} lookups of {s.name} failed "
        f"in {s.window_seconds:.0f} s (mostly {cause})"
    )
    return DnsFinding(
        node=node,
        kind=FAILING,
        summary=summary,
        evidence={
            "name": s.name,
            "servers": list(s.servers),
            "lookups": s.window_lookups,
            "failures": s.window_failures,
            "failure_ratio": ratio,
            "results": dict(s.window_results),
            "last_error": s.last_error,
        },
    )


def _majority(statuses: Mapping[str, DnsStatus]) -> tuple[tuple[str, ...], int, int] | None:
    """The answer more than half of the answering nodes get, its count, and the answering."""
    answers = Counter(s.answers for s in statuses.values() if s.answers)
    total = sum(answers.values())
    if total < 3:
        return None
    answer, count = answers.most_common(1)[0]
    return (answer, count, total) if 2 * count > total else None


def judge_dns(statuses: Mapping[str, DnsStatus], criteria: DnsCriteria) -> list[DnsFinding]:
    """Findings over every node's DNS status (see the module docstring), in node order."""
    checked = {n: s for n, s in statuses.items() if s.up and s.name}
    failing = [f for n in sorted(checked) if (f := _failing(n, checked[n], criteria))]
    if failing and 2 * len(failing) > len(checked) and len(checked) > 1:
        names = ", ".join(f.node for f in failing)
        return [
            DnsFinding(
                node=CLUSTER_WIDE,
                kind=FAILING,
                summary=f"DNS cluster-wide: lookups fail on {len(failing)} of {len(checked)} "
                f"nodes ({names})",
                evidence={"nodes": [f.node for f in failing], "checked": len(checked)},
            )
        ]
    findings = list(failing)
    bad = {f.node for f in failing}
    majority = _majority(checked)
    if majority is not None:
        answer, count, total = majority
        for node in sorted(checked):
            got = checked[node].answers
            if node in bad or not got or got == answer:
                continue
            findings.append(
                DnsFinding(
                    node=node,
                    kind=WRONG,
                    summary=f"DNS on {node}: {checked[node].name} resolves to "
                    f"{', '.join(got)}; {count} of {total} nodes get {', '.join(answer)}",
                    evidence={"answer": list(got), "majority": list(answer), "agree": count},
                )
            )
    findings.extend(_slow(checked, bad, criteria))
    return findings


def _slow(
    checked: Mapping[str, DnsStatus], bad: set[str], criteria: DnsCriteria
) -> list[DnsFinding]:
    medians = {
        n: s.latency_median_seconds
        for n, s in checked.items()
        if s.latency_median_seconds is not None and n not in bad
    }
    out = []
    for node in sorted(medians):
        others = [m for n, m in medians.items() if n != node]
        if len(others) < 2:
            continue
        typical = statistics.median(others)
        mine = medians[node]
        if mine > max(criteria.slow_factor * typical, criteria.slow_min_seconds):
            out.append(
                DnsFinding(
                    node=node,
                    kind=SLOW,
                    summary=f"DNS on {node} is slow: median {mine * 1e3:.0f} ms, "
                    f"others {typical * 1e3:.1f} ms",
                    evidence={"median_seconds": mine, "others_median_seconds": typical},
                )
            )
    return out
