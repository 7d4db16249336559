"""Root-cause analysis, step 5: the verdict — which nodes are suspects (no I/O here).

After judging (``collector/judging.py``) and mining (``collector/mining.py``):

5. **Verdict**: greedily pick the node that covers most of the still
   unexplained failing paths, provided it qualifies (``min_failing_paths``
   failing paths with ``min_peers`` distinct peers among those still
   unexplained; its best rule has confidence ≥ ``min_confidence`` and lift
   > ``min_lift``), up to ``max_suspects`` nodes: two faulty nodes come out
   as two suspects, and a victim that only talks to a faulty node (one peer)
   is never named. "cluster-wide" instead of suspects when more than
   ``cluster_wide_ratio`` of the paths that avoid every suspect fail too, or
   when more than that share of all paths fails and the suspects do not
   explain every failing path (or no path avoids them): most of the mesh
   fails and no node explains it. Two faulty nodes of four fail half the
   paths, yet the paths between the other two are clean: suspects, not
   cluster-wide. Nothing is said when nothing fails.

Suspect score of a node (the ``netmesh_rca_suspect_score`` gauge):
confidence({FAIL} → {node}) x the confidence of its best {role} → {FAIL}
rule, 0 unless that rule's lift > ``min_lift``; 1.0 = every failing path
involves the node and every path of it (in that direction) fails.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from collector.dropevidence import DropEvidence
from collector.judging import Criteria, PathOutcome
from collector.mining import NodeRules, Rule, node_rules

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
    drops: Mapping[str, tuple[DropEvidence, ...]] | None = None,
) -> Analysis:
    """Mine the rules over ``outcomes`` and decide the verdict (see the module docstring).

    ``failing`` (the failed outcomes, in order) may be given when known;
    ``complete``: ``nodes`` already holds every source and destination.
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
    suspects, remaining = pick_suspects(failed, mined.best, scores, criteria)
    return _decide(
        replace(quiet, scores=scores, rules=tuple(mined.rules)), outcomes, suspects, remaining
    )


def suspect_scores(names: Iterable[str], mined: NodeRules, criteria: Criteria) -> dict[str, float]:
    """Every node's suspect score (see the module docstring); 0 without a qualifying rule."""
    scores = dict.fromkeys(names, 0.0)
    for name, rule in mined.best.items():
        if name in mined.coverage and rule.lift > criteria.min_lift:
            scores[name] = mined.coverage[name].confidence * rule.confidence
    return scores


def pick_suspects(
    failing: Sequence[PathOutcome],
    best: dict[str, Rule],
    scores: dict[str, float],
    criteria: Criteria,
) -> tuple[list[Suspect], set[int]]:
    """The suspects, greedily, and the indices of the ``failing`` paths none of them explains."""
    by_node: dict[str, set[int]] = defaultdict(set)
    for i, o in enumerate(failing):
        by_node[o.source].add(i)
        by_node[o.destination].add(i)
    remaining = set(range(len(failing)))
    suspects: list[Suspect] = []
    while remaining and len(suspects) < criteria.max_suspects:
        named = {s.node for s in suspects}
        candidates = {name: rule for name, rule in best.items() if name not in named}
        pick = _next_suspect(
            failing, by_node, remaining, candidates=candidates, scores=scores, criteria=criteria
        )
        if pick is None:
            break
        name, cover, peers = pick
        suspects.append(
            Suspect(
                node=name,
                score=scores[name],
                explains=len(cover),
                failing=len(by_node[name]),
                peers=peers,
                direction=_direction(failing, by_node[name], name),
                best_rule=best[name],
            )
        )
        remaining -= cover
    return suspects, remaining


def _next_suspect(
    failing: Sequence[PathOutcome],
    by_node: dict[str, set[int]],
    remaining: set[int],
    *,
    candidates: dict[str, Rule],
    scores: dict[str, float],
    criteria: Criteria,
) -> tuple[str, set[int], int] | None:
    """The qualifying node that covers most of the ``remaining`` failing paths (then by score,
    then by name): its name, the paths it covers and its number of peers on them."""
    pick: tuple[tuple[int, float, str], str, set[int], int] | None = None
    for name, rule in candidates.items():
        if rule.confidence < criteria.min_confidence or rule.lift <= criteria.min_lift:
            continue
        cover = by_node[name] & remaining
        peers = {
            failing[i].destination if failing[i].source == name else failing[i].source
            for i in cover
        }
        if len(cover) < criteria.min_failing_paths or len(peers) < criteria.min_peers:
            continue
        key = (-len(cover), -scores[name], name)
        if pick is None or key < pick[0]:
            pick = (key, name, cover, len(peers))
    return None if pick is None else pick[1:]


def _direction(failing: Sequence[PathOutcome], paths: set[int], node: str) -> str:
    """inbound, outbound or both: whether ``node`` is mostly the destination of its ``paths``."""
    inbound = sum(1 for i in paths if failing[i].destination == node)
    outbound = len(paths) - inbound
    if inbound >= 2 * outbound:
        return "inbound"
    return "outbound" if outbound >= 2 * inbound else "both"


def _decide(
    mined: Analysis,
    outcomes: Sequence[PathOutcome],
    suspects: Sequence[Suspect],
    remaining: set[int],
) -> Analysis:
    """The verdict and its summary, given the mined ``Analysis`` (rules and scores, no verdict)."""
    failing = mined.failing
    wide = _cluster_wide(outcomes, failing, {s.node for s in suspects}, remaining, mined.criteria)
    if wide is not None:
        return replace(mined, verdict=VERDICT_CLUSTER_WIDE, summary=wide)
    if not suspects:
        paths = ", ".join(f"{o.source}->{o.destination} {o.protocol}" for o in failing[:5])
        more = f" and {len(failing) - 5} more" if len(failing) > 5 else ""
        summary = f"{len(failing)} failing path test(s) with no common node: {paths}{more}"
        return replace(mined, verdict=VERDICT_ISOLATED, summary=summary)
    unexplained = tuple(failing[i] for i in sorted(remaining))
    parts = [
        f"{s.node} ({s.failing} of {len(failing)} failing paths, {s.direction}, "
        f"confidence {s.best_rule.confidence:.2f}, lift {s.best_rule.lift:.2f})"
        for s in suspects
    ]
    suspects = [replace(s, drops=mined.drops.get(s.node, ())) for s in suspects]
    parts = [
        p + (f" — kernel drops {', '.join(e.text() for e in s.drops)}" if s.drops else "")
        for p, s in zip(parts, suspects, strict=True)
    ]
    lead = "suspect: " if len(suspects) == 1 else f"{len(suspects)} suspects: "
    tail = f"; {len(unexplained)} failing path test(s) unexplained" if unexplained else ""
    return replace(
        mined,
        verdict=VERDICT_SUSPECTS,
        summary=lead + "; ".join(parts) + tail,
        suspects=tuple(suspects),
        unexplained=unexplained,
    )


def _cluster_wide(
    outcomes: Sequence[PathOutcome],
    failing: Sequence[PathOutcome],
    named: set[str],
    remaining: set[int],
    criteria: Criteria,
) -> str | None:
    """The cluster-wide summary when most of the mesh fails and no node explains it, else None."""
    n = len(outcomes)
    avoiding = [o for o in outcomes if o.source not in named and o.destination not in named]
    background = (
        sum(1 for o in avoiding if o.failed) / len(avoiding) if avoiding else len(failing) / n
    )
    share = len(failing) / n
    if not (
        background > criteria.cluster_wide_ratio
        or (share > criteria.cluster_wide_ratio and (remaining or not avoiding))
    ):
        return None
    return (
        f"cluster-wide: {len(failing)} of {n} path tests fail ({share:.0%}); no node explains it"
        + (f" ({background:.0%} of the paths that avoid every suspect fail too)" if named else "")
    )
