"""Root-cause analysis, step 6: the verdict — which findings, or cluster-wide (no I/O here).

After judging (``collector/judging.py``, ``meshjudge.py``, ``lightjudge.py``),
mining (``collector/mining.py``) and the search for the smallest things that
explain the failing paths (``collector/findings.py``): **suspects** (the API's
name for "there are findings": nodes, links, racks, rack paths, zones; the
node findings are also listed as ``suspects``); **cluster-wide** instead when
more than ``cluster_wide_ratio`` of the paths outside every finding fail too,
or when more than that share of all paths fails and the findings do not
explain every failing path (or no path lies outside them): most of the mesh
fails and nothing smaller explains it. Two faulty nodes of four fail half the
paths, yet the paths between the other two are clean: two findings, not
cluster-wide. **isolated** when paths fail but nothing qualifies; nothing is
said when nothing fails.

Suspect score of a node (the ``netmesh_rca_suspect_score`` gauge):
confidence({FAIL} → {node}) x the confidence of its best {role} → {FAIL}
rule, 0 unless that rule's lift > ``min_lift``; 1.0 = every failing path
involves the node and every path of it (in that direction) fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from collector.dropevidence import DropEvidence
from collector.findings import Finding, Search
from collector.judging import Criteria, PathOutcome
from collector.mining import NodeRules, Rule, node_rules
from collector.topology import NodeTopology

VERDICT_OK = "ok"
VERDICT_NO_DATA = "no-data"
VERDICT_SUSPECTS = "suspects"
VERDICT_CLUSTER_WIDE = "cluster-wide"
VERDICT_ISOLATED = "isolated"


@dataclass(frozen=True, kw_only=True)
class Suspect:
    node: str
    score: float
    explains: int  # failing paths it was picked for (not already explained by earlier suspects)
    failing: int  # all failing paths that involve it
    peers: int
    direction: str  # inbound, outbound or both
    best_rule: Rule
    drops: tuple[DropEvidence, ...] = ()  # the node's kernel drop reasons (evidence)

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "score": self.score,
            "explains": self.explains,
            "failing_paths": self.failing,
            "peers": self.peers,
            "direction": self.direction,
            "confidence": self.best_rule.confidence,
            "lift": self.best_rule.lift,
            "rule": self.best_rule.text(),
            "drops": [d.to_json() for d in self.drops],
        }


@dataclass(frozen=True, kw_only=True)
class Analysis:
    verdict: str
    summary: str
    transactions: int
    failing: tuple[PathOutcome, ...]
    suspects: tuple[Suspect, ...]
    scores: dict[str, float]
    rules: tuple[Rule, ...]
    unexplained: tuple[PathOutcome, ...]
    criteria: Criteria
    nodes: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    # node → its significant kernel drop reasons (collector/dropevidence.py)
    drops: Mapping[str, tuple[DropEvidence, ...]] = field(default_factory=dict)

    def dominant_drop(self, node: str) -> DropEvidence | None:
        """The node's highest-rate drop reason, if it has a significant one."""
        evidence = self.drops.get(node, ())
        return evidence[0] if evidence else None

    @property
    def failing_ratio(self) -> float:
        return len(self.failing) / self.transactions if self.transactions else 0.0

    def ranking(self) -> list[tuple[str, float]]:
        """Every node: named suspects first (in order), then by score, then by name."""
        order = {s.node: i for i, s in enumerate(self.suspects)}
        return sorted(
            self.scores.items(),
            key=lambda kv: (order.get(kv[0], len(order)), -kv[1], kv[0]),
        )

    def to_json(self, limit: int | None = None) -> dict[str, Any]:
        """The API form; ``limit`` caps the rule and path lists (their full lengths are given)."""

        def cap(items: Sequence[Any]) -> list[Any]:
            return list(items if limit is None else items[:limit])

        return {
            "verdict": self.verdict,
            "summary": self.summary,
            "transactions": self.transactions,
            "failing": len(self.failing),
            "failing_ratio": self.failing_ratio,
            "suspects": [s.to_json() for s in self.suspects],
            "findings": [f.to_json() for f in self.findings],
            "ranking": [{"node": n, "score": s} for n, s in self.ranking()],
            "rules": [r.to_json() for r in cap(self.rules)],
            "rules_total": len(self.rules),
            "failing_paths": [p.to_json() for p in cap(self.failing)],
            "unexplained_paths": [p.to_json() for p in cap(self.unexplained)],
            "unexplained": len(self.unexplained),
            "criteria": self.criteria.to_json(),
            "drops": {n: [d.to_json() for d in ev] for n, ev in self.drops.items()},
        }


def analyse(
    outcomes: Sequence[PathOutcome],
    criteria: Criteria,
    nodes: Iterable[str] = (),
    *,
    failing: Sequence[PathOutcome] | None = None,
    complete: bool = False,
    topology: Mapping[str, NodeTopology] | None = None,
    drops: Mapping[str, tuple[DropEvidence, ...]] | None = None,
) -> Analysis:
    """Mine the rules over ``outcomes`` and decide the verdict (see the module docstring).

    ``failing`` (the failed outcomes, in order) may be given when known;
    ``complete``: ``nodes`` already holds every source and destination;
    ``topology``: each node's zone, rack and link speed (racks and zones become candidates).
    """
    n = len(outcomes)
    names = sorted(
        set(nodes)
        if complete
        else {*nodes, *(o.source for o in outcomes), *(o.destination for o in outcomes)}
    )
    failed = tuple(o for o in outcomes if o.failed) if failing is None else tuple(failing)
    quiet = Analysis(
        verdict=VERDICT_NO_DATA if n == 0 else VERDICT_OK,
        summary="",
        transactions=n,
        failing=failed,
        suspects=(),
        scores=dict.fromkeys(names, 0.0),
        rules=(),
        unexplained=failed,
        criteria=criteria,
        nodes=tuple(names),
        drops=dict(drops or {}),
    )
    if n == 0 or not failed:
        return quiet
    mined = node_rules(outcomes, names, max(1, criteria.min_failing_paths) / n, criteria.max_len)
    scores = suspect_scores(names, mined, criteria)
    search = Search(outcomes, failed, topology or {})
    findings, remaining = search.run(
        max_findings=criteria.max_suspects,
        min_failing=criteria.min_failing_paths,
        min_confidence=criteria.min_confidence,
        min_lift=criteria.min_lift,
        min_peers=criteria.min_peers,
        elsewhere=criteria.link_elsewhere_ratio,
    )
    return _decide(
        replace(quiet, scores=scores, rules=tuple(mined.rules)),
        outcomes,
        search,
        findings,
        remaining,
    )


def suspect_scores(names: Iterable[str], mined: NodeRules, criteria: Criteria) -> dict[str, float]:
    """Every node's suspect score (see the module docstring); 0 without a qualifying rule."""
    scores = dict.fromkeys(names, 0.0)
    for name, rule in mined.best.items():
        if name in mined.coverage and rule.lift > criteria.min_lift:
            scores[name] = mined.coverage[name].confidence * rule.confidence
    return scores


def _suspect(finding: Finding, failing: Sequence[PathOutcome], score: float) -> Suspect:
    """A node finding in the form of the earlier API (``suspects``)."""
    name = finding.subject
    mine = [o for o in failing if name in (o.source, o.destination)]
    peers = {o.destination if o.source == name else o.source for o in finding.evidence}
    return Suspect(
        node=name,
        score=score,
        explains=finding.explains,
        failing=len(mine),
        peers=max(len(peers), len({n for n in finding.nodes if n != name})),
        direction=finding.direction,
        best_rule=finding.rule,
    )


def _decide(
    mined: Analysis,
    outcomes: Sequence[PathOutcome],
    search: Search,
    findings: Sequence[Finding],
    remaining: set[int],
) -> Analysis:
    """The verdict and its summary, given the mined ``Analysis`` (rules and scores, no verdict)."""
    failing = mined.failing
    covered = search.covered(outcomes, findings) if findings else [False] * len(outcomes)
    wide = _cluster_wide(
        outcomes,
        failing=failing,
        covered=covered,
        named=bool(findings),
        remaining=remaining,
        criteria=mined.criteria,
    )
    if wide is not None:
        return replace(mined, verdict=VERDICT_CLUSTER_WIDE, summary=wide)
    if not findings:
        paths = ", ".join(f"{o.source}->{o.destination} {o.protocol}" for o in failing[:5])
        more = f" and {len(failing) - 5} more" if len(failing) > 5 else ""
        summary = f"{len(failing)} failing path test(s) with no common node: {paths}{more}"
        return replace(mined, verdict=VERDICT_ISOLATED, summary=summary)
    unexplained = tuple(failing[i] for i in sorted(remaining))
    suspects = tuple(
        _suspect(f, failing, mined.scores.get(f.subject, 0.0)) for f in findings if f.kind == "node"
    )
    by_node = {s.node: s for s in suspects}
    parts = [
        f"{s.node} ({s.failing} of {len(failing)} failing paths, {s.direction}, "
        f"confidence {s.best_rule.confidence:.2f}, lift {s.best_rule.lift:.2f})"
        if f.kind == "node" and (s := by_node[f.subject])
        else f.text()
        for f in findings
    ]
    suspects = tuple(replace(s, drops=mined.drops.get(s.node, ())) for s in suspects)
    drops_of = {s.node: s.drops for s in suspects}
    parts = [
        p
        + (
            f" — kernel drops {', '.join(e.text() for e in drops_of[f.subject])}"
            if f.kind == "node" and drops_of.get(f.subject)
            else ""
        )
        for p, f in zip(parts, findings, strict=True)
    ]
    if len(findings) == 1:
        lead = "suspect: " if findings[0].kind == "node" else "finding: "
    else:
        same = "suspects" if all(f.kind == "node" for f in findings) else "findings"
        lead = f"{len(findings)} {same}: "
    tail = f"; {len(unexplained)} failing path test(s) unexplained" if unexplained else ""
    return replace(
        mined,
        verdict=VERDICT_SUSPECTS,
        summary=lead + "; ".join(parts) + tail,
        suspects=suspects,
        findings=tuple(findings),
        unexplained=unexplained,
    )


def _cluster_wide(
    outcomes: Sequence[PathOutcome],
    *,
    failing: Sequence[PathOutcome],
    covered: Sequence[bool],
    named: bool,
    remaining: set[int],
    criteria: Criteria,
) -> str | None:
    """The cluster-wide summary when most of the mesh fails and no finding explains it, else
    None: over all path tests, or over one protocol's (every TCP test below the link speed
    while UDP passes is cluster-wide too). ``covered``: whether each outcome is in a finding."""
    unexplained = {failing[i].key for i in remaining}
    groups = [("", list(range(len(outcomes))))]
    by_protocol: dict[str, list[int]] = {}
    for i, o in enumerate(outcomes):
        by_protocol.setdefault(o.protocol, []).append(i)
    if len(by_protocol) > 1:
        groups += sorted(by_protocol.items())
    for protocol, idx in groups:
        n = len(idx)
        fails = sum(1 for i in idx if outcomes[i].failed)
        avoiding = [i for i in idx if not covered[i]]
        background = (
            sum(1 for i in avoiding if outcomes[i].failed) / len(avoiding)
            if avoiding
            else fails / n
        )
        share = fails / n
        left = any(outcomes[i].key in unexplained for i in idx)
        if background > criteria.cluster_wide_ratio or (
            share > criteria.cluster_wide_ratio and (left or not avoiding)
        ):
            what = f"{protocol} path tests" if protocol else "path tests"
            return (
                f"cluster-wide: {fails} of {n} {what} fail ({share:.0%}); nothing smaller "
                "explains it"
                + (
                    f" ({background:.0%} of the paths outside every finding fail too)"
                    if named
                    else ""
                )
            )
    return None


def with_findings(analysis: Analysis, extra: Sequence[Finding]) -> Analysis:
    """``analysis`` with more findings (pod blame, collector/podblame.py) appended.

    A verdict that named nothing (ok, isolated, no data) becomes ``suspects``
    with their summary (an isolated verdict's note follows); other verdicts keep
    theirs and gain the findings' summaries.
    """
    if not extra:
        return analysis
    texts = "; ".join(f.text() for f in extra)
    if analysis.verdict in (VERDICT_OK, VERDICT_NO_DATA, VERDICT_ISOLATED):
        lead = "finding: " if len(extra) == 1 else f"{len(extra)} findings: "
        note = f"; {analysis.summary}" if analysis.verdict == VERDICT_ISOLATED else ""
        return replace(
            analysis,
            verdict=VERDICT_SUSPECTS,
            summary=lead + texts + note,
            findings=(*analysis.findings, *extra),
        )
    return replace(
        analysis, summary=f"{analysis.summary}; {texts}", findings=(*analysis.findings, *extra)
    )
