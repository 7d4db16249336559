"""The light tier's part of the report: one window per peer, and the tier's health.

Plain frozen dataclasses and their strict parser (netmesh/wire.py embeds them
in the report as ``light``); nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netmesh.jsonreader import JsonReader, WireError

MAX_LIGHT_PATHS = 4096
MAX_MESSAGE = 512

# Upper bounds (seconds, ``le``) of the RTT histogram's buckets, +Inf implied: a
# 1-2-5 ladder from 50 us (a same-rack round trip through two kernels) to 10 ms
# (cross-zone, or a queue building up), then 100 ms and 1 s for the pathological
# (echoes later than the prober's grace, 1 s by default, count as lost instead).
# Eleven buckets with +Inf, plus _sum and _count: 13 series per path. Fixed in
# the contract, so the wire carries only the counts; a report with another
# number of buckets is refused.
RTT_BUCKETS: tuple[float, ...] = (
    50e-6,
    100e-6,
    200e-6,
    500e-6,
    1e-3,
    2e-3,
    5e-3,
    10e-3,
    100e-3,
    1.0,
)
MAX_RTT_COUNT = 2**53  # counts stay exact in JSON numbers and floats


def bucket_index(rtt: float) -> int:
    """The first bucket whose bound is ``>= rtt`` (``len(RTT_BUCKETS)`` = only +Inf)."""
    for i, bound in enumerate(RTT_BUCKETS):
        if rtt <= bound:
            return i
    return len(RTT_BUCKETS)


def cumulative(per_bucket: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """Per-bucket counts (``len(RTT_BUCKETS) + 1``, the last is +Inf only) → Prometheus'
    cumulative ``le`` counts of the finite bounds (the +Inf one is their total)."""
    out: list[int] = []
    total = 0
    for count in per_bucket[: len(RTT_BUCKETS)]:
        total += count
        out.append(total)
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class LightPath:
    """The light tier's statistics of one path (this node → ``destination``) over a window.

    Counts are probes in the window; ratios are 0-1; None where the window
    cannot tell (no echo at all: forward and return unknown).
    """

    destination: str
    window_seconds: float
    sent: int
    received: int  # echoes back
    loss_ratio: float  # round trip: 1 - received / sent
    forward_sent: int = 0
    forward_received: int = 0
    forward_loss_ratio: float | None = None
    return_sent: int = 0
    return_received: int = 0
    return_loss_ratio: float | None = None
    rtt_min_seconds: float | None = None
    rtt_median_seconds: float | None = None
    rtt_p99_seconds: float | None = None
    rtt_mean_seconds: float | None = None
    jitter_seconds: float | None = None
    duplicates: int = 0
    reordered: int = 0
    mtu_size: int = 0  # IP packet size of the don't-fragment probe (0 = off)
    # MTU probes over the last few MTU intervals (they are rare), not just the window
    mtu_sent: int = 0
    mtu_received: int = 0
    # The RTT histogram: unlike the fields above, cumulative since this node began
    # probing the peer (Prometheus histogram semantics: counters, reset when the
    # agent restarts or the peer leaves and comes back). ``rtt_bucket_counts[i]``
    # = RTTs <= RTT_BUCKETS[i] (non-decreasing); ``rtt_count`` = all of them (+Inf).
    # None from agents without the histogram.
    rtt_bucket_counts: tuple[int, ...] | None = None
    rtt_count: int = 0
    rtt_sum_seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class LightStatus:
    """The light tier's health on the agent, and its paths."""

    up: int = 0
    reason: str = ""
    port: int = 0
    peers: int = 0
    probes_sent: int = 0
    echoes_received: int = 0
    dropped_strangers: int = 0
    dropped_malformed: int = 0
    send_errors: int = 0
    paths: tuple[LightPath, ...] = ()


def _rtt_histogram(r: JsonReader) -> tuple[tuple[int, ...] | None, int, float]:
    """The histogram fields, checked: the contract's bucket count, non-decreasing
    counts, none above ``rtt_count``; absent (an older agent) = None."""
    if r.get("rtt_bucket_counts", None) is None:
        return None, 0, 0.0
    raw = r.items("rtt_bucket_counts", limit=len(RTT_BUCKETS))
    where = r.child("rtt_bucket_counts")
    if len(raw) != len(RTT_BUCKETS):
        raise WireError(f"{where}: {len(raw)} buckets, the contract has {len(RTT_BUCKETS)}")
    counts: list[int] = []
    for i, c in enumerate(raw):
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= MAX_RTT_COUNT:
            raise WireError(f"{where}[{i}]: expected an integer in [0, {MAX_RTT_COUNT}]")
        if counts and c < counts[-1]:
            raise WireError(f"{where}[{i}]: {c} is below the previous bucket's {counts[-1]}")
        counts.append(c)
    total = r.integer("rtt_count", high=MAX_RTT_COUNT)
    if counts[-1] > total:
        raise WireError(f"{where}: {counts[-1]} RTTs in the buckets, above rtt_count {total}")
    return tuple(counts), total, r.number("rtt_sum_seconds", high=3600.0 * MAX_RTT_COUNT)


def parse_light_path(obj: Any, path: str) -> LightPath:
    r = JsonReader(obj, path)
    buckets, rtt_count, rtt_sum = _rtt_histogram(r)
    return LightPath(
        destination=r.string("destination"),
        window_seconds=r.number("window_seconds", high=86400),
        sent=r.integer("sent"),
        received=r.integer("received"),
        loss_ratio=r.number("loss_ratio", high=1.0),
        forward_sent=r.integer("forward_sent", default=0),
        forward_received=r.integer("forward_received", default=0),
        forward_loss_ratio=r.optional_number("forward_loss_ratio", high=1.0),
        return_sent=r.integer("return_sent", default=0),
        return_received=r.integer("return_received", default=0),
        return_loss_ratio=r.optional_number("return_loss_ratio", high=1.0),
        rtt_min_seconds=r.optional_number("rtt_min_seconds", high=3600),
        rtt_median_seconds=r.optional_number("rtt_median_seconds", high=3600),
        rtt_p99_seconds=r.optional_number("rtt_p99_seconds", high=3600),
        rtt_mean_seconds=r.optional_number("rtt_mean_seconds", high=3600),
        jitter_seconds=r.optional_number("jitter_seconds", high=3600),
        duplicates=r.integer("duplicates", default=0),
        reordered=r.integer("reordered", default=0),
        mtu_size=r.integer("mtu_size", high=65535, default=0),
        mtu_sent=r.integer("mtu_sent", default=0),
        mtu_received=r.integer("mtu_received", default=0),
        rtt_bucket_counts=buckets,
        rtt_count=rtt_count,
        rtt_sum_seconds=rtt_sum,
    )


def parse_light(obj: Any, node: str) -> LightStatus | None:
    if obj is None:
        return None
    r = JsonReader(obj, "light")
    paths = tuple(
        parse_light_path(item, r.child("paths", i))
        for i, item in enumerate(r.items("paths", limit=MAX_LIGHT_PATHS, default=[]))
    )
    seen: set[str] = set()
    for i, lp in enumerate(paths):
        if lp.destination in seen:
            raise WireError(f"light.paths[{i}]: a second path to {lp.destination!r}")
        if lp.destination == node:
            raise WireError(f"light.paths[{i}]: a path from {node!r} to itself")
        seen.add(lp.destination)
    return LightStatus(
        up=r.integer("up", high=1),
        reason=r.string("reason", max_len=MAX_MESSAGE, allow_empty=True),
        port=r.integer("port", high=65535, default=0),
        peers=r.integer("peers", default=0),
        probes_sent=r.integer("probes_sent", default=0),
        echoes_received=r.integer("echoes_received", default=0),
        dropped_strangers=r.integer("dropped_strangers", default=0),
        dropped_malformed=r.integer("dropped_malformed", default=0),
        send_errors=r.integer("send_errors", default=0),
        paths=paths,
    )
