"""Pod-level blame from passive evidence: the eBPF retransmissions between pods (no I/O).

The seed's method, on the collector's data:

1. **Pod flows**: every agent counts the retransmissions its kernel sends, per
   (local IP, remote IP, port). Both ends resolving to pods (the pod map:
   Kubernetes, or static mode's pods file) makes a pod pair, the local pod the
   sender. Over a window the cumulative counts become rates per pod pair.
2. **Transactions**: one per ordered pair of *active* pods — the pods that appear
   in any agent's flows (the probe counts retransmissions, not segments, so a
   pair that never retransmitted is invisible; pods seen on some of their paths
   are taken to talk to the others, as the seed's all-to-all workload does).
   Items ``pod=<p>`` for both ends, ``src=<p>``, ``dst=<p>``, and ``FAIL`` when
   the pair's rate exceeds ``retransmits_per_second``, else ``OK``.
3. **Rules** ``{pod=P} → {FAIL}`` (and ``{dst=P}``, ``{src=P}``) with support,
   confidence and lift (mlxtend's definitions, as collector/mining.py).
4. **Findings**: the pod whose best rule has at least ``min_failing`` failing
   pairs, confidence ≥ ``min_confidence`` and lift > ``min_lift`` is named —
   unless its node's host paths fail (then the node is the finding, not its pod)
   or its node's other pods fail too without it (then the pod network of that
   node is: kind ``pod-network``). Greedy: the best pod first; its pairs are
   explained; the rest are searched again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from collector.findings import Finding
from collector.judging import PathOutcome
from collector.mining import FAIL, Rule
from netmesh.wire import RetransmitFlow

EVIDENCE_PAIRS = 10  # failing pod pairs a finding carries as evidence

PodPair = tuple[str, str]  # (sender pod, receiver pod), each "namespace/name"


@dataclass(frozen=True, kw_only=True)
class PodCriteria:
    retransmits_per_second: float = 1.0  # a pod pair above this rate FAILs
    min_failing: int = 2  # failing pairs a pod needs to be named
    min_confidence: float = 0.5
    min_lift: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "retransmits_per_second": self.retransmits_per_second,
            "min_failing": self.min_failing,
            "min_confidence": self.min_confidence,
            "min_lift": self.min_lift,
        }


class PodTransaction(NamedTuple):
    source: str
    destination: str
    rate: float  # retransmissions per second, sender → receiver
    failed: bool


def rule_item(rule: Rule) -> str:
    """The antecedent's one item of a pod rule: ``pod=P``, ``src=P`` or ``dst=P``."""
    return next(iter(rule.antecedent))


def rule_pod(rule: Rule) -> str:
    return rule_item(rule).split("=", 1)[1]


@dataclass(frozen=True, kw_only=True)
class PodFinding:
    kind: str  # "pod" (one pod) or "pod-network" (a node's pods, its host paths fine)
    pod: str  # namespace/name ("" for pod-network)
    node: str
    rule: Rule
    failing: tuple[PodTransaction, ...]
    direction: str  # inbound, outbound or both
    paths: int  # pod pairs the rule's item holds

    @property
    def subject(self) -> str:
        return self.pod if self.kind == "pod" else self.node

    def summary(self) -> str:
        r = self.rule
        stats = f"confidence {r.confidence:.2f}, lift {r.lift:.2f}, support {r.support:.2f}"
        if self.kind == "pod":
            return (
                f"pod {self.pod} on {self.node}: {len(self.failing)} of its pod paths retransmit "
                f"({self.direction}); its node's host paths and other pods are fine ({stats})"
            )
        return (
            f"pod network of {self.node}: its pods' paths retransmit while its host paths "
            f"are fine ({stats})"
        )

    def as_finding(self, criteria: PodCriteria) -> Finding:
        """The finding in the RCA's own form (collector/findings.py): kind ``pod`` or
        ``pod-network``, its failing pod pairs as evidence (protocol tcp, the eBPF reason)."""
        limit = criteria.retransmits_per_second
        evidence = tuple(
            PathOutcome(
                source=t.source,
                destination=t.destination,
                protocol="tcp",
                result="ok",
                reasons=(f"eBPF retransmissions {t.rate:.1f}/s > {limit:g}/s",),
            )
            for t in self.failing[:EVIDENCE_PAIRS]
        )
        return Finding(
            kind=self.kind,
            subject=self.subject,
            item=rule_item(self.rule),
            protocol="",
            direction=self.direction,
            explains=len(self.failing),
            failing=self.rule.count,
            paths=self.paths,
            nodes=(self.node,),
            criteria=(("ebpf-retransmits", len(self.failing)),),
            evidence=evidence,
            rule=self.rule,
            # one pod: the pod layer; a node's pods (its host paths fine): the overlay/CNI
            layer="pod" if self.kind == "pod" else "overlay",
        )


def pod_totals(
    flows: Mapping[str, Iterable[RetransmitFlow]], resolve_pod: Callable[[str], str | None]
) -> dict[PodPair, float]:
    """Cumulative retransmissions by (sender pod, receiver pod) over every agent's flows."""
    totals: dict[PodPair, float] = {}
    for node_flows in flows.values():
        for flow in node_flows:
            if flow.local == "other" or flow.remote == "other":
                continue
            src, dst = resolve_pod(flow.local), resolve_pod(flow.remote)
            if src is None or dst is None or src == dst:
                continue
            totals[(src, dst)] = totals.get((src, dst), 0.0) + flow.count
    return totals


def transactions(
    rates: Mapping[PodPair, float], active: Collection[str], criteria: PodCriteria
) -> list[PodTransaction]:
    """One per ordered pair of active pods; FAIL when its rate exceeds the criterion."""
    pods = sorted(active)
    out = []
    for src in pods:
        for dst in pods:
            if src != dst:
                rate = rates.get((src, dst), 0.0)
                out.append(PodTransaction(src, dst, rate, rate > criteria.retransmits_per_second))
    return out


def rules(txs: Sequence[PodTransaction]) -> list[Rule]:
    """Every ``{pod|src|dst=P} → {FAIL}`` rule with at least one failing transaction,
    strongest first (lift, confidence, count, then item)."""
    n, failing = len(txs), sum(t.failed for t in txs)
    seen: dict[str, int] = {}
    fail: dict[str, int] = {}
    for t in txs:
        items = {f"pod={t.source}", f"pod={t.destination}", f"src={t.source}"}
        items.add(f"dst={t.destination}")
        for item in items:
            seen[item] = seen.get(item, 0) + 1
            if t.failed:
                fail[item] = fail.get(item, 0) + 1
    out = []
    for item, count in fail.items():
        confidence = count / seen[item]
        out.append(
            Rule(
                antecedent=frozenset({item}),
                consequent=frozenset({FAIL}),
                count=count,
                support=count / n,
                confidence=confidence,
                lift=confidence / (failing / n),
            )
        )
    return sorted(out, key=lambda r: (-r.lift, -r.confidence, -r.count, rule_item(r)))


def _qualifies(rule: Rule, criteria: PodCriteria) -> bool:
    return (
        rule.count >= criteria.min_failing
        and rule.confidence >= criteria.min_confidence
        and rule.lift > criteria.min_lift
    )


def _holding(txs: Sequence[PodTransaction], role: str, pod: str) -> int:
    return sum(
        1
        for t in txs
        if (role in ("pod", "src") and t.source == pod)
        or (role in ("pod", "dst") and t.destination == pod)
    )


def _on_node(txs: Sequence[PodTransaction], node_of: Mapping[str, str], node: str) -> int:
    return sum(1 for t in txs if node in (node_of.get(t.source), node_of.get(t.destination)))


def _direction(pod: str, failing: Iterable[PodTransaction]) -> str:
    ins = any(t.destination == pod for t in failing)
    outs = any(t.source == pod for t in failing)
    return "both" if ins and outs else "inbound" if ins else "outbound"


def findings(
    txs: Sequence[PodTransaction],
    node_of: Mapping[str, str],
    host_failing: Collection[str],
    criteria: PodCriteria,
) -> tuple[list[PodFinding], list[Rule]]:
    """The pods (or nodes' pod networks) that explain the failing pod pairs, and the rules.

    ``node_of``: pod → its node; ``host_failing``: nodes with failing host paths
    (their pods' failures are the node's, named by the host analysis, not here).
    """
    mined = rules(txs)
    failing = [t for t in txs if t.failed]
    out: list[PodFinding] = []
    explained: set[tuple[str, str]] = set()
    for rule in mined:
        if not _qualifies(rule, criteria):
            continue
        pod = rule_pod(rule)
        node = node_of.get(pod, "")
        if not node or node in host_failing or any(f.node == node for f in out):
            continue
        role = rule_item(rule).split("=", 1)[0]
        mine = [
            t
            for t in failing
            if (t.source, t.destination) not in explained
            and (
                (role in ("pod", "src") and t.source == pod)
                or (role in ("pod", "dst") and t.destination == pod)
            )
        ]
        if len(mine) < criteria.min_failing:
            continue
        siblings = {p for p, n in node_of.items() if n == node and p != pod}
        sibling_fails = [
            t
            for t in failing
            if pod not in (t.source, t.destination)
            and (t.source in siblings or t.destination in siblings)
        ]
        # The node's other pods fail too (not only on paths to the named pod): the node's pod
        # network, not one pod.
        kind = "pod-network" if siblings and len(sibling_fails) >= criteria.min_failing else "pod"
        evidence = tuple(mine) if kind == "pod" else tuple(mine + sibling_fails)
        out.append(
            PodFinding(
                kind=kind,
                pod=pod if kind == "pod" else "",
                node=node,
                rule=rule,
                failing=evidence,
                direction=_direction(pod, mine),
                paths=_holding(txs, role, pod) if kind == "pod" else _on_node(txs, node_of, node),
            )
        )
        explained.update((t.source, t.destination) for t in evidence)
    return out, mined
