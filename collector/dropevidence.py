"""Kernel drop reasons as RCA evidence: rates per (node, reason), the significant ones per node.

The agents report cumulative per-reason drop counters (netmesh/dropreport.py,
counted in each node's kernel by ebpf/drops.c). Over the eBPF window they become
rates per (node, reason) (``RetransmitRates`` does the windowing: the same
counter arithmetic, restarts included); a reason whose rate reaches
``Criteria.drops_per_second`` is *evidence* for that node: "node-2:
NETFILTER_DROP 24/s". The verdict attaches a suspect's evidence to it and
lists every node's (collector/verdict.py), so a node that suddenly drops
packets is visible even before path tests fail. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netmesh.dropreport import DropStatus

MAX_EVIDENCE_PER_NODE = 3


@dataclass(frozen=True, slots=True)
class DropEvidence:
    reason: str
    per_second: float

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "per_second": self.per_second}

    def text(self) -> str:
        return f"{self.reason} {self.per_second:,.1f}/s"


def drop_totals(drops: Mapping[str, DropStatus | None]) -> dict[tuple[str, str], float]:
    """Cumulative lost packets by (node, reason) from the agents' latest reports."""
    out: dict[tuple[str, str], float] = {}
    for node, status in drops.items():
        if status is None:
            continue
        for r in status.reasons:
            out[(node, r.reason)] = float(r.count)
    return out


def significant(
    rates: Mapping[tuple[str, str], float], threshold: float
) -> dict[str, tuple[DropEvidence, ...]]:
    """Per node, its reasons at or above ``threshold`` per second, highest first (at most 3)."""
    if threshold <= 0:
        return {}
    by_node: dict[str, list[DropEvidence]] = {}
    for (node, reason), rate in rates.items():
        if rate >= threshold:
            by_node.setdefault(node, []).append(DropEvidence(reason, rate))
    return {
        node: tuple(sorted(ev, key=lambda e: (-e.per_second, e.reason))[:MAX_EVIDENCE_PER_NODE])
        for node, ev in sorted(by_node.items())
    }


def describe(evidence: Mapping[str, tuple[DropEvidence, ...]]) -> str:
    """``node-2: NETFILTER_DROP 24.0/s, NO_SOCKET 2.0/s; node-3: ...`` ("" when none)."""
    return "; ".join(
        f"{node}: {', '.join(e.text() for e in ev)}" for node, ev in evidence.items() if ev
    )
