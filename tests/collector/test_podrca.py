"""Pod blame over time (rates from cumulative counters) and its place in /api/v1/rca."""

from __future__ import annotations

from dataclasses import replace

from collector.judging import Criteria
from collector.podblame import PodCriteria
from collector.podrca import PodRca
from collector.verdict import Analysis, with_findings
from collector.views import pod_rules
from netmesh.wire import RetransmitFlow

IPS = {f"10.244.{i}.2": (f"lab/node-{i}-pod-1", f"node-{i}") for i in range(1, 5)}


def _flows(count: int) -> dict[str, list[RetransmitFlow]]:
    """Every other pod retransmits ``count`` (cumulative) into node-2's pod; one stray flow
    between healthy pods so they are all active."""
    out = {
        f"node-{i}": [
            RetransmitFlow(local=f"10.244.{i}.2", remote="10.244.2.2", port=8080, count=count)
        ]
        for i in (1, 3, 4)
    }
    out["node-1"].append(
        RetransmitFlow(local="10.244.1.2", remote="10.244.3.2", port=8080, count=1)
    )
    return out


def test_rates_from_counters_name_the_pod_then_forget_it() -> None:
    rca = PodRca(PodCriteria(), window=10)
    rca.run(_flows(0), IPS.get, now=0.0)
    assert rca.findings == ()  # one sample: no rate yet
    rca.run(_flows(40), IPS.get, now=4.0)  # 10/s into the pod
    assert [(f.kind, f.pod, f.node) for f in rca.findings] == [
        ("pod", "lab/node-2-pod-1", "node-2")
    ]
    assert (rca.transactions, rca.failing) == (12, 3)
    # Its node named by the host analysis: the node keeps the blame.
    rca.run(_flows(80), IPS.get, now=8.0, host_nodes={"node-2"})
    assert rca.findings == ()
    # The counters stop growing: once the window has passed, nothing is named.
    for t in (12.0, 16.0, 20.0, 24.0):
        rca.run(_flows(80), IPS.get, now=t)
    assert rca.findings == ()


def test_off_when_the_threshold_is_zero() -> None:
    rca = PodRca(PodCriteria(retransmits_per_second=0))
    assert not rca.enabled
    rca.run(_flows(10), IPS.get, now=0.0)
    assert rca.transactions == 0


def test_pod_findings_join_the_verdict() -> None:
    rca = PodRca(PodCriteria(), window=10)
    rca.run(_flows(0), IPS.get, now=0.0)
    rca.run(_flows(40), IPS.get, now=4.0)
    clean = Analysis(
        verdict="ok",
        summary="",
        transactions=24,
        failing=(),
        suspects=(),
        scores={},
        rules=(),
        unexplained=(),
        criteria=Criteria(),
    )
    body = with_findings(clean, rca.as_findings()).to_json()
    assert body["verdict"] == "suspects"
    assert body["summary"].startswith("finding: pod lab/node-2-pod-1 (inbound): 3 of its 3")
    (finding,) = body["findings"]
    assert finding["kind"] == "pod" and finding["subject"] == "lab/node-2-pod-1"
    assert finding["rule"] == "{dst=lab/node-2-pod-1} -> {FAIL}"
    assert finding["confidence"] == 1.0 and finding["lift"] == 4.0
    assert finding["evidence"][0]["destination"] == "lab/node-2-pod-1"
    rules = pod_rules(rca)
    assert rules["pod_rules"][0]["rule"] == "{dst=lab/node-2-pod-1} -> {FAIL}"
    assert rules["pod_transactions"] == 12 and rules["pod_failing"] == 3
    named = replace(clean, verdict="suspects", summary="suspect: node-3 (...)")
    both = with_findings(named, rca.as_findings())
    assert both.verdict == "suspects" and "; pod lab/node-2-pod-1 (inbound)" in both.summary
    assert with_findings(clean, []) is clean
