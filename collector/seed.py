"""Offline RCA, the source design's method (``netmesh-rca --method seed``; no I/O here).

The design this project comes from mines eBPF retransmissions alone: every
ordered pair of the endpoints seen is one transaction ``[src, dst, OK|FAIL]``
(FAIL when the pair's retransmissions in the window exceed a threshold, 0 by
default: any), one-hot encoded, apriori (``min_support`` 0.001) and every
association rule with confidence ≥ 0.7, printed as antecedents →
consequents with support, confidence and lift. Items are the endpoints
themselves and the status, as in the design (an endpoint is a pod, a node
or an IP, never called OK or FAIL).

The mining is the project's own (``collector/mining.py``: ``frequent_itemsets``
and ``make_rule``, the definitions of mlxtend's ``apriori`` and
``association_rules``; a test cross-checks them with mlxtend). Itemsets hold up
to ``max_len`` items (2 by default: the design's worked example lists exactly
the rules that itemsets of two items give). Named first: the endpoint of the
strongest rule between one endpoint and ``FAIL`` (either direction, lift > 1).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from collector.mining import FAIL, OK, Itemset, Rule, frequent_itemsets, make_rule, rank_key
from collector.pairs import Evidence


@dataclass(frozen=True, kw_only=True)
class SeedCriteria:
    """The design's defaults."""

    threshold: float = 0.0  # a pair FAILs when its retransmissions exceed this
    min_support: float = 0.001
    min_confidence: float = 0.7
    max_len: int = 2


@dataclass(frozen=True, kw_only=True)
class SeedAnalysis:
    evidence: Evidence
    criteria: SeedCriteria
    transactions: tuple[tuple[str, str, str], ...]
    itemsets: dict[Itemset, int]
    rules: tuple[Rule, ...]  # strongest first
    ranking: tuple[tuple[str, Rule], ...]  # endpoints associated with FAIL, strongest first

    @property
    def failing(self) -> int:
        return sum(t[2] == FAIL for t in self.transactions)

    @property
    def first(self) -> str | None:
        return self.ranking[0][0] if self.ranking else None

    def support(self, itemset: Itemset) -> float:
        return self.itemsets[itemset] / len(self.transactions)

    def ranked_itemsets(self) -> list[Itemset]:
        """Most frequent first (then smaller, then by items)."""
        return sorted(self.itemsets, key=lambda s: (-self.itemsets[s], len(s), sorted(s)))

    def to_json(self, limit: int = 200) -> dict[str, Any]:
        n = len(self.transactions)
        return {
            "method": "seed",
            "evidence": self.evidence.to_json(),
            "criteria": self.criteria.__dict__,
            "endpoints": list(self.evidence.endpoints),
            "transactions": n,
            "failing": self.failing,
            "failing_pairs": [[s, d] for s, d, status in self.transactions if status == FAIL],
            "itemsets_total": len(self.itemsets),
            "itemsets": [
                {"items": sorted(s), "support": self.itemsets[s] / n}
                for s in self.ranked_itemsets()[:limit]
            ],
            "rules_total": len(self.rules),
            "rules": [
                {
                    "antecedents": sorted(r.antecedent),
                    "consequents": sorted(r.consequent),
                    "support": r.support,
                    "confidence": r.confidence,
                    "lift": r.lift,
                }
                for r in self.rules[:limit]
            ],
            "ranking": [{"endpoint": e, "rule": r.text()} for e, r in self.ranking],
            "first": self.first,
        }


def transactions(evidence: Evidence, threshold: float) -> list[tuple[str, str, str]]:
    """Every ordered pair of the endpoints seen: ``(src, dst, FAIL|OK)``."""
    amounts = evidence.amounts()
    return [
        (src, dst, FAIL if amounts.get((src, dst), 0.0) > threshold else OK)
        for src, dst in itertools.permutations(evidence.endpoints, 2)
    ]


def all_rules(itemsets: dict[Itemset, int], n: int, min_confidence: float) -> list[Rule]:
    """Every rule A → C of every frequent itemset (A, C non-empty, disjoint), as mlxtend's
    ``association_rules(metric="confidence", min_threshold=min_confidence)``."""
    rules: list[Rule] = []
    for itemset in itemsets:
        items = sorted(itemset)
        for k in range(1, len(items)):
            for antecedent in itertools.combinations(items, k):
                a = frozenset(antecedent)
                rule = make_rule(itemsets, n, a, itemset - a)
                if rule is not None and rule.confidence >= min_confidence:
                    rules.append(rule)
    return sorted(rules, key=rank_key)


def analyse_seed(evidence: Evidence, criteria: SeedCriteria) -> SeedAnalysis:
    tx = transactions(evidence, criteria.threshold)
    itemsets = frequent_itemsets([frozenset(t) for t in tx], criteria.min_support, criteria.max_len)
    rules = all_rules(itemsets, len(tx), criteria.min_confidence)
    best: dict[str, Rule] = {}
    for rule in rules:  # strongest first: keep each endpoint's first
        both = rule.antecedent | rule.consequent
        if len(both) == 2 and FAIL in both and OK not in both and rule.lift > 1:
            (endpoint,) = both - {FAIL}
            best.setdefault(endpoint, rule)
    return SeedAnalysis(
        evidence=evidence,
        criteria=criteria,
        transactions=tuple(tx),
        itemsets=itemsets,
        rules=tuple(rules),
        ranking=tuple(sorted(best.items(), key=lambda kv: rank_key(kv[1]))),
    )


def _set(items: Itemset) -> str:
    return "{" + ", ".join(sorted(items)) + "}"


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def seed_table(analysis: SeedAnalysis, top: int = 10) -> str:
    """The design's printout: frequent itemsets, then the rules."""
    ev, c, n = analysis.evidence, analysis.criteria, len(analysis.transactions)
    more = f", the {top} most frequent" if top < len(analysis.itemsets) else ""
    lines = [
        f"window: {_when(ev.start)} .. {_when(ev.end)}; {ev.describe()}",
        f"endpoints: {len(ev.endpoints)}; transactions: {n} ordered pairs, "
        f"{analysis.failing} FAIL (retransmissions > {c.threshold:g})",
        "",
        f"frequent itemsets (min_support {c.min_support:g}, up to {c.max_len} items): "
        f"{len(analysis.itemsets)}{more}",
    ]
    shown = analysis.ranked_itemsets()[:top]
    lines += [f"{'support':>9}  itemsets"]
    lines += [f"{analysis.support(s):>9.3f}  {_set(s)}" for s in shown]
    lines += ["", f"association rules (confidence >= {c.min_confidence:g}): {len(analysis.rules)}"]
    if analysis.rules:
        wa = max(len("antecedents"), *(len(_set(r.antecedent)) for r in analysis.rules))
        wc = max(len("consequents"), *(len(_set(r.consequent)) for r in analysis.rules))
        lines.append(f"{'antecedents':<{wa}}  {'consequents':<{wc}}  support  confidence   lift")
        lines += [
            f"{_set(r.antecedent):<{wa}}  {_set(r.consequent):<{wc}}  {r.support:>7.3f}"
            f"  {r.confidence:>10.3f}  {r.lift:>5.3f}"
            for r in analysis.rules
        ]
    lines.append("")
    if analysis.ranking:
        endpoint, rule = analysis.ranking[0]
        lines.append(
            f"named first: {endpoint} ({rule.text()}, confidence {rule.confidence:.2f}, "
            f"lift {rule.lift:.2f})"
        )
        if len(analysis.ranking) > 1:
            lines.append("then: " + ", ".join(e for e, _ in analysis.ranking[1:]))
    else:
        lines.append("named first: nobody (no rule ties one endpoint to FAIL with lift > 1)")
    return "\n".join(lines)
