"""collector/rca.py: criteria, apriori, rule metrics by hand, verdicts (one, two, cluster-wide)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.rca import (
    FAIL,
    Baselines,
    Criteria,
    PathJudge,
    PathOutcome,
    RetransmitRates,
    analyse,
    frequent_itemsets,
    judge,
    judge_all,
    make_rule,
    retransmit_ratio,
    transaction,
)
from netmesh.wire import TestResult
from tests.collector.rca_cases import down, inbound, mesh, names, random_fails

C = Criteria()


def tcp(**kw: Any) -> TestResult:
    values: dict[str, Any] = {
        "source": "a",
        "destination": "b",
        "protocol": "tcp",
        "result": "ok",
        "started_at": 100.0,
        "duration_seconds": 2.0,
        "sent_bits_per_second": 1e9,
        "received_bits_per_second": 1e9,
        "retransmits": 0,
    }
    values.update(kw)
    return TestResult(**values)


def udp(loss: float, **kw: Any) -> TestResult:
    values: dict[str, Any] = {
        "source": "a",
        "destination": "b",
        "protocol": "udp",
        "result": "ok",
        "started_at": 100.0,
        "duration_seconds": 2.0,
        "sent_bits_per_second": 5e7,
        "received_bits_per_second": 5e7 * (1 - loss),
        "loss_ratio": loss,
    }
    values.update(kw)
    return TestResult(**values)


# --------------------------------------------------------------------------- criteria


def test_failed_test_is_fail_with_its_reason() -> None:
    r = tcp(result="refused", message="connection refused", sent_bits_per_second=None)
    assert judge(r, C) == ("test refused: connection refused",)


def test_loss_above_threshold_only() -> None:
    assert judge(udp(0.05), C) == ()  # thresholds are exclusive
    assert judge(udp(0.051), C) == ("loss 5.1% > 5.0%",)
    assert judge(udp(0.2), Criteria(loss_ratio=0.3)) == ()


def test_retransmit_ratio_is_share_of_segments() -> None:
    # 1 Gbit/s for 2 s = 250 MB = 172652 segments of 1448 bytes.
    segments = 1e9 * 2 / 8 / 1448
    r = tcp(retransmits=int(segments * 0.03))
    assert retransmit_ratio(r) == pytest.approx(0.03, rel=1e-3)
    assert judge(r, C) == ("iperf3 retransmits 3.0% of segments > 2.0%",)
    assert judge(tcp(retransmits=int(segments * 0.01)), C) == ()
    assert retransmit_ratio(tcp(retransmits=None)) is None


def test_bandwidth_against_the_paths_own_baseline() -> None:
    # 400 Mbit/s is fine on a path whose baseline is 500, not on one whose baseline is 1000.
    slow = tcp(received_bits_per_second=4e8)
    assert judge(slow, C, baseline_bps=5e8) == ()
    assert judge(slow, C, baseline_bps=1e9) == (
        "bandwidth 400 Mbit/s < 50% of the path's baseline 1000 Mbit/s",
    )
    assert judge(slow, C, baseline_bps=None) == ()
    assert judge(slow, Criteria(bandwidth_fraction=0), baseline_bps=1e9) == ()


def test_ebpf_rate_above_threshold() -> None:
    assert judge(tcp(), C, ebpf_rate=10.0) == ()
    assert judge(tcp(), C, ebpf_rate=55.0) == ("eBPF retransmissions 55/s > 10/s",)
    assert judge(tcp(), Criteria(ebpf_retransmits_per_second=0), ebpf_rate=1e6) == ()


def test_baseline_needs_min_samples_and_excludes_the_current_test() -> None:
    base = Baselines(samples=5)
    crit = Criteria(baseline_min_samples=3)
    judged = []
    for i, bw in enumerate([1e9, 1e9, 0.98e9, 0.3e9, 0.3e9]):
        out = judge_all([tcp(started_at=100.0 + i, received_bits_per_second=bw)], crit, base)
        judged.append(out[0].failed)
    assert judged == [False, False, False, True, True]
    # The same latest result judged again (the collector re-runs): same verdict, one sample.
    again = judge_all([tcp(started_at=104.0, received_bits_per_second=0.3e9)], crit, base)
    assert again[0].failed
    assert base.baseline(("a", "b", "tcp"), 1e12)[1] == 5


def test_baseline_adapts_to_a_lasting_change() -> None:
    """A path that stays at its new rate becomes the new normal (median of recent tests)."""
    base = Baselines(samples=4)
    results = [1e9] * 4 + [0.3e9] * 6
    failed = [
        judge_all([tcp(started_at=float(i), received_bits_per_second=bw)], C, base)[0].failed
        for i, bw in enumerate(results)
    ]
    assert failed[4] and not failed[-1]


def test_busy_is_no_evidence_and_gone_paths_are_forgotten() -> None:
    base = Baselines()
    out = judge_all([tcp(result="busy"), udp(0.0)], C, base)
    assert [o.protocol for o in out] == ["udp"]
    judge_all([tcp(started_at=1.0)], C, base)
    judge_all([udp(0.0)], C, base)
    assert base.baseline(("a", "b", "tcp"), 1e12) == (None, 0)


def test_retransmit_rates_window_and_counter_reset() -> None:
    rates = RetransmitRates(window=10)
    rates.observe(0, {("a", "b"): 0})
    rates.observe(5, {("a", "b"): 500})
    assert rates.rates(5) == {("a", "b"): 100.0}
    rates.observe(20, {("a", "b"): 500})  # nothing new: the window slides past the burst
    assert rates.rates(20) == {("a", "b"): 0.0}
    rates.observe(21, {("a", "b"): 3})  # agent restarted
    assert rates.rates(21) == {}
    assert rates.rates(100) == {}  # long gone


def test_ebpf_rate_applies_to_the_tcp_transaction_of_the_pair() -> None:
    out = judge_all([tcp(), udp(0.0)], C, Baselines(), {("a", "b"): 99.0})
    assert {o.protocol: o.failed for o in out} == {"tcp": True, "udp": False}


# --------------------------------------------------------------------------- mining


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


# --------------------------------------------------------------------------- verdicts


def test_clean_matrix_says_nothing() -> None:
    a = analyse(mesh(4), C)
    assert a.verdict == "ok" and a.summary == "" and not a.suspects and not a.rules
    assert set(a.scores.values()) == {0.0}
    assert analyse([], C, nodes=["x"]).verdict == "no-data"


@pytest.mark.parametrize("n", [4, 8, 20])
def test_one_faulty_node_is_named_first(n: int) -> None:
    victim = names(n)[n // 2]
    a = analyse(mesh(n, inbound(victim)), C)
    assert a.verdict == "suspects"
    assert [s.node for s in a.suspects] == [victim]
    assert a.ranking()[0] == (victim, 1.0)
    assert victim in a.summary and "inbound" in a.summary
    assert not a.unexplained


def test_node_down_both_directions() -> None:
    a = analyse(mesh(5, down("node-2")), C)
    assert [s.node for s in a.suspects] == ["node-2"] and a.suspects[0].direction == "both"


@pytest.mark.parametrize("fault", [inbound, down])
def test_two_faulty_nodes(fault: Any) -> None:
    a = analyse(mesh(6, fault("node-2", "node-5")), C)
    assert a.verdict == "suspects", a.summary
    assert {s.node for s in a.suspects} == {"node-2", "node-5"}
    assert not a.unexplained
    assert "2 suspects" in a.summary


def test_two_faulty_nodes_of_four_are_not_cluster_wide() -> None:
    """Half the paths fail, but the paths between the two others are clean."""
    a = analyse(mesh(4, inbound("node-1", "node-3")), C)
    assert a.verdict == "suspects" and {s.node for s in a.suspects} == {"node-1", "node-3"}


def test_everything_failing_is_cluster_wide() -> None:
    a = analyse(mesh(5, lambda *_: True), C)
    assert a.verdict == "cluster-wide" and not a.suspects
    assert a.summary.startswith("cluster-wide: 40 of 40")
    assert set(a.scores.values()) == {0.0}  # lift 1: no node is associated with failing


@pytest.mark.parametrize("seed", range(5))
def test_most_paths_failing_at_random_is_cluster_wide(seed: int) -> None:
    a = analyse(mesh(6, random_fails(0.75, seed)), C)
    assert a.verdict == "cluster-wide", a.summary
    assert not a.suspects


def test_one_failing_path_blames_no_node() -> None:
    a = analyse(mesh(4, lambda s, d, _p: (s, d) == ("node-1", "node-2")), C)
    assert a.verdict == "isolated" and not a.suspects
    assert "node-1->node-2" in a.summary
    assert len(a.unexplained) == 2


def test_faulty_node_plus_noise_names_the_node_and_lists_the_rest() -> None:
    def fails(s: str, d: str, p: str) -> bool:
        return d == "node-4" or (s, d, p) == ("node-1", "node-2", "udp")

    a = analyse(mesh(6, fails), C)
    assert [s.node for s in a.suspects] == ["node-4"]
    assert [(o.source, o.destination) for o in a.unexplained] == [("node-1", "node-2")]


def test_thresholds_are_settings() -> None:
    outcomes = mesh(4, inbound("node-4"))
    assert analyse(outcomes, Criteria(min_failing_paths=7)).verdict == "isolated"
    assert analyse(outcomes, Criteria(min_peers=4)).verdict == "isolated"
    # With max one suspect, a two-node fault on 4 nodes leaves the other half unexplained.
    two = mesh(4, inbound("node-1", "node-3"))
    a = analyse(two, Criteria(max_suspects=1))
    assert len(a.suspects) == 1 and a.unexplained


def test_json_shape() -> None:
    a = analyse(mesh(4, inbound("node-2")), C).to_json()
    assert a["verdict"] == "suspects"
    assert a["suspects"][0]["node"] == "node-2"
    assert a["ranking"][0] == {"node": "node-2", "score": 1.0}
    assert {"antecedent", "consequent", "support", "confidence", "lift", "count"} <= set(
        a["rules"][0]
    )
    assert a["rules"][0]["confidence"] == 1.0  # ranked by confidence, then lift
    assert len(a["failing_paths"]) == 6 and a["failing_paths"][0]["reasons"]


# --------------------------------------------------------------------------- incremental judging


@settings(max_examples=60, deadline=None)
@given(
    runs=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c"]),  # source
                st.sampled_from(["b", "c", "d"]),  # destination
                st.sampled_from(["tcp", "udp"]),
                st.integers(0, 3),  # which test of the path (start time)
                st.sampled_from([1e9, 0.3e9, None]),  # bandwidth; None: a refused test
                st.sampled_from([0.0, 0.2]),  # UDP loss
            ),
            max_size=12,
        ),
        min_size=1,
        max_size=8,
    ),
    hot=st.sets(st.sampled_from([("a", "b"), ("b", "c"), ("c", "d")])),
)
def test_path_judge_equals_judge_all(runs: list[list[Any]], hot: set[tuple[str, str]]) -> None:
    """Run after run, the incremental judge gives judge_all's outcomes (eBPF reasons included)."""
    reference, incremental = Baselines(3), Baselines(3)
    judge_ = PathJudge(C, incremental)
    rates = {pair: 50.0 for pair in hot}
    started = 0.0
    for run in runs:
        started += 10
        by_node: dict[str, dict[tuple[str, str], TestResult]] = {}
        for src, dst, proto, nth, bw, loss in run:
            if src == dst:
                continue
            kw: dict[str, Any] = {"source": src, "destination": dst, "started_at": started + nth}
            if bw is None:
                kw.update(result="refused", received_bits_per_second=None)
            else:
                kw["received_bits_per_second"] = bw
            r = udp(loss, **kw) if proto == "udp" else tcp(**kw)
            by_node.setdefault(src, {})[(dst, proto)] = r  # latest per path, like a report
        latest = {n: tuple(by_node[n].values()) for n in sorted(by_node)}
        expected = judge_all([r for rs in latest.values() for r in rs], C, reference, rates)
        for node, results in latest.items():
            judge_.update(node, results)
        judge_.keep_only(latest)
        assert judge_.assemble(latest, rates)[0] == expected
        assert incremental._hist == reference._hist
