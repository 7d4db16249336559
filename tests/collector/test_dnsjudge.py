"""DNS findings from the nodes' DNS checks: failing, wrong answers, slow, cluster-wide."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collector.dnsjudge import CLUSTER_WIDE, FAILING, SLOW, WRONG, DnsCriteria, judge_dns
from netmesh.dnsreport import DnsStatus
from netmesh.wire import WireError, parse_report
from tests.collector.reports import dns_status, report

CRITERIA = DnsCriteria()


def healthy(n: int) -> dict[str, DnsStatus]:
    return {f"node-{i}": dns_status() for i in range(1, n + 1)}


def kinds(statuses: dict[str, DnsStatus]) -> list[tuple[str, str]]:
    return [(f.node, f.kind) for f in judge_dns(statuses, CRITERIA)]


def test_a_healthy_mesh_has_no_finding() -> None:
    assert kinds(healthy(5)) == []


def test_one_node_whose_lookups_time_out_is_named_with_its_evidence() -> None:
    statuses = {**healthy(4), "node-3": dns_status(failures=6)}
    findings = judge_dns(statuses, CRITERIA)
    assert [(f.node, f.kind) for f in findings] == [("node-3", FAILING)]
    assert "node-3" in findings[0].summary and "timeout" in findings[0].summary
    assert findings[0].evidence["failures"] == 6
    assert findings[0].to_json()["layer"] == "dns"


@pytest.mark.parametrize(
    ("lookups", "failures", "named"), [(6, 2, False), (6, 3, True), (2, 2, False)]
)
def test_the_failure_ratio_and_the_minimum_lookups_decide(
    lookups: int, failures: int, named: bool
) -> None:
    statuses = {**healthy(4), "node-2": dns_status(lookups=lookups, failures=failures)}
    assert kinds(statuses) == ([("node-2", FAILING)] if named else [])


def test_most_nodes_failing_is_one_cluster_wide_finding() -> None:
    statuses = {n: dns_status(failures=6, failure="servfail") for n in healthy(3)}
    statuses["node-4"] = dns_status()
    findings = judge_dns(statuses, CRITERIA)
    assert [(f.node, f.kind) for f in findings] == [(CLUSTER_WIDE, FAILING)]
    assert findings[0].to_json()["scope"] == "cluster-wide"


def test_half_the_nodes_failing_are_named_one_by_one() -> None:
    statuses = {**healthy(4), "node-1": dns_status(failures=6), "node-2": dns_status(failures=6)}
    assert kinds(statuses) == [("node-1", FAILING), ("node-2", FAILING)]


def test_a_node_with_another_answer_than_the_majority_is_wrong() -> None:
    statuses = {**healthy(4), "node-4": dns_status(answers=("10.66.6.6",))}
    findings = judge_dns(statuses, CRITERIA)
    assert [(f.node, f.kind) for f in findings] == [("node-4", WRONG)]
    assert "10.66.6.6" in findings[0].summary and "10.96.0.1" in findings[0].summary


def test_no_majority_no_wrong_answer() -> None:
    two = {"a": dns_status(answers=("1.1.1.1",)), "b": dns_status(answers=("2.2.2.2",))}
    assert kinds(two) == []
    split = {
        "a": dns_status(answers=("1.1.1.1",)),
        "b": dns_status(answers=("1.1.1.1",)),
        "c": dns_status(answers=("2.2.2.2",)),
        "d": dns_status(answers=("2.2.2.2",)),
    }
    assert kinds(split) == []


def test_a_slow_node_is_named_only_well_above_the_others_and_the_floor() -> None:
    assert kinds({**healthy(4), "node-1": dns_status(median=0.5)}) == [("node-1", SLOW)]
    assert kinds({**healthy(4), "node-1": dns_status(median=0.05)}) == []  # under the floor
    fast = {n: dns_status(median=0.3) for n in healthy(4)}
    assert kinds(fast) == []  # all slow alike: nothing to compare with


def test_a_check_that_is_not_running_is_not_judged() -> None:
    statuses = healthy(3)
    statuses["node-4"] = DnsStatus(up=0, reason="not running", name="x.test")
    assert kinds(statuses) == []


def test_permuting_node_names_only_renames_findings() -> None:
    statuses = {
        **healthy(5),
        "node-2": dns_status(failures=6),
        "node-4": dns_status(answers=("9.9.9.9",)),
    }
    renamed = {f"n{6 - int(k[-1])}": v for k, v in statuses.items()}
    assert sorted(kinds(statuses)) == sorted(
        (f"node-{6 - int(n[1:])}", k) for n, k in kinds(renamed)
    )


def _with_dns(dns: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(report("a", "10.0.0.1", ("b",)).to_json()))
    body["dns"] = dns
    return body


@pytest.mark.parametrize(
    ("dns", "message"),
    [
        ("yes", "dns: expected an object"),
        ({"reason": ""}, "dns.up: missing"),
        ({"up": 2, "reason": "", "name": "x"}, "dns.up"),
        ({"up": 1, "reason": "", "name": "x", "lookups": {"maybe": 1}}, "unknown result"),
        ({"up": 1, "reason": "", "name": "x", "lookups": [1]}, "dns.lookups"),
        ({"up": 1, "reason": "", "name": "x", "window_lookups": 1, "window_failures": 2}, "more"),
        ({"up": 1, "reason": "", "name": "x", "answers": ["1" * 100]}, "dns.answers[0]"),
        ({"up": 1, "reason": "", "name": "x", "latency_median_seconds": -1}, "latency"),
    ],
)
def test_malformed_dns_parts_are_refused_with_the_place_named(dns: Any, message: str) -> None:
    with pytest.raises(WireError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_report(_with_dns(dns))


def test_reports_of_older_agents_have_no_dns() -> None:
    body = _with_dns(None)
    del body["dns"]
    assert parse_report(body).dns is None
