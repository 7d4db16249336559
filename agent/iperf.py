"""Turn iperf3's ``--json`` output into a TestResult (pure functions, no I/O).

Fields used (iperf3 3.12):

- TCP: ``end.sum_sent.bits_per_second`` / ``retransmits``,
  ``end.sum_received.bits_per_second``, per-stream
  ``end.streams[].sender.{min,mean,max}_rtt`` (microseconds, from tcp_info).
- UDP: ``end.sum_sent.bits_per_second``, ``end.sum_received`` for the
  receiver's view (bits_per_second, jitter_ms, lost_packets, packets);
  older releases only have ``end.sum``.
- Errors: a top-level ``"error"`` string; iperf3 still prints JSON then.

The runner (``agent/runner.py``) decides timeouts; this module only reads text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from netmesh.wire import TestResult, Transport

_ERROR_CLASSES: tuple[tuple[str, str], ...] = (
    ("server is busy", "busy"),
    ("connection refused", "refused"),
    ("network is unreachable", "unreachable"),
    ("no route to host", "unreachable"),
    ("host is unreachable", "unreachable"),
    ("name or service not known", "unreachable"),
    ("connection timed out", "timeout"),
    ("interrupt - the client has terminated", "timeout"),
)


def classify_error(message: str) -> str:
    """Map an iperf3 error message to a result name (see ``netmesh.wire.RESULTS``)."""
    lower = message.lower()
    for needle, result in _ERROR_CLASSES:
        if needle in lower:
            return result
    return "error"


@dataclass(frozen=True, kw_only=True)
class TestId:
    """Which test a result belongs to."""

    __test__ = False  # not a pytest test class

    source: str
    destination: str
    protocol: Transport
    started_at: float


def failed(test: TestId, *, result: str, message: str, duration: float) -> TestResult:
    return TestResult(
        source=test.source,
        destination=test.destination,
        protocol=test.protocol,
        result=result,
        message=message[:512],
        started_at=test.started_at,
        duration_seconds=max(0.0, duration),
    )


def parse_result(text: str, test: TestId, *, duration: float) -> TestResult:
    """Parse the complete stdout of ``iperf3 -c … --json``; never raises."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        snippet = " ".join(text.split())[:120]
        return failed(
            test,
            result="garbage",
            message=f"iperf3 output is not JSON: {snippet!r}",
            duration=duration,
        )
    if not isinstance(doc, dict):
        return failed(
            test, result="garbage", message="iperf3 JSON is not an object", duration=duration
        )
    error = doc.get("error")
    if isinstance(error, str) and error:
        return failed(test, result=classify_error(error), message=error, duration=duration)
    try:
        end = _obj(doc, "end")
        measured = _tcp(end) if test.protocol == "tcp" else _udp(end)
    except (KeyError, TypeError, ValueError) as exc:
        return failed(
            test, result="garbage", message=f"iperf3 JSON lacks results: {exc}", duration=duration
        )
    return TestResult(
        source=test.source,
        destination=test.destination,
        protocol=test.protocol,
        result="ok",
        started_at=test.started_at,
        duration_seconds=max(0.0, duration),
        **measured,
    )


def _obj(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent[key]
    if not isinstance(value, dict):
        raise TypeError(f"{key} is not an object")
    return value


def _num(parent: dict[str, Any], key: str) -> float:
    value = parent[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key} is not a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{key} is not a finite non-negative number")
    return number


def _tcp(end: dict[str, Any]) -> dict[str, Any]:
    sent = _obj(end, "sum_sent")
    received = _obj(end, "sum_received")
    rtts: list[tuple[float, float, float]] = []
    streams = end.get("streams") or []
    for stream in streams if isinstance(streams, list) else []:
        sender = stream.get("sender") if isinstance(stream, dict) else None
        if isinstance(sender, dict) and "mean_rtt" in sender:
            rtts.append(
                (_num(sender, "min_rtt"), _num(sender, "mean_rtt"), _num(sender, "max_rtt"))
            )
    rtt: dict[str, float | None] = {
        "rtt_min_seconds": None,
        "rtt_mean_seconds": None,
        "rtt_max_seconds": None,
    }
    if rtts:
        us = 1e-6
        rtt = {
            "rtt_min_seconds": min(r[0] for r in rtts) * us,
            "rtt_mean_seconds": sum(r[1] for r in rtts) / len(rtts) * us,
            "rtt_max_seconds": max(r[2] for r in rtts) * us,
        }
    return {
        "sent_bits_per_second": _num(sent, "bits_per_second"),
        "received_bits_per_second": _num(received, "bits_per_second"),
        "retransmits": int(_num(sent, "retransmits")) if "retransmits" in sent else None,
        **rtt,
    }


def _udp(end: dict[str, Any]) -> dict[str, Any]:
    if "sum_received" in end:
        received = _obj(end, "sum_received")
        sent = _obj(end, "sum_sent") if "sum_sent" in end else received
    else:  # iperf3 before 3.10 reports one "sum" with the receiver's counts
        received = sent = _obj(end, "sum")
    # The receiver counts gaps in sequence numbers (iperf3's own loss). It
    # stops counting when the test ends, so under load the last datagrams can
    # sit unread in its socket buffer: a short tail missing against the
    # sender's count is not loss. A path that died (nothing, or less than half
    # of what was sent, arrived) only shows against the sender's count.
    seen = int(_num(received, "packets"))
    gaps = int(_num(received, "lost_packets"))
    arrived = max(0, seen - gaps)
    offered = int(_num(sent, "packets")) if "packets" in sent else seen
    total = offered if offered > 2 * seen else seen
    lost = max(gaps, total - arrived) if total > seen else gaps
    return {
        "sent_bits_per_second": _num(sent, "bits_per_second"),
        "received_bits_per_second": _num(received, "bits_per_second"),
        "jitter_seconds": _num(received, "jitter_ms") / 1000.0,
        "lost_packets": lost,
        "packets": total,
        "loss_ratio": lost / total if total > 0 else 0.0,
    }
