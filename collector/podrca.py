"""Pod-level blame over time: eBPF pod-pair rates and the latest pod findings (no I/O).

Part of every RCA run (collector/live.py), after the node-level analysis, on the same agents'
flows: the pods' cumulative retransmission counters become rates per pod pair
over the eBPF window (``RetransmitRates``), then transactions, rules and
findings (collector/podblame.py). The nodes the node-level analysis names are
passed in: their pods' failures are theirs. The pods' own flows never count
at node level (collector/app.py's node resolver leaves pod addresses out), so
loss into one pod is blamed on the pod, never on its node.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from collector.findings import Finding
from collector.mining import Rule
from collector.podblame import PodCriteria, PodFinding, findings, pod_totals, transactions
from collector.rates import RetransmitRates
from netmesh.wire import RetransmitFlow

PodRef = tuple[str, str]  # (namespace/name, node)


class PodRca:
    """The latest pod findings and rules; ``run`` replaces them whole."""

    def __init__(self, criteria: PodCriteria, *, window: float = 30.0) -> None:
        self.criteria = criteria
        self.rates = RetransmitRates(window)
        self.findings: tuple[PodFinding, ...] = ()
        self.rules: tuple[Rule, ...] = ()
        self.transactions = 0
        self.failing = 0

    def as_findings(self) -> list[Finding]:
        """The latest pod findings in the RCA's own form (they join the analysis)."""
        return [f.as_finding(self.criteria) for f in self.findings]

    @property
    def enabled(self) -> bool:
        return self.criteria.retransmits_per_second > 0

    def run(
        self,
        flows: Mapping[str, Sequence[RetransmitFlow]],
        resolve_pod: Callable[[str], PodRef | None],
        *,
        now: float,
        host_nodes: Collection[str] = (),
    ) -> None:
        """One run over the agents' latest flows; ``host_nodes``: nodes the host analysis names."""
        if not self.enabled:
            return
        node_of: dict[str, str] = {}

        def pod(ip: str) -> str | None:
            ref = resolve_pod(ip)
            if ref is None:
                return None
            node_of[ref[0]] = ref[1]
            return ref[0]

        totals = pod_totals(flows, pod)
        self.rates.observe(now, totals)
        rates = self.rates.rates(now)
        active = {p for pair in totals for p in pair}
        txs = transactions(rates, active, self.criteria)
        found, mined = findings(txs, node_of, set(host_nodes), self.criteria)
        self.findings = tuple(found)
        self.rules = tuple(mined)
        self.transactions = len(txs)
        self.failing = sum(t.failed for t in txs)
