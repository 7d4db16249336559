"""A per-source token bucket for rejected reports: a flood of bad requests gets 429.

Each source IP has a bucket of ``burst`` tokens refilled at ``rate`` per
second. A rejected report (401/403) takes one token; a source with an empty
bucket gets 429 with Retry-After instead of the work of verifying its
requests. Only rejections are charged, so an agent that authenticates never
drains its bucket. Memory is bounded: at most ``max_sources`` buckets, the
least recently charged forgotten first (a forgotten source starts full again).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RejectLimiter:
    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_sources: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_sources = max_sources
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, bucket: _Bucket, now: float) -> float:
        return min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)

    def retry_after(self, source: str) -> float:
        """0 while ``source`` may be rejected again, else seconds until it may."""
        bucket = self._buckets.get(source)
        if bucket is None:
            return 0.0
        tokens = self._tokens(bucket, self.clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def charge(self, source: str) -> None:
        """``source`` was rejected once: take a token from its bucket."""
        now = self.clock()
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = _Bucket(self.burst, now)
        else:
            self._buckets.move_to_end(source)
        bucket.tokens = max(0.0, self._tokens(bucket, now) - 1.0)
        bucket.updated = now
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)


def retry_after_header(seconds: float) -> str:
    """Whole seconds for the Retry-After header, at least 1."""
    return str(max(1, math.ceil(seconds)))
