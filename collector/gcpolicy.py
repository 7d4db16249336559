"""When Python's cyclic garbage collector runs in the collector process.

At 5,000 agents the collector keeps ~10^6 objects that the garbage collector
tracks (every agent's latest results, counters and flows, the RCA's outcomes).
Python runs a full pass over all of them whenever a quarter of them is new —
with reports replacing each other, every few seconds — and a pass holds the
event loop (measured: 110-180 ms), so every report arriving meanwhile waits.

The data is acyclic and freed by reference counting; only short-lived
cycles (exceptions, aiohttp internals) need the collector, and the young
generations catch those. So: automatic collection of the young generations
stays; full passes run on a timer (``gc_full_interval``) instead of whenever
the heap grew, and their duration is exported. Objects alive at start-up
(modules, classes) are frozen out of every pass.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Young generations as Python's defaults; the old one never by itself.
THRESHOLDS = (700, 10, 2**31 - 1)


@dataclass
class FullCollections:
    runs: int = 0
    last_seconds: float = 0.0
    total_seconds: float = 0.0
    collected: int = 0


class GcPolicy:
    """Take over full collections; ``restore`` puts Python's settings back."""

    def __init__(
        self, stats: FullCollections, *, perf: Callable[[], float] = time.perf_counter
    ) -> None:
        self.perf = perf
        self.stats = stats
        self._saved = gc.get_threshold()
        self._active = False

    def apply(self) -> None:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*THRESHOLDS)
        self._active = True

    def full(self) -> None:
        started = self.perf()
        found = gc.collect()
        took = self.perf() - started
        self.stats.runs += 1
        self.stats.last_seconds = took
        self.stats.total_seconds += took
        self.stats.collected += found
        log.debug("full garbage collection: %d objects freed in %.3f s", found, took)

    def restore(self) -> None:
        if self._active:
            gc.set_threshold(*self._saved)
            gc.unfreeze()
            self._active = False

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.full()
