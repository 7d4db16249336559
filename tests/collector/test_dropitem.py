"""Kernel drop reasons as items of the RCA's transactions (collector/mining.py, verdict.py)."""

from __future__ import annotations

import random

import pytest

from collector.dropevidence import DropEvidence
from collector.judging import Criteria, PathOutcome
from collector.mining import FAIL, frequent_itemsets, node_itemsets, transaction
from collector.verdict import Analysis, analyse
from tests.collector.rca_cases import down, inbound, mesh, names, random_fails

C = Criteria()
NF = "NETFILTER_DROP"


def ev(**rates: float) -> tuple[DropEvidence, ...]:
    return tuple(DropEvidence(r, v) for r, v in rates.items())


def test_transaction_carries_the_drop_items_of_both_ends() -> None:
    o = PathOutcome(source="a", destination="b", protocol="tcp", reasons=("x",))
    got = transaction(o, {"a": ["NO_SOCKET"], "b": [NF, "NO_SOCKET"]})
    assert got - transaction(o) == {
        "src-drops=NO_SOCKET",
        f"dst-drops={NF}",
        "dst-drops=NO_SOCKET",
        f"drops={NF}",
        "drops=NO_SOCKET",
    }
    assert transaction(o, {}) == transaction(o)


def test_inbound_node_with_netfilter_drops_gets_its_rule() -> None:
    """4 nodes, every path into node-3 fails, node-3 drops NETFILTER_DROP at 100/s."""
    outcomes = mesh(4, inbound("node-3"))
    a = analyse(outcomes, C, drops={"node-3": ev(NETFILTER_DROP=100.0)})
    by_text = {r.text(): r for r in a.rules}
    rule = by_text[f"{{dst-drops={NF}}} -> {{{FAIL}}}"]
    assert rule.confidence == 1.0
    assert rule.lift == pytest.approx(len(outcomes) / len(a.failing)) and rule.lift > 1
    assert rule.count == len(a.failing) == 6
    either = by_text[f"{{drops={NF}}} -> {{{FAIL}}}"]
    assert either.confidence == pytest.approx(0.5)  # node-3's outbound paths pass
    assert f"{{src-drops={NF}}} -> {{{FAIL}}}" not in by_text  # never fails
    # the findings are those without the drop item
    assert [f.item for f in a.findings] == [f.item for f in analyse(outcomes, C).findings]
    [suspect] = a.suspects
    assert suspect.node == "node-3" and suspect.direction == "inbound"
    assert dict(suspect.drop_rules) == {NF: rule}
    assert (
        f"kernel drops {NF} 100.0/s (rule {{dst-drops={NF}}} -> {{FAIL}}, confidence 1.00, "
        f"lift {rule.lift:.2f})" in a.summary
    )
    body = a.to_json()
    assert body["suspects"][0]["drops"][0]["rule"]["antecedent"] == [f"dst-drops={NF}"]
    assert {"antecedent": [f"dst-drops={NF}"], "consequent": [FAIL]}.items() <= next(
        r for r in body["rules"] if r["antecedent"] == [f"dst-drops={NF}"]
    ).items()


def test_a_down_node_quotes_the_either_end_rule() -> None:
    outcomes = mesh(5, down("node-2"))
    a = analyse(outcomes, C, drops={"node-2": ev(NO_SOCKET=5.0)})
    [suspect] = a.suspects
    assert suspect.direction == "both"
    [(reason, rule)] = suspect.drop_rules
    assert reason == "NO_SOCKET" and rule.antecedent == {"drops=NO_SOCKET"}
    assert rule.confidence == 1.0 and rule.lift > 1


def test_drops_without_failing_paths_name_nothing() -> None:
    clean = mesh(4)
    a = analyse(clean, C, drops={"node-2": ev(NETFILTER_DROP=100.0)})
    assert a.verdict == "ok" and not a.findings and not a.rules
    assert a.drops == {"node-2": ev(NETFILTER_DROP=100.0)}  # still evidence, listed
    # node-3 fails inbound; node-1 drops (its paths pass but the ones into node-3): not named
    outcomes = mesh(5, inbound("node-3"))
    a = analyse(outcomes, C, drops={"node-1": ev(NETFILTER_DROP=100.0)})
    assert [f.subject for f in a.findings] == ["node-3"]
    assert a.suspects[0].drop_rules == () and "kernel drops" not in a.summary
    # the drop item's rules are weak: only node-1's paths into node-3 fail
    for r in a.rules:
        if any("drops=" in i for i in r.antecedent):
            assert r.confidence < C.min_confidence


def test_only_the_dropping_node_is_associated() -> None:
    """Two nodes drop NETFILTER_DROP, one of them fails inbound: confidence 0.5, still named."""
    outcomes = mesh(6, inbound("node-4"))
    drops = {"node-4": ev(NETFILTER_DROP=100.0), "node-1": ev(NETFILTER_DROP=50.0)}
    a = analyse(outcomes, C, drops=drops)
    rule = next(r for r in a.rules if r.antecedent == {f"dst-drops={NF}"})
    assert rule.confidence == pytest.approx(0.5)
    assert rule.lift == pytest.approx(0.5 / (len(a.failing) / len(outcomes)))
    assert [f.subject for f in a.findings] == ["node-4"]


@pytest.mark.parametrize("seed", range(6))
def test_permuting_node_names_changes_nothing(seed: int) -> None:
    rng = random.Random(seed)
    outcomes = mesh(6, inbound("node-2") if seed % 2 else down("node-5"))
    drops = {n: ev(NETFILTER_DROP=100.0) for n in rng.sample(names(6), 2)}
    drops["node-2" if seed % 2 else "node-5"] = ev(NETFILTER_DROP=100.0, NO_SOCKET=3.0)
    shuffled = names(6)
    rng.shuffle(shuffled)
    rename = dict(zip(names(6), shuffled, strict=True))
    moved = [
        PathOutcome(
            source=rename[o.source],
            destination=rename[o.destination],
            protocol=o.protocol,
            reasons=o.reasons,
        )
        for o in reversed(outcomes)
    ]
    a = analyse(outcomes, C, drops=drops)
    b = analyse(moved, C, drops={rename[n]: e for n, e in drops.items()})

    def drop_rules(x: Analysis) -> set[tuple[str, float, float, float]]:
        return {
            (r.text(), r.support, round(r.confidence, 12), round(r.lift, 12))
            for r in x.rules
            if "drops=" in r.text()
        }

    assert drop_rules(a) and drop_rules(a) == drop_rules(b)
    assert [rename[f.subject] for f in a.findings] == [f.subject for f in b.findings]
    assert [s.drop_rules for s in a.suspects] == [s.drop_rules for s in b.suspects]
    assert a.summary.count("rule {") == b.summary.count("rule {") >= 1


@pytest.mark.parametrize("seed", range(6))
def test_node_itemsets_count_the_drop_items_as_apriori_does(seed: int) -> None:
    rng = random.Random(seed)
    outcomes = mesh(6, random_fails(0.3, seed))
    outcomes += [  # a node's path to itself: one path, one drops= item
        PathOutcome(source="node-2", destination="node-2", protocol="tcp", reasons=("x",))
    ]
    drops = {
        n: rng.sample([NF, "NO_SOCKET", "TCP_CSUM"], rng.randint(1, 2))
        for n in rng.sample(names(6), rng.randint(1, 4))
    }
    full = frequent_itemsets([transaction(o, drops) for o in outcomes], 2 / len(outcomes), 2)
    wanted = {k: v for k, v in full.items() if len(k) == 1 or FAIL in k}
    assert node_itemsets(outcomes, 2 / len(outcomes), drops) == wanted


@pytest.mark.parametrize("seed", range(8))
def test_findings_do_not_change_with_drop_items(seed: int) -> None:
    rng = random.Random(seed)
    outcomes = mesh(7, random_fails(rng.choice((0.05, 0.2, 0.6)), seed))
    drops = {n: ev(NETFILTER_DROP=100.0) for n in rng.sample(names(7), 3)}
    with_drops = analyse(outcomes, C, drops=drops)
    without = analyse(outcomes, C)
    assert with_drops.findings == without.findings
    assert with_drops.verdict == without.verdict
    assert with_drops.scores == without.scores
    assert [r for r in with_drops.rules if "drops=" not in r.text()] == list(without.rules)
