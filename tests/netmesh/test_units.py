"""Bit rates in settings and command lines."""

from __future__ import annotations

import pytest

from netmesh.units import parse_bitrate


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("100M", 100_000_000),
        ("1.5G", 1_500_000_000),
        ("500k", 500_000),
        ("500K", 500_000),
        ("10", 10),
        ("0", 0),
        (" 20 M ", 20_000_000),
        ("200mbit", 200_000_000),
        ("200Mbps", 200_000_000),
        ("1gbit/s", 10**9),
        ("64kb", 64_000),
    ],
)
def test_parse_bitrate(text: str, bps: int) -> None:
    assert parse_bitrate(text) == bps


@pytest.mark.parametrize("text", ["", "fast", "-1M", "1T", "1tbit", "1e6", "M", "1 0M"])
def test_parse_bitrate_names_the_text_and_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="is not a rate like 100M") as err:
        parse_bitrate(text)
    assert repr(text) in str(err.value)


def test_parse_bitrate_minimum() -> None:
    assert parse_bitrate("8k", minimum=8000) == 8000
    with pytest.raises(ValueError, match=r"'7\.9k' is below the minimum of 8000 bit/s"):
        parse_bitrate("7.9k", minimum=8000)
