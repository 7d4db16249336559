"""Pod blame: pod flows, transactions, rules (mlxtend's definitions) and findings."""

from __future__ import annotations

import pytest

from collector.podblame import (
    PodCriteria,
    PodTransaction,
    findings,
    pod_totals,
    rule_item,
    rules,
    transactions,
)
from netmesh.wire import RetransmitFlow

PODS = {f"lab/node-{i}-pod-1": f"node-{i}" for i in range(1, 5)}
P2 = "lab/node-2-pod-1"
CRIT = PodCriteria()


def _rates_into(pod: str, rate: float = 8.0) -> dict[tuple[str, str], float]:
    return {(src, pod): rate for src in PODS if src != pod}


def test_pod_totals_resolve_both_ends_and_skip_the_rest() -> None:
    ip_to_pod = {"10.244.1.2": "lab/a", "10.244.2.2": "lab/b"}
    flows = {
        "node-1": [
            RetransmitFlow(local="10.244.1.2", remote="10.244.2.2", port=8080, count=5),
            RetransmitFlow(local="10.244.1.2", remote="10.244.2.2", port=9000, count=2),
            RetransmitFlow(local="10.80.0.11", remote="10.244.2.2", port=8080, count=9),
            RetransmitFlow(local="other", remote="other", port=0, count=9),
        ]
    }
    assert pod_totals(flows, ip_to_pod.get) == {("lab/a", "lab/b"): 7.0}


def test_one_pod_receiving_loss_is_named_with_the_seeds_rule() -> None:
    rates = _rates_into(P2)
    rates |= {(P2, src): 3.0 for src in PODS if src != P2}  # its ACKs lost: it retransmits too
    txs = transactions(rates, PODS, CRIT)
    assert len(txs) == 12 and sum(t.failed for t in txs) == 6
    found, mined = findings(txs, PODS, set(), CRIT)
    assert [(f.kind, f.pod, f.node, f.direction) for f in found] == [("pod", P2, "node-2", "both")]
    best = {rule_item(r): r for r in mined}[f"pod={P2}"]
    # The seed's numbers: confidence 1.0, lift 2.0 (half of all pairs fail).
    assert (best.confidence, best.lift, best.support) == (1.0, 2.0, 0.5)
    assert best.text() == "{pod=lab/node-2-pod-1} -> {FAIL}"
    assert "pod lab/node-2-pod-1 on node-2" in found[0].summary()


def test_inbound_only_names_the_pod_by_its_dst_rule() -> None:
    found, _ = findings(transactions(_rates_into(P2), PODS, CRIT), PODS, set(), CRIT)
    assert [(f.pod, f.direction, rule_item(f.rule)) for f in found] == [
        (P2, "inbound", f"dst={P2}")
    ]
    assert found[0].rule.lift == 4.0


def test_no_failing_pairs_no_finding() -> None:
    txs = transactions({(a, b): 0.2 for a in PODS for b in PODS if a != b}, PODS, CRIT)
    assert findings(txs, PODS, set(), CRIT)[0] == []


def test_a_node_with_failing_host_paths_keeps_the_blame() -> None:
    found, _ = findings(transactions(_rates_into(P2), PODS, CRIT), PODS, {"node-2"}, CRIT)
    assert found == []


def test_all_pods_of_a_node_failing_is_its_pod_network() -> None:
    pods = {**PODS, "lab/node-2-pod-2": "node-2"}
    rates = _rates_into(P2) | {(s, "lab/node-2-pod-2"): 8.0 for s in PODS if s != P2}
    found, _ = findings(transactions(rates, pods, CRIT), pods, set(), CRIT)
    assert [(f.kind, f.node) for f in found] == [("pod-network", "node-2")]
    assert "pod network of node-2" in found[0].summary()


def test_a_sibling_pod_that_is_fine_keeps_the_blame_on_the_pod() -> None:
    pods = {**PODS, "lab/node-2-pod-2": "node-2"}
    found, _ = findings(transactions(_rates_into(P2), pods, CRIT), pods, set(), CRIT)
    assert [(f.kind, f.pod) for f in found] == [("pod", P2)]


def test_rule_measures_match_mlxtend() -> None:
    mlxtend = pytest.importorskip("mlxtend.frequent_patterns")
    pd = pytest.importorskip("pandas")
    txs = transactions(
        _rates_into(P2) | {("lab/node-1-pod-1", "lab/node-3-pod-1"): 5.0}, PODS, CRIT
    )
    rows = [{f"pod={t.source}": True, f"pod={t.destination}": True, "FAIL": t.failed} for t in txs]
    frame = pd.DataFrame(rows).fillna(False).astype(bool)
    sets = mlxtend.apriori(frame, min_support=0.01, use_colnames=True, max_len=2)
    ref = mlxtend.association_rules(sets, metric="confidence", min_threshold=0.0)
    ours = {rule_item(r): r for r in rules(txs)}
    for _, row in ref.iterrows():
        (a,), (c,) = tuple(row["antecedents"]), tuple(row["consequents"])
        if c == "FAIL" and a.startswith("pod="):
            mine = ours[a]
            assert mine.support == pytest.approx(row["support"])
            assert mine.confidence == pytest.approx(row["confidence"])
            assert mine.lift == pytest.approx(row["lift"])


def test_transaction_threshold_is_strict() -> None:
    txs = transactions({("a", "b"): 1.0}, ["a", "b"], CRIT)
    assert txs == [PodTransaction("a", "b", 1.0, False), PodTransaction("b", "a", 0.0, False)]


def test_a_pod_finding_in_the_rcas_own_form() -> None:
    found, _ = findings(transactions(_rates_into(P2), PODS, CRIT), PODS, set(), CRIT)
    finding = found[0].as_finding(CRIT)
    assert (finding.kind, finding.subject, finding.item) == ("pod", P2, f"dst={P2}")
    assert (finding.failing, finding.paths, finding.nodes) == (3, 3, ("node-2",))
    assert finding.criteria == (("ebpf-retransmits", 3),)
    assert finding.evidence[0].reasons == ("eBPF retransmissions 8.0/s > 1/s",)
    assert finding.title() == f"pod {P2} (inbound)"
    assert finding.to_json()["rule"] == f"{{dst={P2}}} -> {{FAIL}}"
