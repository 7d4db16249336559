"""collector/judging.py: the criteria (loss, retransmissions, baseline, eBPF), the paths'
baselines, and the incremental judge against judge_all."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.judging import Baselines, Criteria, PathJudge, judge, judge_all, retransmit_ratio
from netmesh.wire import TestResult

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


def test_ebpf_rate_applies_to_the_tcp_transaction_of_the_pair() -> None:
    out = judge_all([tcp(), udp(0.0)], C, Baselines(), {("a", "b"): 99.0})
    assert {o.protocol: o.failed for o in out} == {"tcp": True, "udp": False}


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
