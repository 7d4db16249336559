"""The lab's view of kernel drop reasons: fetch them from the collector, name the dominant one.

The experiment (lab/experiment.py) reads ``netmesh_drops_total`` at the start
and the end of each phase and prints the faulty node's dominant drop reason
during the fault (the lab's loss fault is an iptables drop: NETFILTER_DROP).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

from lab.lab import Lab
from netmesh import catalogue


def fetch_drops(lab: Lab) -> dict[tuple[str, str], float]:
    """Kernel drops by (node, reason) from the collector's netmesh_drops_total."""
    with urllib.request.urlopen(lab.collector_url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == catalogue.DROPS.name:
                out[(s.labels.get("node", ""), s.labels.get("reason", ""))] = s.value
    return out


def describe_drops(
    start: Mapping[tuple[str, str], float],
    end: Mapping[tuple[str, str], float],
    *,
    node: str,
    seconds: float,
    phase: str,
) -> str:
    """The node's kernel drop reasons during a phase, the dominant one first."""
    seconds = max(seconds, 1e-9)
    counts = sorted(
        ((end.get(k, 0.0) - start.get(k, 0.0), k[1]) for k in end if k[0] == node),
        reverse=True,
    )
    counts = [(n, r) for n, r in counts if n > 0]
    if not counts:
        return f"kernel drops on {node} during the {phase} phase: none counted"
    (top, reason), rest = counts[0], counts[1:4]
    others = "".join(f", {r} {n:,.0f}" for n, r in rest)
    return (
        f"kernel drops on {node} during the {phase} phase: dominant reason {reason} "
        f"({top:,.0f} packets, {top / seconds:,.1f}/s){others}"
    )
