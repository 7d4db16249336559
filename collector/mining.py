"""Root-cause analysis, steps 2-4: association rules over the judged path tests (no I/O).

After judging (``collector/judging.py``) and before the verdict (``collector/verdict.py``):

2. **Transactions**: one per (source, destination, protocol) test, items
   ``node=<src>``, ``node=<dst>``, ``src=<src>``, ``dst=<dst>``,
   ``protocol=<p>`` and ``FAIL`` or ``OK``.
3. **Frequent itemsets** (apriori: level-wise candidates, every subset of a
   candidate frequent), up to ``max_len`` items, ``min_support`` a share of
   all transactions. The live analysis sets it to ``min_failing_paths / n``:
   an itemset ``{node=X, FAIL}`` below that could never name a suspect.
4. **Rules** ``{node=X} → {FAIL}``, ``{dst=X} → {FAIL}``, ``{src=X} → {FAIL}``
   (how often X's paths fail) and ``{FAIL} → {node=X}`` (what share of the
   failures X is part of), each with support, confidence and lift — the
   definitions of mlxtend's ``association_rules`` (a test checks that).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from collector.judging import PathOutcome

FAIL = "FAIL"
OK = "OK"

Itemset = frozenset[str]


def transaction(outcome: PathOutcome) -> Itemset:
    return frozenset(
        {
            f"node={outcome.source}",
            f"node={outcome.destination}",
            f"src={outcome.source}",
            f"dst={outcome.destination}",
            f"protocol={outcome.protocol}",
            FAIL if outcome.failed else OK,
        }
    )


def frequent_itemsets(
    transactions: Sequence[Itemset], min_support: float, max_len: int = 2
) -> dict[Itemset, int]:
    """Apriori: every itemset of up to ``max_len`` items with support ≥ ``min_support``.

    Returns the itemsets with their counts (support = count / len(transactions)).
    """
    n = len(transactions)
    if n == 0 or max_len < 1:
        return {}

    def frequent(count: int) -> bool:
        return count / n >= min_support

    counts: dict[Itemset, int] = defaultdict(int)
    for t in transactions:
        for item in t:
            counts[frozenset((item,))] += 1
    result = {k: v for k, v in counts.items() if frequent(v)}
    level = sorted(tuple(sorted(k)) for k in result)
    frequent_items = {item for key in result for item in key}
    k = 1
    while level and k < max_len:
        k += 1
        prev = set(level)
        candidates: set[tuple[str, ...]] = set()
        for a, b in itertools.combinations(level, 2):
            if a[:-1] != b[:-1]:
                continue
            cand = tuple(sorted((*a, b[-1])))
            if all(sub in prev for sub in itertools.combinations(cand, k - 1)):
                candidates.add(cand)
        if not candidates:
            break
        level_counts: dict[tuple[str, ...], int] = defaultdict(int)
        for t in transactions:
            items = sorted(i for i in t if i in frequent_items)
            for combo in itertools.combinations(items, k):
                if combo in candidates:
                    level_counts[combo] += 1
        kept = {c: v for c, v in level_counts.items() if frequent(v)}
        for c, v in kept.items():
            result[frozenset(c)] = v
        level = sorted(kept)
    return result


def node_itemsets(outcomes: Sequence[PathOutcome], min_support: float) -> dict[Itemset, int]:
    """The part of ``frequent_itemsets`` over the outcomes' transactions (max_len 2) that the
    node rules read — every frequent item, every frequent pair of an item with ``FAIL`` —
    counted straight from the outcomes: the same counts, without building the transactions
    (apriori's level 2 pairs every item with every other: at 5,000 nodes ~10^8 candidates;
    and the transactions alone cost ~0.7 s a run at 100,000 paths)."""
    n = len(outcomes)
    if n == 0:
        return {}
    failing = [o for o in outcomes if o.reasons]
    single = _item_counts(outcomes)
    with_fail = _item_counts(failing)
    single[FAIL], single[OK] = len(failing), n - len(failing)
    out = {frozenset((k,)): v for k, v in single.items() if v and v / n >= min_support}
    for k, v in with_fail.items():
        if v / n >= min_support:
            out[frozenset((k, FAIL))] = v
    return out


def _item_counts(outcomes: Sequence[PathOutcome]) -> Counter[str]:
    """How many of ``outcomes`` hold each src=, dst=, node=, protocol= item (by plain names
    first: one string per distinct node, not five per outcome)."""
    src = Counter(o.source for o in outcomes)
    dst = Counter(o.destination for o in outcomes)
    loops = Counter(o.source for o in outcomes if o.source == o.destination)
    out: Counter[str] = Counter()
    for name, k in src.items():
        out[f"src={name}"] = k
    for name, k in dst.items():
        out[f"dst={name}"] = k
    for name in src.keys() | dst.keys():
        out[f"node={name}"] = src[name] + dst[name] - loops[name]
    for proto, k in Counter(o.protocol for o in outcomes).items():
        out[f"protocol={proto}"] = k
    return out


@dataclass(frozen=True, kw_only=True)
class Rule:
    antecedent: Itemset
    consequent: Itemset
    count: int  # transactions holding antecedent and consequent
    support: float
    confidence: float
    lift: float

    def to_json(self) -> dict[str, Any]:
        return {
            "antecedent": sorted(self.antecedent),
            "consequent": sorted(self.consequent),
            "count": self.count,
            "support": self.support,
            "confidence": self.confidence,
            "lift": self.lift,
        }

    def text(self) -> str:
        return (
            f"{{{', '.join(sorted(self.antecedent))}}} -> {{{', '.join(sorted(self.consequent))}}}"
        )


def make_rule(
    itemsets: Mapping[Itemset, int], n: int, antecedent: Itemset, consequent: Itemset
) -> Rule | None:
    """The rule's metrics as mlxtend defines them, or None if an itemset is not frequent."""
    whole = itemsets.get(antecedent | consequent)
    a = itemsets.get(antecedent)
    c = itemsets.get(consequent)
    if not whole or not a or not c:
        return None
    s_whole, s_a, s_c = whole / n, a / n, c / n
    confidence = s_whole / s_a
    return Rule(
        antecedent=antecedent,
        consequent=consequent,
        count=whole,
        support=s_whole,
        confidence=confidence,
        lift=confidence / s_c,
    )


def rank_key(rule: Rule) -> tuple[float, float, float, str]:
    """Strongest first: by confidence, then lift, then support (then by text, for ties)."""
    return (-rule.confidence, -rule.lift, -rule.support, rule.text())


class NodeRules(NamedTuple):
    rules: list[Rule]  # every node's rules, strongest first
    best: dict[str, Rule]  # each node's strongest {role} → {FAIL} rule
    coverage: dict[str, Rule]  # each node's {FAIL} → {node} rule


def node_rules(
    outcomes: Sequence[PathOutcome], names: Iterable[str], min_support: float, max_len: int
) -> NodeRules:
    """Mine the outcomes' transactions; the rules of every node in ``names`` that are frequent."""
    n = len(outcomes)
    itemsets = (
        node_itemsets(outcomes, min_support)
        if max_len == 2
        else frequent_itemsets([transaction(o) for o in outcomes], min_support, max_len)
    )
    fail = frozenset((FAIL,))
    found = NodeRules([], {}, {})
    for name in names:
        for role in ("node", "dst", "src"):
            rule = make_rule(itemsets, n, frozenset((f"{role}={name}",)), fail)
            if rule is None:
                continue
            found.rules.append(rule)
            if name not in found.best or rank_key(rule) < rank_key(found.best[name]):
                found.best[name] = rule
        rule = make_rule(itemsets, n, fail, frozenset((f"node={name}",)))
        if rule is not None:
            found.rules.append(rule)
            found.coverage[name] = rule
    found.rules.sort(key=rank_key)
    return found
