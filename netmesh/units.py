"""Units in settings and command lines: bit rates."""

from __future__ import annotations

import re

# A number, an optional decimal (SI) multiplier and an optional unit:
# 100M, 1.5G, 500k, 200mbit, 200Mbps, 1gbit/s. "bps" is bits, as in iperf3.
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:bit|bps|b)?(?:/s)?\s*$", re.IGNORECASE)
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_bitrate(text: str, *, minimum: int = 0) -> int:
    """``100M``, ``1.5G``, ``500k``, ``200mbit``, ``1gbit/s`` → bits per second.

    Raises ValueError naming the text and an example of what is accepted, or
    the ``minimum`` (bits per second) it falls below.
    """
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a rate like 100M, 1.5G, 200mbit or 500k")
    value = int(float(match.group(1)) * _SCALE[match.group(2).lower()])
    if value < minimum:
        raise ValueError(f"{text!r} is below the minimum of {minimum} bit/s")
    return value
