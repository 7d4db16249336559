"""The rejection token bucket: burst, refill, Retry-After, bounded memory."""

from __future__ import annotations

from collector.ratelimit import RejectLimiter, retry_after_header
from tests.collector.conftest import FakeClock


def test_burst_then_refill() -> None:
    clock = FakeClock(0.0)
    limiter = RejectLimiter(rate=0.5, burst=3, max_sources=10, clock=clock)
    assert limiter.retry_after("a") == 0
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.charge("a")
    assert limiter.retry_after("a") == 2.0  # one token at 0.5/s
    assert limiter.retry_after("b") == 0, "another source is not held up"
    clock.advance(1.0)
    assert limiter.retry_after("a") == 1.0
    clock.advance(1.0)
    assert limiter.retry_after("a") == 0
    clock.advance(100.0)  # refills up to the burst, not beyond
    for _ in range(3):
        limiter.charge("a")
    assert limiter.retry_after("a") > 0


def test_memory_is_bounded() -> None:
    limiter = RejectLimiter(rate=1.0, burst=1, max_sources=100, clock=FakeClock(0.0))
    for i in range(10_000):
        limiter.charge(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
    assert limiter.retry_after("10.0.39.15") > 0  # the latest are remembered
    assert limiter.retry_after("10.0.0.0") == 0  # the oldest forgotten


def test_retry_after_header() -> None:
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(2.01) == "3"
