"""Reports carry the node's topology labels and link speed; the one parser checks them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.state import AgentState
from netmesh.wire import Member, WireError, parse_report


def body(**extra: Any) -> dict[str, Any]:
    state = AgentState(
        me=Member(name="node-1", address="10.0.0.1"),
        http_port=9101,
        labels=(("rack", "r1"), ("zone", "a")),
        link_speed=10**10,
    )
    return {**json.loads(json.dumps(state.report(1_700_000_000.0).to_json())), **extra}


def test_labels_and_link_speed_round_trip() -> None:
    obj = body()
    assert obj["labels"] == {"rack": "r1", "zone": "a"}
    assert obj["link_speed_bits_per_second"] == 10**10
    report = parse_report(obj)
    assert report.labels == (("rack", "r1"), ("zone", "a"))
    assert report.link_speed_bits_per_second == 10**10


def test_older_agents_without_them() -> None:
    obj = body()
    del obj["labels"], obj["link_speed_bits_per_second"]
    report = parse_report(obj)
    assert report.labels == () and report.link_speed_bits_per_second is None
    assert parse_report(body(link_speed_bits_per_second=None)).link_speed_bits_per_second is None


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"labels": ["rack=r1"]}, "labels: expected an object, got list"),
        ({"labels": {"rack": 1}}, "labels.rack: expected a string, got int"),
        ({"labels": {"rack": "r 1"}}, "labels: label rack='r 1': value must be"),
        ({"labels": {"": "x"}}, "labels: label key ''"),
        ({"labels": {f"k{i}": "v" for i in range(17)}}, "labels: 17 labels, at most 16"),
        ({"link_speed_bits_per_second": 0}, "link_speed_bits_per_second: 0 is outside"),
        ({"link_speed_bits_per_second": "10G"}, "expected an integer, got str"),
    ],
)
def test_bad_topology_is_refused_with_the_reason(extra: dict[str, Any], needle: str) -> None:
    with pytest.raises(WireError) as err:
        parse_report(body(**extra))
    assert needle in str(err.value)
