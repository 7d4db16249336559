"""agent/iperf.py on real iperf3 3.12 output captured into tests/fixtures/."""

from __future__ import annotations

import json

import pytest

from agent.iperf import TestId, classify_error, parse_result
from tests.helpers import fixture_text

TCP = TestId(source="a", destination="b", protocol="tcp", started_at=100.0)
UDP = TestId(source="a", destination="b", protocol="udp", started_at=100.0)


def test_tcp_fixture() -> None:
    r = parse_result(fixture_text("iperf3_tcp.json"), TCP, duration=1.2)
    doc = json.loads(fixture_text("iperf3_tcp.json"))["end"]
    assert r.ok and r.result == "ok"
    assert r.sent_bits_per_second == doc["sum_sent"]["bits_per_second"]
    assert r.received_bits_per_second == doc["sum_received"]["bits_per_second"]
    assert r.retransmits == doc["sum_sent"]["retransmits"] == 7
    sender = doc["streams"][0]["sender"]
    assert r.rtt_mean_seconds == pytest.approx(sender["mean_rtt"] * 1e-6)
    assert r.rtt_min_seconds == pytest.approx(sender["min_rtt"] * 1e-6)
    assert r.rtt_max_seconds == pytest.approx(sender["max_rtt"] * 1e-6)
    assert r.jitter_seconds is None and r.loss_ratio is None
    assert r.duration_seconds == 1.2 and r.started_at == 100.0


def test_udp_fixture() -> None:
    r = parse_result(fixture_text("iperf3_udp.json"), UDP, duration=1.0)
    received = json.loads(fixture_text("iperf3_udp.json"))["end"]["sum_received"]
    assert r.ok
    assert r.received_bits_per_second == received["bits_per_second"]
    assert r.jitter_seconds == pytest.approx(received["jitter_ms"] / 1000)
    assert r.packets == 382 and r.lost_packets == 0 and r.loss_ratio == 0.0
    assert r.retransmits is None and r.rtt_mean_seconds is None


def _udp_doc(sent_packets: int, seen: int, gaps: int) -> str:
    doc = json.loads(fixture_text("iperf3_udp.json"))
    doc["end"]["sum_sent"]["packets"] = sent_packets
    doc["end"]["sum_received"]["packets"] = seen
    doc["end"]["sum_received"]["lost_packets"] = gaps
    return json.dumps(doc)


def test_udp_loss_counts_gaps_and_dead_paths() -> None:
    r = parse_result(_udp_doc(sent_packets=100, seen=100, gaps=5), UDP, duration=1)
    assert (r.lost_packets, r.packets, r.loss_ratio) == (5, 100, 0.05)
    # A short tail the receiver did not read before the test ended is not loss
    # (iperf3 agrees: lost_percent counts gaps only).
    r = parse_result(_udp_doc(sent_packets=100, seen=90, gaps=2), UDP, duration=1)
    assert (r.lost_packets, r.packets) == (2, 90)
    # A path that died mid-test: most of what was sent never arrived.
    r = parse_result(_udp_doc(sent_packets=100, seen=30, gaps=0), UDP, duration=1)
    assert (r.lost_packets, r.packets) == (70, 100)
    assert r.loss_ratio == pytest.approx(0.70)
    # A dead path: nothing arrived at all.
    r = parse_result(_udp_doc(sent_packets=50, seen=0, gaps=0), UDP, duration=1)
    assert r.loss_ratio == 1.0


@pytest.mark.parametrize(
    ("fixture", "result", "needle"),
    [
        ("iperf3_busy.json", "busy", "busy"),
        ("iperf3_refused.json", "refused", "refused"),
        ("iperf3_unreachable.json", "unreachable", "unreachable"),
        ("iperf3_timeout.json", "timeout", "interrupt"),
    ],
)
def test_error_fixtures(fixture: str, result: str, needle: str) -> None:
    r = parse_result(fixture_text(fixture), TCP, duration=0.3)
    assert not r.ok
    assert r.result == result
    assert needle in r.message
    assert r.sent_bits_per_second is None and r.retransmits is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "iperf3: error - something",
        "[1, 2]",
        '{"start": {}}',
        '{"end": {"sum_sent": 3}}',
        '{"end": {"sum_sent": {"bits_per_second": "fast"}, "sum_received": {}}}',
        '{"end": {"sum_sent": {"bits_per_second": -1}, "sum_received": {"bits_per_second": 1}}}',
    ],
)
def test_garbage_never_raises(text: str) -> None:
    r = parse_result(text, TCP, duration=0.0)
    assert r.result == "garbage" and r.message


def test_classify_unknown_error() -> None:
    assert classify_error("unable to send control message: Bad file descriptor") == "error"
    assert classify_error("unable to connect to server: No route to host") == "unreachable"
