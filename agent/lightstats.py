"""Light-tier bookkeeping per peer: probes sent, echoes back, and a window's statistics (pure).

``PeerTrack`` records every probe this node sent to one peer (its sequence
number and send time) and every echo that came back (arrival time and the
responder's counters). ``window(now)`` summarises the probes sent in
``[now - grace - window, now - grace]``: ``grace`` leaves out probes whose
echo may still be on its way, so they are not counted as lost.

Loss by direction, from two echoes a < b of the window (see agent/lightwire.py):

- forward: probes sent between them ``b.seq - a.seq``; the responder received
  ``b.received - a.received`` of them;
- return: the responder replied ``b.replied - a.replied`` echoes between them;
  the echoes of probes ``a.seq+1 .. b.seq`` that arrived here.

With fewer than two echoes in the window the direction cannot be told (a
path that loses everything: loss 1, forward and return unknown). The RTT
histogram (``Series.rtt_buckets``) is not per window: it counts every RTT
since the track began, as a Prometheus histogram does. No clocks
are read here: times are passed in (seconds, monotonic).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from netmesh.lightreport import RTT_BUCKETS, bucket_index, cumulative
from netmesh.wire import LightPath


@dataclass(slots=True)
class Probe:
    seq: int
    sent_at: float
    echo_at: float | None = None
    measured: float | None = None  # the RTT from kernel timestamps, when the echo had them
    received: int = 0  # responder's count of probes received, from the echo
    replied: int = 0  # responder's count of echoes replied, from the echo
    duplicates: int = 0
    reordered: bool = False

    @property
    def rtt(self) -> float | None:
        if self.echo_at is None:
            return None
        return self.measured if self.measured is not None else self.echo_at - self.sent_at


@dataclass(slots=True)
class Series:
    """Probes of one kind (small or MTU-sized) to one peer, oldest first."""

    keep_seconds: float
    probes: deque[Probe] = field(default_factory=deque)
    by_seq: dict[int, Probe] = field(default_factory=dict)
    next_seq: int = 0
    highest_echo: int = -1
    first_echo: int | None = None  # seq of the first probe ever answered
    answered_since: float | None = None  # when that probe was sent
    # every RTT so far, by RTT_BUCKETS bucket (the last: above the last bound)
    rtt_buckets: list[int] = field(default_factory=lambda: [0] * (len(RTT_BUCKETS) + 1))
    rtt_sum: float = 0.0

    def sent(self, at: float) -> int:
        seq = self.next_seq
        self.next_seq += 1
        probe = Probe(seq, at)
        self.probes.append(probe)
        self.by_seq[seq] = probe
        while self.probes and self.probes[0].sent_at < at - self.keep_seconds:
            del self.by_seq[self.probes.popleft().seq]
        return seq

    def echoed(
        self, seq: int, at: float, received: int, replied: int, rtt: float | None = None
    ) -> float | None:
        """Record an echo; its RTT, or None for an unknown or duplicate echo.

        ``rtt`` is the round trip measured from kernel timestamps (the responder's
        turnaround taken off); without it, ``at`` minus the send time."""
        probe = self.by_seq.get(seq)
        if probe is None:
            return None
        if probe.echo_at is not None:
            probe.duplicates += 1
            return None
        probe.echo_at = at
        probe.measured = rtt
        probe.received = received
        probe.replied = replied
        if seq < self.highest_echo:
            probe.reordered = True
        if self.first_echo is None or seq < self.first_echo:
            self.first_echo = seq
            self.answered_since = probe.sent_at
        self.highest_echo = max(self.highest_echo, seq)
        value = probe.rtt
        if value is not None:
            self.rtt_buckets[bucket_index(value)] += 1
            self.rtt_sum += value
        return value

    @property
    def rtt_count(self) -> int:
        return sum(self.rtt_buckets)

    def in_window(self, start: float, end: float) -> list[Probe]:
        """Probes sent in [start, end). Once the peer has answered, probes sent before its
        first answer are left out: they met no responder yet, or one that did not know
        this node as a member yet (agents start and learn members at different times)."""
        first = self.first_echo
        return [
            p for p in self.probes if start <= p.sent_at < end and (first is None or p.seq >= first)
        ]


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of a sorted, non-empty list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _ratio(lost: int, total: int) -> float | None:
    return None if total <= 0 else min(1.0, max(0.0, lost / total))


@dataclass(frozen=True, slots=True)
class Directions:
    forward_sent: int = 0
    forward_received: int = 0
    return_sent: int = 0
    return_received: int = 0
    known: bool = False


def directions(echoed: list[Probe]) -> Directions:
    """Forward and return counts between the first and last echoed probe (by seq)."""
    if len(echoed) < 2:
        return Directions()
    ordered = sorted(echoed, key=lambda p: p.seq)
    a, b = ordered[0], ordered[-1]
    fwd_sent = b.seq - a.seq
    fwd_recv = b.received - a.received
    ret_sent = b.replied - a.replied
    ret_recv = len(ordered) - 1
    if fwd_recv < 0 or ret_sent < 0:  # the responder restarted meanwhile
        return Directions()
    return Directions(
        forward_sent=fwd_sent,
        forward_received=min(fwd_recv, fwd_sent),
        return_sent=ret_sent,
        return_received=min(ret_recv, ret_sent),
        known=True,
    )


def summarise(
    destination: str,
    small: list[Probe],
    mtu: list[Probe],
    *,
    window: float,
    mtu_size: int,
    histogram: Series | None = None,
) -> LightPath | None:
    """One window's statistics for one peer (None when no probe was sent in it)."""
    if not small:
        return None
    echoed = [p for p in small if p.echo_at is not None]
    rtts = sorted(p.rtt for p in echoed if p.rtt is not None)
    by_seq = [p.rtt for p in sorted(echoed, key=lambda p: p.seq) if p.rtt is not None]
    jitter = (
        sum(abs(b - a) for a, b in itertools.pairwise(by_seq)) / (len(by_seq) - 1)
        if len(by_seq) > 1
        else None
    )
    d = directions(echoed)
    hist: dict[str, Any] = {}
    if histogram is not None:
        hist = {
            "rtt_bucket_counts": cumulative(histogram.rtt_buckets),
            "rtt_count": histogram.rtt_count,
            "rtt_sum_seconds": histogram.rtt_sum,
        }
    return LightPath(
        destination=destination,
        window_seconds=window,
        sent=len(small),
        received=len(echoed),
        loss_ratio=_ratio(len(small) - len(echoed), len(small)) or 0.0,
        forward_sent=d.forward_sent,
        forward_received=d.forward_received,
        forward_loss_ratio=_ratio(d.forward_sent - d.forward_received, d.forward_sent)
        if d.known
        else None,
        return_sent=d.return_sent,
        return_received=d.return_received,
        return_loss_ratio=_ratio(d.return_sent - d.return_received, d.return_sent)
        if d.known
        else None,
        rtt_min_seconds=rtts[0] if rtts else None,
        rtt_median_seconds=quantile(rtts, 0.5) if rtts else None,
        rtt_p99_seconds=quantile(rtts, 0.99) if rtts else None,
        rtt_mean_seconds=sum(rtts) / len(rtts) if rtts else None,
        jitter_seconds=jitter,
        duplicates=sum(p.duplicates for p in small),
        reordered=sum(1 for p in small if p.reordered),
        mtu_size=mtu_size,
        mtu_sent=len(mtu),
        mtu_received=sum(1 for p in mtu if p.echo_at is not None),
        **hist,
    )


@dataclass(slots=True)
class PeerTrack:
    """Everything this node sent to one peer and got back, for ``keep`` seconds."""

    destination: str
    window: float
    grace: float
    mtu_window: float = 0.0  # MTU probes are rare: counted over max(window, mtu_window)
    small: Series = field(init=False)
    mtu: Series = field(init=False)

    def __post_init__(self) -> None:
        self.small = Series(self.window + self.grace + 1.0)
        self.mtu = Series(max(self.window, self.mtu_window) + self.grace + 1.0)

    def summary(self, now: float, mtu_size: int) -> LightPath | None:
        end = now - self.grace
        mtu_start = end - max(self.window, self.mtu_window)
        # MTU probes sent before the peer answered any small probe met no responder
        # (or one that did not know this node yet): not evidence of an MTU problem.
        since = self.small.answered_since
        mtu_start = mtu_start if since is None else max(mtu_start, since)
        return summarise(
            self.destination,
            self.small.in_window(end - self.window, end),
            self.mtu.in_window(mtu_start, end),
            window=self.window,
            mtu_size=mtu_size,
            histogram=self.small,
        )
