"""Topology labels: one parser for the agent's setting, one check for the wire."""

from __future__ import annotations

import pytest

from netmesh.labels import MAX_LABELS, check_labels, label, parse_labels


def test_parse_sorts_and_strips() -> None:
    parsed = parse_labels(" zone=a , rack=r-1,,topology.example.com/tor=t1.b ")
    assert parsed == (("rack", "r-1"), ("topology.example.com/tor", "t1.b"), ("zone", "a"))
    assert label(parsed, "zone") == "a" and label(parsed, "nope") == ""
    assert label({"rack": "r"}, "rack") == "r"
    assert parse_labels("") == ()
    assert parse_labels("zone=") == (("zone", ""),)  # an empty value, as Kubernetes allows


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rack", "is not key=value"),
        ("rack=r/1", "value must be"),
        ("rack=" + "x" * 64, "value must be"),
        ("Bad_Prefix.com/rack=r", "label key"),
        ("rack=a,rack=b", "given twice"),
        (",".join(f"k{i}=v" for i in range(MAX_LABELS + 1)), f"at most {MAX_LABELS}"),
    ],
)
def test_bad_labels(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_labels(text)


def test_check_labels_takes_pairs() -> None:
    assert check_labels([("zone", "b"), ("rack", "a")]) == (("rack", "a"), ("zone", "b"))
