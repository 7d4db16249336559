"""A check that runs one attempt at a steady rate and summarises a sliding window of results.

The DNS check (agent/dns.py) and the Service check (agent/service.py) are
both this: every ``interval`` seconds one attempt bounded by a timeout, its
result one of a fixed set (a metric label), lifetime counters by result, and
over the last ``window`` seconds the attempts, their failures and the latency
of the successful ones. Clock and sleep are injected (tests run no timers).
"""

from __future__ import annotations

import collections
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

OK = "ok"


@dataclass(frozen=True, kw_only=True)
class WindowSummary:
    """The window's part of a check's status (the fields both checks report alike)."""

    counts: tuple[tuple[str, int], ...]  # lifetime, every result
    window_seconds: float
    window_total: int
    window_failures: int
    window_results: tuple[tuple[str, int], ...]  # in the window, non-zero only
    latency_median_seconds: float | None
    latency_p99_seconds: float | None


class ResultWindow:
    """Lifetime counters by result and the results of the last ``window`` seconds.

    ``failures``: the results that count as failed; results in neither
    ``failures`` nor OK (e.g. "could not even start") count in the lifetime
    counters but not in the window's total.
    """

    def __init__(
        self,
        results: tuple[str, ...],
        failures: tuple[str, ...],
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.results = results
        self.failures = failures
        self.window = window
        self.clock = clock
        self.counts: collections.Counter[str] = collections.Counter()
        # (when, result, latency seconds) of the attempts in the window
        self.recent: collections.deque[tuple[float, str, float]] = collections.deque()

    def record(self, result: str, when: float, latency: float) -> str:
        """Count one attempt; an unknown result counts as "error". Returns the result counted."""
        if result not in self.results:
            result = "error"
        self.counts[result] += 1
        self.recent.append((when, result, latency))
        return result

    def summary(self) -> WindowSummary:
        now = self.clock()
        while self.recent and self.recent[0][0] < now - self.window:
            self.recent.popleft()
        window = collections.Counter(result for _, result, _ in self.recent)
        latencies = sorted(lat for _, result, lat in self.recent if result == OK)
        return WindowSummary(
            counts=tuple((r, self.counts[r]) for r in self.results),
            window_seconds=self.window,
            window_total=sum(n for r, n in window.items() if r == OK or r in self.failures),
            window_failures=sum(window[r] for r in self.failures),
            window_results=tuple((r, window[r]) for r in self.results if window[r]),
            latency_median_seconds=statistics.median(latencies) if latencies else None,
            latency_p99_seconds=_p99(latencies),
        )


def _p99(ordered: list[float]) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class PeriodicCheck:
    """A check's run loop: ``once()`` every ``interval`` seconds (start to start),
    ``iterations`` times (None: forever); ``running`` meanwhile."""

    interval: float
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    running: bool = False

    async def once(self) -> object:
        raise NotImplementedError

    async def run(self, iterations: int | None = None) -> None:
        self.running = True
        try:
            done = 0
            while iterations is None or done < iterations:
                started = self.clock()
                await self.once()
                done += 1
                await self.sleep(max(0.0, started + self.interval - self.clock()))
        finally:
            self.running = False

    def liveness(self) -> tuple[int, str]:
        """(up, reason) for the status."""
        return (1, "") if self.running else (0, "not running")
