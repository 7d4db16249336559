"""The report's drop section: round trip and the parser's refusals."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from netmesh.dropreport import DropFlow, DropReason, DropStatus
from netmesh.wire import WireError, parse_report
from tests.collector.reports import report


def with_drops(drops: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(report("a", "10.0.0.1", ("b",)).to_json()))
    body["drops"] = json.loads(json.dumps(drops))
    return body


STATUS = DropStatus(
    mode="tracepoint",
    up=1,
    map_entries=2,
    map_capacity=4096,
    unspecified=9,
    reasons=(DropReason(reason="NETFILTER_DROP", count=5),),
    flows=(
        DropFlow(reason="NETFILTER_DROP", remote="10.0.0.2", protocol="udp", count=5),
        DropFlow(reason="other", remote="other", protocol="other", count=1),
    ),
)


def test_round_trip_and_absent_from_older_agents() -> None:
    assert parse_report(with_drops(dataclasses.asdict(STATUS))).drops == STATUS
    body = with_drops(None)
    del body["drops"]
    assert parse_report(body).drops is None


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"reasons": [{"reason": "netfilter drop", "count": 1}]}, "not a drop reason"),
        ({"reasons": [{"reason": "A", "count": 1}, {"reason": "A", "count": 2}]}, "second"),
        ({"flows": [{"reason": "A", "remote": "x", "protocol": "udp", "count": 1}]}, "not an IP"),
        ({"flows": [{"reason": "A", "remote": "10.0.0.1", "protocol": "gre", "count": 1}]}, "gre"),
        ({"up": 2}, "up"),
    ],
)
def test_refusals(change: dict[str, Any], needle: str) -> None:
    body = with_drops({**dataclasses.asdict(STATUS), **change})
    with pytest.raises(WireError, match=needle):
        parse_report(body)
