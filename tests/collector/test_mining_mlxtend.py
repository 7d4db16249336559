"""Cross-check: mlxtend's apriori + association_rules on the same transactions give the
same support, confidence and lift for every rule collector/mining.py reports (via analyse)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from collector.judging import Criteria
from collector.mining import frequent_itemsets, transaction
from collector.verdict import analyse
from tests.collector.rca_cases import down, inbound, mesh, random_fails

pd = pytest.importorskip("pandas", reason="the 'test' extra installs pandas with mlxtend")
mlx_fp = pytest.importorskip("mlxtend.frequent_patterns", reason="pip install 'netmesh[test]'")

CASES: dict[str, tuple[int, Callable[[str, str, str], bool]]] = {
    "one inbound of 4": (4, inbound("node-3")),
    "one down of 7": (7, down("node-5")),
    "two inbound of 6": (6, inbound("node-2", "node-4")),
    "random 30% of 5": (5, random_fails(0.3, 7)),
    "random 80% of 5": (5, random_fails(0.8, 3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rules_identical_to_mlxtend(case: str) -> None:
    n, fails = CASES[case]
    outcomes = mesh(n, fails)
    criteria = Criteria()
    ours = analyse(outcomes, criteria)
    assert ours.rules, "the case has failing paths, so rules"

    tx = [transaction(o) for o in outcomes]
    items = sorted(set().union(*tx))
    onehot = pd.DataFrame([[i in t for i in items] for t in tx], columns=items)
    min_support = criteria.min_failing_paths / len(tx)
    frequent = mlx_fp.apriori(
        onehot, min_support=min_support, use_colnames=True, max_len=criteria.max_len
    )
    # The itemsets themselves agree (support = count / n).
    mine = frequent_itemsets(tx, min_support, criteria.max_len)
    theirs = {frozenset(r.itemsets): r.support for r in frequent.itertuples()}
    assert theirs.keys() == mine.keys()
    for itemset, count in mine.items():
        assert theirs[itemset] == pytest.approx(count / len(tx), rel=1e-12, abs=0)

    rules = mlx_fp.association_rules(
        frequent, num_itemsets=len(tx), metric="confidence", min_threshold=0.0
    )
    by_key = {(frozenset(r.antecedents), frozenset(r.consequents)): r for r in rules.itertuples()}
    for rule in ours.rules:
        ref = by_key[(rule.antecedent, rule.consequent)]
        assert rule.support == pytest.approx(ref.support, rel=1e-12, abs=0), rule
        assert rule.confidence == pytest.approx(ref.confidence, rel=1e-12, abs=0), rule
        assert rule.lift == pytest.approx(ref.lift, rel=1e-12, abs=0), rule
