"""collector/live.py: eBPF retransmissions by node pair, and a live run in short steps."""

from __future__ import annotations

import itertools

from collector.judging import Baselines, Criteria, judge_all
from collector.live import LiveRca, RetransmitRates, add_retransmits
from collector.verdict import analyse
from tests.collector.reports import flow, report

C = Criteria()
NODES = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3", "d": "10.0.0.4"}


def test_add_retransmits_by_sender_and_resolved_receiver() -> None:
    by_ip = {ip: name for name, ip in NODES.items()}
    totals: dict[tuple[str, str], float] = {}
    flows = (
        flow("10.0.0.1", "10.0.0.2", count=5),
        flow("10.0.0.1", "10.0.0.2", port=5202, count=2),  # same pair: summed
        flow("10.0.0.1", "10.0.0.3", count=1),
        flow("other", "10.0.0.3", count=100),  # the overflow bucket
        flow("10.0.0.1", "10.9.9.9", count=100),  # unknown remote
        flow("10.0.0.1", "10.0.0.1", count=100),  # to itself
    )
    add_retransmits(totals, "a", flows, by_ip.get)
    assert totals == {("a", "b"): 7.0, ("a", "c"): 1.0}


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


def test_steps_yield_within_the_budget_and_give_the_batch_analysis() -> None:
    """A fake clock that ticks 10 ms per reading, over the 5 ms budget: a step after every
    node's flows and results, one after the mesh's judgement (collector/meshjudge.py), one
    before the mining; the analysis appears whole after the
    last step and equals analyse over judge_all."""
    ticks = itertools.count()
    live = LiveRca(C, perf=lambda: next(ticks) / 100)
    results = {
        name: report(name, ip, tuple(n for n in NODES if n != name), failing=("c",)).results
        for name, ip in NODES.items()
    }
    flows = {name: (flow(ip, NODES["d"], count=0),) for name, ip in NODES.items()}
    by_ip = {ip: name for name, ip in NODES.items()}
    steps = 0
    for _ in live.steps(results, flows, by_ip.get, now=100.0, nodes={"e"}, budget=0.005):
        steps += 1
        assert live.latest is None
    assert steps == len(flows) + len(results) + 2
    assert live.runs == 1 and live.computed_at == 100.0 and live.seconds > 0
    assert live.latest is not None
    outcomes = judge_all([r for rs in results.values() for r in rs], C, Baselines())
    assert live.latest == analyse(outcomes, C, {*NODES, "e"})
    assert [s.node for s in live.latest.suspects] == ["c"]
