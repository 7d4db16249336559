"""The Service check's part of the report: how TCP connects to a Service answered over a window.

Each endpoint connects to one Service (in Kubernetes the collector's own
ClusterIP Service, through kube-proxy or whatever implements Services on the
node) at a steady rate (agent/service.py). Plain frozen dataclasses and their
strict parser (netmesh/wire.py embeds them in the report as ``service``);
nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netmesh.checkwindow import WindowedStatus
from netmesh.jsonreader import JsonReader, WireError

MAX_MESSAGE = 512

# What one connect can end in: a bounded set (a label value of a metric family).
# "unresolved": the target's name did not resolve and no earlier address is known, so no
# connect was tried — the DNS layer's failure, not the Service's (not in FAILURES).
OK = "ok"
UNRESOLVED = "unresolved"
RESULTS = (OK, "refused", "timeout", "unreachable", "reset", "error", UNRESOLVED)
FAILURES = tuple(r for r in RESULTS if r not in (OK, UNRESOLVED))


@dataclass(frozen=True, kw_only=True)
class ServiceStatus(WindowedStatus):
    """The Service check of one endpoint: lifetime counters, and the latest window.

    ``connects`` counts every attempt since the agent started, by result (a
    counter); ``window_*`` cover the last ``window_seconds`` (``window_connects``
    the connects tried, so without "unresolved"); ``address`` is the address
    the target resolved to last (a ClusterIP), kept while the name does not
    resolve.
    """

    up: int = 0
    reason: str = ""
    target: str = ""  # host:port as configured
    address: str = ""
    connects: tuple[tuple[str, int], ...] = ()  # (result, count), every result of RESULTS
    window_seconds: float = 0.0
    window_connects: int = 0
    window_failures: int = 0
    window_results: tuple[tuple[str, int], ...] = ()  # (result, count) in the window, non-zero
    latency_median_seconds: float | None = None
    latency_p99_seconds: float | None = None
    last_error: str = ""

    FAILED: ClassVar[tuple[str, ...]] = FAILURES

    @property
    def window_total(self) -> int:
        return self.window_connects


def parse_service(obj: Any) -> ServiceStatus | None:
    if obj is None:
        return None
    r = JsonReader(obj, "service")
    status = ServiceStatus(
        up=r.integer("up", high=1),
        reason=r.string("reason", max_len=MAX_MESSAGE, allow_empty=True),
        target=r.string("target", max_len=260, allow_empty=True),
        address=r.string("address", max_len=64, allow_empty=True),
        connects=r.counts("connects", RESULTS),
        window_seconds=r.number("window_seconds", high=86400, default=0.0),
        window_connects=r.integer("window_connects", default=0),
        window_failures=r.integer("window_failures", default=0),
        window_results=r.counts("window_results", RESULTS),
        latency_median_seconds=r.optional_number("latency_median_seconds", high=3600),
        latency_p99_seconds=r.optional_number("latency_p99_seconds", high=3600),
        last_error=r.string("last_error", max_len=MAX_MESSAGE, allow_empty=True),
    )
    if status.window_failures > status.window_connects:
        raise WireError("service.window_failures: more failures than connects")
    return status


def service_to_json(status: ServiceStatus) -> dict[str, Any]:
    return {
        "up": status.up,
        "reason": status.reason,
        "target": status.target,
        "address": status.address,
        "connects": dict(status.connects),
        "window_seconds": status.window_seconds,
        "window_connects": status.window_connects,
        "window_failures": status.window_failures,
        "window_results": dict(status.window_results),
        "latency_median_seconds": status.latency_median_seconds,
        "latency_p99_seconds": status.latency_p99_seconds,
        "last_error": status.last_error,
    }
