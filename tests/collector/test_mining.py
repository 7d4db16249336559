"""collector/mining.py: transactions, apriori against brute force, rule metrics by hand."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.judging import Criteria, PathOutcome
from collector.mining import FAIL, frequent_itemsets, make_rule, node_itemsets, transaction
from collector.verdict import analyse
from tests.collector.rca_cases import inbound, mesh, random_fails

C = Criteria()


def test_transaction_items() -> None:
    o = PathOutcome(source="a", destination="b", protocol="udp", reasons=("x",))
    assert transaction(o) == {"node=a", "node=b", "src=a", "dst=b", "protocol=udp", FAIL}


def test_rule_metrics_by_hand() -> None:
    """3 nodes, every path into node-3 fails: 12 transactions, 4 FAIL."""
    outcomes = mesh(3, inbound("node-3"))
    tx = [transaction(o) for o in outcomes]
    sets = frequent_itemsets(tx, 0.0, 2)
    fail = frozenset({FAIL})

    def rule(a: str, c: str) -> tuple[int, float, float, float]:
        r = make_rule(sets, len(tx), frozenset({a}), frozenset({c}))
        assert r is not None
        return (r.count, r.support, r.confidence, r.lift)

    assert rule("dst=node-3", FAIL) == (4, pytest.approx(4 / 12), 1.0, pytest.approx(3.0))
    assert rule("node=node-3", FAIL) == (4, pytest.approx(4 / 12), 0.5, pytest.approx(1.5))
    assert rule(FAIL, "node=node-3") == (4, pytest.approx(4 / 12), 1.0, pytest.approx(1.5))
    assert rule("src=node-1", FAIL) == (2, pytest.approx(2 / 12), 0.5, pytest.approx(1.5))
    assert rule("node=node-1", FAIL) == (2, pytest.approx(2 / 12), 0.25, pytest.approx(0.75))
    assert make_rule(sets, len(tx), frozenset({"dst=node-1"}), fail) is None  # never fails

    a = analyse(outcomes, C)
    assert a.verdict == "suspects" and [s.node for s in a.suspects] == ["node-3"]
    assert a.scores["node-3"] == 1.0
    assert a.scores["node-1"] == pytest.approx(0.5 * 0.5)  # {FAIL}→node-1 0.5 x src rule 0.5
    # node-1's failing paths all go to node-3 (one peer): never named.
    assert a.suspects[0].direction == "inbound" and a.suspects[0].peers == 2


def test_min_support_prunes_itemsets() -> None:
    tx = [transaction(o) for o in mesh(3, inbound("node-3"))]
    sets = frequent_itemsets(tx, 3 / 12, 2)
    assert frozenset({"src=node-1", FAIL}) not in sets  # count 2 < 3
    assert sets[frozenset({"dst=node-3", FAIL})] == 4
    assert all(c / len(tx) >= 3 / 12 for c in sets.values())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.frozensets(st.sampled_from("abcdef"), min_size=1), min_size=1, max_size=30),
    st.floats(0.01, 0.6),
    st.integers(1, 4),
)
def test_apriori_equals_brute_force(tx: list[frozenset[str]], min_support: float, k: int) -> None:
    expected: dict[frozenset[str], int] = {}
    items = sorted(set().union(*tx))
    for size in range(1, k + 1):
        for combo in itertools.combinations(items, size):
            s = frozenset(combo)
            count = sum(1 for t in tx if s <= t)
            if count and count / len(tx) >= min_support:
                expected[s] = count
    assert frequent_itemsets(tx, min_support, k) == expected


@pytest.mark.parametrize("seed", range(4))
def test_node_itemsets_are_apriori_counts_of_items_and_fail_pairs(seed: int) -> None:
    """The node rules' shortcut counts exactly what apriori counts for every single item
    and every pair with FAIL (and nothing else is read)."""
    outcomes = mesh(5, random_fails(0.3, seed))
    full = frequent_itemsets([transaction(o) for o in outcomes], 2 / len(outcomes), 2)
    wanted = {k: v for k, v in full.items() if len(k) == 1 or FAIL in k}
    assert node_itemsets(outcomes, 2 / len(outcomes)) == wanted
