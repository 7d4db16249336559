"""The DNS check's part of the report: how this node's resolver answered over a window.

Plain frozen dataclasses and their strict parser (netmesh/wire.py embeds them
in the report as ``dns``); nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netmesh.checkwindow import WindowedStatus
from netmesh.jsonreader import JsonReader, WireError

MAX_MESSAGE = 512
MAX_ANSWERS = 32

# What one lookup can end in: a bounded set (a label value of a metric family).
OK = "ok"
RESULTS = (OK, "nxdomain", "servfail", "refused", "no_answer", "timeout", "error")
FAILURES = tuple(r for r in RESULTS if r != OK)


@dataclass(frozen=True, kw_only=True)
class DnsStatus(WindowedStatus):
    """The DNS check of one node: lifetime counters, and the latest window.

    ``lookups`` counts every lookup since the agent started, by result (a
    counter); the ``window_*`` fields cover the last ``window_seconds``;
    ``answers`` is the latest successful answer (sorted addresses), which the
    collector compares with the answer most nodes get.
    """

    up: int = 0
    reason: str = ""
    name: str = ""
    record_type: str = "A"
    servers: tuple[str, ...] = ()
    lookups: tuple[tuple[str, int], ...] = ()  # (result, count), every result of RESULTS
    window_seconds: float = 0.0
    window_lookups: int = 0
    window_failures: int = 0
    window_results: tuple[tuple[str, int], ...] = ()  # (result, count) in the window, non-zero
    latency_median_seconds: float | None = None
    latency_p99_seconds: float | None = None
    answers: tuple[str, ...] = ()
    last_error: str = ""

    FAILED: ClassVar[tuple[str, ...]] = FAILURES

    @property
    def window_total(self) -> int:
        return self.window_lookups


def parse_dns(obj: Any) -> DnsStatus | None:
    if obj is None:
        return None
    r = JsonReader(obj, "dns")
    servers = tuple(
        JsonReader({"s": item}, r.child("servers", i)).string("s")
        for i, item in enumerate(r.items("servers", limit=8, default=[]))
    )
    answers = tuple(
        JsonReader({"a": item}, r.child("answers", i)).string("a", max_len=64)
        for i, item in enumerate(r.items("answers", limit=MAX_ANSWERS, default=[]))
    )
    status = DnsStatus(
        up=r.integer("up", high=1),
        reason=r.string("reason", max_len=MAX_MESSAGE, allow_empty=True),
        name=r.string("name", allow_empty=True),
        record_type=r.string("record_type", max_len=8, allow_empty=True)
        if "record_type" in r.obj
        else "A",
        servers=servers,
        lookups=r.counts("lookups", RESULTS),
        window_seconds=r.number("window_seconds", high=86400, default=0.0),
        window_lookups=r.integer("window_lookups", default=0),
        window_failures=r.integer("window_failures", default=0),
        window_results=r.counts("window_results", RESULTS),
        latency_median_seconds=r.optional_number("latency_median_seconds", high=3600),
        latency_p99_seconds=r.optional_number("latency_p99_seconds", high=3600),
        answers=answers,
        last_error=r.string("last_error", max_len=MAX_MESSAGE, allow_empty=True)
        if "last_error" in r.obj
        else "",
    )
    if status.window_failures > status.window_lookups:
        raise WireError("dns.window_failures: more failures than lookups")
    return status


def dns_to_json(status: DnsStatus) -> dict[str, Any]:
    return {
        "up": status.up,
        "reason": status.reason,
        "name": status.name,
        "record_type": status.record_type,
        "servers": list(status.servers),
        "lookups": dict(status.lookups),
        "window_seconds": status.window_seconds,
        "window_lookups": status.window_lookups,
        "window_failures": status.window_failures,
        "window_results": dict(status.window_results),
        "latency_median_seconds": status.latency_median_seconds,
        "latency_p99_seconds": status.latency_p99_seconds,
        "answers": list(status.answers),
        "last_error": status.last_error,
    }
