"""The source design's method (collector/seed.py, ``netmesh-rca --method seed``) on its worked
example (tests/fixtures/seed_retransmissions.jsonl, in the design's JSONL format): four pods,
every pair involving 10.244.92.159 retransmits in the window; its itemsets and rules exactly,
and mlxtend's apriori + association_rules on the same transactions give the same numbers."""

from __future__ import annotations

import io
import json
import pathlib

import pytest

from collector.mining import FAIL, OK
from collector.offline import main
from collector.pairs import find_evidence
from collector.rangequery import load
from collector.seed import SeedCriteria, analyse_seed, transactions

FIXTURE = pathlib.Path(__file__).parents[1] / "fixtures" / "seed_retransmissions.jsonl"
BAD = "10.244.92.159"
OTHERS = ("10.244.140.77", "10.244.196.132", "10.244.92.151")

# The design's tables: the ten most frequent itemsets, and every rule with confidence >= 0.7.
DESIGN_ITEMSETS = [
    *[({ip}, 0.5) for ip in (*OTHERS, BAD)],
    ({FAIL}, 0.5),
    ({OK}, 0.5),
    ({BAD, FAIL}, 0.5),
    *[({ip, OK}, 1 / 3) for ip in OTHERS],
]
DESIGN_RULES = {
    (frozenset({FAIL}), frozenset({BAD})): (0.5, 1.0, 2.0),
    (frozenset({BAD}), frozenset({FAIL})): (0.5, 1.0, 2.0),
}


def _analysis(path: pathlib.Path = FIXTURE, **criteria: float) -> object:
    evidence = find_evidence(load(str(path)))
    assert evidence is not None
    return analyse_seed(evidence, SeedCriteria(**criteria))  # type: ignore[arg-type]


def test_worked_example_tables_exactly() -> None:
    evidence = find_evidence(load(str(FIXTURE)))
    assert evidence is not None
    assert (evidence.scheme.source, evidence.scheme.destination) == ("src_ip", "dst_ip")
    assert evidence.endpoints == tuple(sorted((*OTHERS, BAD)))
    tx = transactions(evidence, 0.0)
    assert len(tx) == 12
    assert {(s, d) for s, d, status in tx if status == FAIL} == {
        (s, d) for s, d, _ in tx if BAD in (s, d)
    }
    result = analyse_seed(evidence, SeedCriteria())
    top = [(set(s), result.support(s)) for s in result.ranked_itemsets()[:10]]
    assert sorted(top, key=repr) == sorted(
        [(s, pytest.approx(v, abs=1e-12)) for s, v in DESIGN_ITEMSETS], key=repr
    )
    # below them: {x, y} pairs of endpoints and {FAIL, x} for the others, 1/6 each
    assert all(result.support(s) == pytest.approx(1 / 6) for s in result.ranked_itemsets()[10:])
    rules = {(r.antecedent, r.consequent): (r.support, r.confidence, r.lift) for r in result.rules}
    assert rules == {k: pytest.approx(v) for k, v in DESIGN_RULES.items()}
    assert result.first == BAD


def test_fixture_can_fail(tmp_path: pathlib.Path) -> None:
    """One pair of the faulty pod flat in the window: no longer the design's tables."""
    lines = FIXTURE.read_text().splitlines()
    first = json.loads(lines[0])
    first["values"] = [[t, "5"] for t, _ in first["values"]]
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    evidence = find_evidence(load(str(changed)))
    assert evidence is not None
    result = analyse_seed(evidence, SeedCriteria())
    assert result.failing == 5
    assert {(r.antecedent, r.consequent) for r in result.rules} != set(DESIGN_RULES)
    # and a threshold above every increase in the window fails nothing
    quiet = analyse_seed(evidence, SeedCriteria(threshold=10_000))
    assert quiet.failing == 0 and quiet.first is None


pd = pytest.importorskip("pandas", reason="the 'test' extra installs pandas with mlxtend")
mlx_fp = pytest.importorskip("mlxtend.frequent_patterns", reason="pip install 'netmesh[test]'")
mlx_pre = pytest.importorskip("mlxtend.preprocessing", reason="pip install 'netmesh[test]'")


@pytest.mark.parametrize("max_len", [2, 3])
def test_identical_to_mlxtend_transaction_encoder(max_len: int) -> None:
    """The design's pipeline: TransactionEncoder, apriori(0.001), association_rules(conf 0.7)."""
    evidence = find_evidence(load(str(FIXTURE)))
    assert evidence is not None
    ours = analyse_seed(evidence, SeedCriteria(max_len=max_len))
    tx = [list(t) for t in ours.transactions]
    encoder = mlx_pre.TransactionEncoder()
    onehot = pd.DataFrame(encoder.fit(tx).transform(tx), columns=encoder.columns_)
    frequent = mlx_fp.apriori(onehot, min_support=0.001, use_colnames=True, max_len=max_len)
    theirs = {frozenset(r.itemsets): r.support for r in frequent.itertuples()}
    assert theirs.keys() == ours.itemsets.keys()
    for itemset, support in theirs.items():
        assert ours.support(itemset) == pytest.approx(support, rel=1e-12, abs=0)
    rules = mlx_fp.association_rules(
        frequent, num_itemsets=len(tx), metric="confidence", min_threshold=0.7
    )
    ref = {
        (frozenset(r.antecedents), frozenset(r.consequents)): (r.support, r.confidence, r.lift)
        for r in rules.itertuples()
    }
    mine = {(r.antecedent, r.consequent): (r.support, r.confidence, r.lift) for r in ours.rules}
    assert mine.keys() == ref.keys()
    for key, values in ref.items():
        assert mine[key] == pytest.approx(values, rel=1e-12, abs=0)
    if max_len == 2:
        assert mine.keys() == DESIGN_RULES.keys()
    else:  # the three-item sets add {x, y} -> {OK} and {FAIL, x} -> {159} and so on
        assert len(mine) == 11


def test_command_prints_the_design_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--input", str(FIXTURE), "--method", "seed"]) == 0
    out = capsys.readouterr().out
    assert "labels src_ip -> dst_ip" in out
    assert "transactions: 12 ordered pairs, 6 FAIL (retransmissions > 0)" in out
    rules = out.split("association rules (confidence >= 0.7): 2\n")[1].splitlines()
    assert rules[0].split() == ["antecedents", "consequents", "support", "confidence", "lift"]
    assert sorted(line.split() for line in rules[1:3]) == [
        [f"{{{BAD}}}", "{FAIL}", "0.500", "1.000", "2.000"],
        ["{FAIL}", f"{{{BAD}}}", "0.500", "1.000", "2.000"],
    ]
    assert f"named first: {BAD} " in out
    itemsets = out.split("the 10 most frequent\n")[1].split("\n\n")[0].splitlines()[1:]
    assert len(itemsets) == 10 and itemsets[6].split() == ["0.500", f"{{{BAD},", "FAIL}"]


def test_command_json() -> None:
    out = io.StringIO()
    assert main(["--input", str(FIXTURE), "--method", "seed", "--json"], out=out) == 0
    body = json.loads(out.getvalue())
    assert body["method"] == "seed" and body["first"] == BAD
    assert body["transactions"] == 12 and body["failing"] == 6
    assert body["evidence"]["labels"] == {"source": "src_ip", "destination": "dst_ip"}
    assert {(tuple(r["antecedents"]), tuple(r["consequents"])) for r in body["rules"]} == {
        ((BAD,), (FAIL,)),
        ((FAIL,), (BAD,)),
    }
    assert all(r["lift"] == pytest.approx(2.0) for r in body["rules"])
