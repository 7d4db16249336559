"""The light report's RTT histogram: bucketing, and the parser refusing what breaks it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from netmesh.jsonreader import WireError
from netmesh.lightreport import (
    RTT_BUCKETS,
    bucket_index,
    cumulative,
    parse_light,
    parse_light_path,
)
from tests.collector.reports import light_path, light_status


def as_json(obj: Any) -> Any:
    """A dataclass as the collector receives it (through JSON: tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def path_json(**kw: Any) -> dict[str, Any]:
    obj = as_json(light_path("b"))
    obj.update(kw)
    return obj


def test_buckets_are_increasing_seconds_from_50us_to_1s() -> None:
    assert list(RTT_BUCKETS) == sorted(set(RTT_BUCKETS))
    assert RTT_BUCKETS[0] == 50e-6 and RTT_BUCKETS[-1] == 1.0
    assert len(RTT_BUCKETS) == 10


@pytest.mark.parametrize(
    ("rtt", "index"),
    [
        (0.0, 0),
        (10e-6, 0),
        (50e-6, 0),  # le: the bound itself is in the bucket
        (50.001e-6, 1),
        (120e-6, 2),
        (0.003, 6),
        (0.05, 8),
        (1.0, 9),
        (1.5, 10),  # only +Inf
    ],
)
def test_bucket_index_is_the_first_bound_at_or_above(rtt: float, index: int) -> None:
    assert bucket_index(rtt) == index


def test_cumulative_counts_of_the_finite_bounds() -> None:
    per_bucket = [1, 0, 2, 0, 0, 0, 0, 0, 0, 3, 4]  # the last: above 1 s
    assert cumulative(per_bucket) == (1, 1, 3, 3, 3, 3, 3, 3, 3, 6)


def test_a_histogram_round_trips_and_an_older_agent_has_none() -> None:
    lp = light_path("b")
    assert parse_light_path(as_json(lp), "p") == lp
    old = path_json()
    for key in ("rtt_bucket_counts", "rtt_count", "rtt_sum_seconds"):
        del old[key]
    parsed = parse_light_path(old, "p")
    assert parsed.rtt_bucket_counts is None and parsed.rtt_count == 0
    whole = as_json(light_status(lp))
    assert parse_light(whole, "a") == light_status(lp)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rtt_bucket_counts": [1, 2, 3]}, "3 buckets, the contract has 10"),
        ({"rtt_bucket_counts": list(range(11))}, "11 entries, at most 10"),
        ({"rtt_bucket_counts": [0, 5, 4, 5, 5, 5, 5, 5, 5, 5]}, r"\[2\]: 4 is below"),
        ({"rtt_bucket_counts": [0, 1, 2, 3, 4, 5, 6, 7, 8, 2000]}, "above rtt_count 1000"),
        ({"rtt_bucket_counts": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9.5]}, r"\[9\]: expected an integer"),
        ({"rtt_bucket_counts": [True, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, r"\[0\]: expected an integer"),
        ({"rtt_bucket_counts": [-1, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, r"\[0\]: expected an integer"),
        ({"rtt_bucket_counts": "0,1"}, "expected a list"),
        ({"rtt_count": -1}, "rtt_count: -1 is outside"),
        ({"rtt_count": None}, "rtt_count: expected an integer"),
        ({"rtt_sum_seconds": -0.5}, "rtt_sum_seconds: must be a finite non-negative"),
        ({"rtt_sum_seconds": float("nan")}, "rtt_sum_seconds: must be a finite non-negative"),
    ],
)
def test_a_broken_histogram_is_refused_with_its_path(change: dict[str, Any], message: str) -> None:
    with pytest.raises(WireError, match=message) as info:
        parse_light_path(path_json(**change), "light.paths[0]")
    assert str(info.value).startswith("light.paths[0].rtt_")


def test_a_lone_surrogate_in_a_nested_string_is_refused_where_it_is_read() -> None:
    """Checked where strings are read (no walk over the whole report first)."""
    with pytest.raises(WireError, match=r"light.paths\[0\].destination: not valid Unicode"):
        parse_light_path(path_json(destination="b\ud800"), "light.paths[0]")
    assert parse_light_path(path_json(destination="bé-ü"), "p").destination == "bé-ü"
