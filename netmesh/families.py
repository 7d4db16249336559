"""Metric families that both the agent and the collector expose (one source of names).

Path metrics carry the labels ``source_node, destination_node, protocol``.
The agent renders them for its own node with prometheus_client; the
collector renders every agent's with its own fast exposition code. Both take
names, help texts and values from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netmesh.wire import TestResult

PATH_LABELS = ("source_node", "destination_node", "protocol")


@dataclass(frozen=True)
class PathFamily:
    name: str
    help: str
    value: Callable[[TestResult], float | None]


def _opt(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _bytes(bits: float | None) -> float | None:
    """Prometheus base unit: bytes (promtool rejects bits)."""
    return None if bits is None else bits / 8.0


# Gauges describing the latest test of a path (None = not exposed for this result).
PATH_GAUGES: tuple[PathFamily, ...] = (
    PathFamily(
        "netmesh_path_success",
        "1 if the latest test of the path succeeded, else 0.",
        lambda r: 1.0 if r.ok else 0.0,
    ),
    PathFamily(
        "netmesh_path_bandwidth_bytes_per_second",
        "Throughput measured at the receiver in the latest test (bytes/s; x8 for bits).",
        lambda r: _bytes(r.received_bits_per_second),
    ),
    PathFamily(
        "netmesh_path_sent_bytes_per_second",
        "Rate the sender achieved in the latest test (bytes/s).",
        lambda r: _bytes(r.sent_bits_per_second),
    ),
    PathFamily(
        "netmesh_path_retransmits",
        "TCP retransmissions iperf3 counted during the latest test.",
        lambda r: _opt(r.retransmits),
    ),
    PathFamily(
        "netmesh_path_rtt_seconds",
        "Mean smoothed RTT (tcp_info) in the latest TCP test.",
        lambda r: _opt(r.rtt_mean_seconds),
    ),
    PathFamily(
        "netmesh_path_rtt_min_seconds",
        "Minimum RTT in the latest TCP test.",
        lambda r: _opt(r.rtt_min_seconds),
    ),
    PathFamily(
        "netmesh_path_rtt_max_seconds",
        "Maximum RTT in the latest TCP test.",
        lambda r: _opt(r.rtt_max_seconds),
    ),
    PathFamily(
        "netmesh_path_jitter_seconds",
        "UDP jitter in the latest test.",
        lambda r: _opt(r.jitter_seconds),
    ),
    PathFamily(
        "netmesh_path_loss_ratio",
        "UDP packets lost / sent in the latest test (0-1).",
        lambda r: _opt(r.loss_ratio),
    ),
    PathFamily(
        "netmesh_path_last_test_timestamp_seconds",
        "Unix time the latest test started.",
        lambda r: r.started_at,
    ),
    PathFamily(
        "netmesh_path_test_duration_seconds",
        "Wall time the latest test took.",
        lambda r: r.duration_seconds,
    ),
)

TESTS_TOTAL = "netmesh_path_tests"  # counter; exposed as netmesh_path_tests_total
TESTS_TOTAL_HELP = (
    "Tests run on the path, by result (ok, busy, refused, unreachable, timeout, ...)."
)
