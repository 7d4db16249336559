"""Cumulative counters to rates over a window: eBPF retransmissions (node or pod pairs),
kernel drops. Apart from collector/live.py so that node and pod blame share it."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping


class RetransmitRates:
    """eBPF retransmissions per second by (source node, destination node) over a window.

    Fed the agents' cumulative per-flow counters; a counter that goes down
    (agent restart) starts the pair's history again.
    """

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self._hist: dict[tuple[str, str], deque[tuple[float, float]]] = defaultdict(deque)

    def observe(self, at: float, totals: Mapping[tuple[str, str], float]) -> None:
        for pair, count in totals.items():
            hist = self._hist[pair]
            if hist and at <= hist[-1][0]:
                continue
            if hist and count < hist[-1][1]:
                hist.clear()
            hist.append((at, count))

    def rates(self, now: float) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for pair in list(self._hist):
            hist = self._hist[pair]
            while len(hist) > 1 and hist[1][0] <= now - self.window:
                hist.popleft()
            if hist and hist[-1][0] < now - 2 * self.window:
                del self._hist[pair]  # the pair has gone
                continue
            if len(hist) >= 2 and hist[-1][0] > hist[0][0]:
                out[pair] = (hist[-1][1] - hist[0][1]) / (hist[-1][0] - hist[0][0])
        return out
