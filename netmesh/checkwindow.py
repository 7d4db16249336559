"""What the DNS and the Service check's statuses share: a window of attempts judged alike.

Each check's status (netmesh/dnsreport.py, netmesh/servicereport.py) is a
frozen dataclass whose window fields are named after what it tries (lookups,
connects); this mixin gives both the same derived views, which the
collector's judge reads (collector/checkjudge.py).
"""

from __future__ import annotations

from typing import ClassVar


class WindowedStatus:
    """Derived views over ``window_total``, ``window_failures`` and ``window_results``."""

    FAILED: ClassVar[tuple[str, ...]]  # the results that count as failures
    up: int
    latency_median_seconds: float | None
    window_seconds: float
    window_failures: int
    window_results: tuple[tuple[str, int], ...]

    @property
    def window_total(self) -> int:
        raise NotImplementedError

    @property
    def failure_ratio(self) -> float | None:
        total = self.window_total
        return self.window_failures / total if total else None

    def dominant_failure(self) -> str:
        """The most common failing result in the window ('' when none failed)."""
        failing = [(n, r) for r, n in self.window_results if r in self.FAILED and n > 0]
        return max(failing)[1] if failing else ""
