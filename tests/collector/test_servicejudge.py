"""Judging the Service checks (collector/servicejudge.py), and how the host agents' and the pod
endpoints' findings of a check merge per node (collector/checkjudge.py)."""

from __future__ import annotations

import dataclasses

from collector.checkjudge import CLUSTER_WIDE, FAILING, SLOW
from collector.dnsjudge import DnsCriteria, judge_dns_networks
from collector.servicejudge import ServiceCriteria, judge_service, judge_service_networks
from netmesh.servicereport import ServiceStatus
from tests.collector.reports import dns_status, service_status

CRITERIA = ServiceCriteria()


def found(statuses: dict[str, ServiceStatus]) -> list[tuple[str, str]]:
    return [(f.node, f.kind) for f in judge_service(statuses, CRITERIA)]


def healthy(n: int = 4) -> dict[str, ServiceStatus]:
    return {f"node-{i}": service_status() for i in range(1, n + 1)}


def test_healthy_nodes_give_no_finding() -> None:
    assert found(healthy()) == []


def test_a_node_whose_connects_fail_is_named_with_its_evidence() -> None:
    statuses = {**healthy(), "node-3": service_status(failures=5, failure="timeout")}
    [finding] = judge_service(statuses, CRITERIA)
    assert (finding.node, finding.kind, finding.layer) == ("node-3", FAILING, "service")
    assert finding.networks == ("host",)
    assert "5 of 6 connects to netmesh-collector" in finding.summary
    assert "mostly timeout" in finding.summary
    assert finding.evidence["address"] == "10.96.12.34"
    assert finding.evidence["failure_ratio"] == 5 / 6
    assert finding.to_json()["scope"] == "node"


def test_below_the_ratio_or_too_few_connects_is_no_finding() -> None:
    assert found({**healthy(), "node-2": service_status(failures=2)}) == []  # 2 of 6 < 0.5
    assert found({**healthy(), "node-2": service_status(connects=2, failures=2)}) == []


def test_refused_counts_as_failing_too() -> None:
    statuses = {**healthy(), "node-1": service_status(failures=6, failure="refused")}
    assert found(statuses) == [("node-1", FAILING)]


def test_most_nodes_failing_is_the_service_not_every_node() -> None:
    statuses = {n: service_status(failures=6) for n in ("a", "b", "c")} | {"d": service_status()}
    [finding] = judge_service(statuses, CRITERIA)
    assert finding.node == CLUSTER_WIDE and finding.kind == FAILING
    assert finding.evidence["nodes"] == ["a", "b", "c"]
    assert finding.to_json()["scope"] == "cluster-wide"
    assert "cluster-wide: connects fail on 3 of 4 nodes" in finding.summary


def test_a_slow_node_is_named() -> None:
    statuses = {**healthy(), "node-4": service_status(median=0.4)}
    assert found(statuses) == [("node-4", SLOW)]
    # fast everywhere but one at 3x: not slow (factor 5)
    assert found({**healthy(), "node-4": service_status(median=0.003)}) == []


def test_a_stopped_check_is_not_judged() -> None:
    stopped = dataclasses.replace(service_status(failures=6), up=0)
    assert found({**healthy(), "node-2": stopped}) == []


def test_host_and_pod_findings_of_a_node_merge() -> None:
    host = {**healthy(3), "node-2": service_status(failures=6)}
    pod = {**healthy(3), "node-2": service_status(failures=6)}
    [finding] = judge_service_networks(host, pod, CRITERIA)
    assert finding.node == "node-2" and finding.networks == ("host", "pod")
    assert finding.summary.startswith("Service on node-2:")
    assert finding.summary.endswith("the pod network's too")
    assert finding.evidence["pod_network"]["failures"] == 6


def test_a_finding_of_the_pod_endpoints_only_says_so() -> None:
    host = healthy(3)
    pod = {**healthy(3), "node-1": service_status(failures=6)}
    [finding] = judge_service_networks(host, pod, CRITERIA)
    assert finding.node == "node-1" and finding.networks == ("pod",)
    assert finding.summary.startswith("Service from the pod network on node-1:")
    assert finding.to_json()["networks"] == ["pod"]


def test_findings_of_different_nodes_stay_apart() -> None:
    host = {**healthy(3), "node-1": service_status(failures=6)}
    pod = {**healthy(3), "node-3": service_status(failures=6)}
    got = [(f.node, f.networks) for f in judge_service_networks(host, pod, CRITERIA)]
    assert got == [("node-1", ("host",)), ("node-3", ("pod",))]


def test_dns_of_the_pod_network_is_judged_too() -> None:
    host = {n: dns_status() for n in ("a", "b", "c")}
    pod = {**host, "b": dns_status(failures=6)}
    [finding] = judge_dns_networks(host, pod, DnsCriteria())
    assert (finding.node, finding.layer, finding.networks) == ("b", "dns", ("pod",))
    assert finding.summary.startswith("DNS from the pod network on b:")
    assert judge_dns_networks(host, host, DnsCriteria()) == []


def unresolved(attempts: int = 6) -> ServiceStatus:
    return dataclasses.replace(
        service_status(connects=0),
        connects=(("unresolved", attempts),),
        window_results=(("unresolved", attempts),),
        address="",
        latency_median_seconds=None,
        last_error="resolving svc.ns.svc: Name or service not known",
    )


def test_a_target_that_never_resolves_is_a_finding_not_silence() -> None:
    [finding] = judge_service({**healthy(), "node-2": unresolved()}, CRITERIA)
    assert (finding.node, finding.kind, finding.layer) == ("node-2", "unresolved", "service")
    assert "has never resolved there" in finding.summary
    assert "Name or service not known" in finding.summary
    assert found({**healthy(), "node-2": unresolved(attempts=2)}) == []  # too few yet
    every = {n: unresolved() for n in ("a", "b", "c")}
    [finding] = judge_service(every, CRITERIA)
    assert finding.node == CLUSTER_WIDE and finding.kind == "unresolved"
    assert "is --service-target right?" in finding.summary
