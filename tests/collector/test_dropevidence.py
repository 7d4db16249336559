"""Kernel drop reasons as RCA evidence: rates, the significant ones, the verdict carrying them."""

from __future__ import annotations

from collector.dropevidence import DropEvidence, describe, drop_totals, significant
from collector.judging import Criteria
from collector.live import LiveRca
from netmesh.dropreport import DropReason, DropStatus
from tests.collector.reports import report

NODES = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3", "d": "10.0.0.4"}


def status(**counts: int) -> DropStatus:
    return DropStatus(
        mode="tracepoint",
        up=1,
        reasons=tuple(DropReason(reason=r, count=n) for r, n in counts.items()),
    )


def test_significant_reasons_per_node_highest_first() -> None:
    totals = drop_totals({"a": status(NETFILTER_DROP=5), "b": None})
    assert totals == {("a", "NETFILTER_DROP"): 5.0}
    rates = {("c", "NETFILTER_DROP"): 240.0, ("c", "NO_SOCKET"): 2.0, ("c", "TCP_CSUM"): 0.5}
    got = significant(rates, threshold=1.0)
    assert got == {"c": (DropEvidence("NETFILTER_DROP", 240.0), DropEvidence("NO_SOCKET", 2.0))}
    assert describe(got) == "c: NETFILTER_DROP 240.0/s, NO_SOCKET 2.0/s"
    assert significant(rates, threshold=0) == {}  # off


def test_live_rca_attaches_the_suspects_drop_reasons() -> None:
    live = LiveRca(Criteria(drops_per_second=1.0))
    results = {
        name: report(name, ip, tuple(n for n in NODES if n != name), failing=("c",)).results
        for name, ip in NODES.items()
    }
    flows: dict[str, tuple[()]] = {name: () for name in NODES}
    # a rate needs two observations of the counter (the first one of a reason is its start)
    quiet = {**{n: status() for n in NODES}, "c": status(NETFILTER_DROP=0, NO_SOCKET=0)}
    for _ in live.steps(results, flows, lambda _ip: None, now=100.0, drops=quiet):
        pass
    storm = {**quiet, "c": status(NETFILTER_DROP=3000, NO_SOCKET=10)}
    for _ in live.steps(results, flows, lambda _ip: None, now=110.0, drops=storm):
        pass
    analysis = live.latest
    assert analysis is not None
    [suspect] = analysis.suspects
    assert suspect.node == "c"
    assert suspect.drops == (DropEvidence("NETFILTER_DROP", 300.0), DropEvidence("NO_SOCKET", 1.0))
    assert analysis.dominant_drop("c") == DropEvidence("NETFILTER_DROP", 300.0)
    assert analysis.dominant_drop("a") is None
    assert "kernel drops NETFILTER_DROP 300.0/s" in analysis.summary
    body = analysis.to_json()
    assert body["drops"] == {
        "c": [
            {"reason": "NETFILTER_DROP", "per_second": 300.0},
            {"reason": "NO_SOCKET", "per_second": 1.0},
        ]
    }
    assert body["suspects"][0]["drops"][0]["reason"] == "NETFILTER_DROP"
