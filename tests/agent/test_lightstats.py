"""Light-tier windows: loss by direction from the responder's counters, RTT, jitter, MTU."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent import lightwire as lw
from agent.lightstats import PeerTrack, Series, directions, quantile


def simulate(
    track: PeerTrack, n: int, forward_lost: set[int], return_lost: set[int], rtt: float = 0.001
) -> None:
    """n probes one per 0.1 s; the responder counts what reaches it and echoes every one."""
    received = replied = 0
    for i in range(n):
        at = i * 0.1
        seq = track.small.sent(at)
        if seq in forward_lost:
            continue
        received += 1
        replied += 1
        if seq in return_lost:
            continue
        track.small.echoed(seq, at + rtt, received, replied)


def test_clean_path_has_no_loss_either_way() -> None:
    track = PeerTrack("b", window=5.0, grace=1.0)
    simulate(track, 100, set(), set())
    p = track.summary(now=10.0, mtu_size=0)
    assert p is not None
    assert p.sent == 50 and p.received == 50 and p.loss_ratio == 0
    assert p.forward_loss_ratio == 0 and p.return_loss_ratio == 0
    assert p.rtt_median_seconds == pytest.approx(0.001)
    assert p.jitter_seconds == pytest.approx(0.0)


def test_forward_and_return_loss_are_told_apart() -> None:
    fwd = PeerTrack("b", window=5.0, grace=1.0)
    simulate(fwd, 100, forward_lost={45, 47, 49, 51, 53}, return_lost=set())
    p = fwd.summary(now=10.0, mtu_size=0)
    assert p is not None and p.forward_loss_ratio is not None and p.return_loss_ratio is not None
    assert p.forward_loss_ratio > 0.05 and p.return_loss_ratio == 0
    ret = PeerTrack("b", window=5.0, grace=1.0)
    simulate(ret, 100, forward_lost=set(), return_lost={45, 47, 49, 51, 53})
    q = ret.summary(now=10.0, mtu_size=0)
    assert q is not None and q.forward_loss_ratio is not None and q.return_loss_ratio is not None
    assert q.forward_loss_ratio == 0 and q.return_loss_ratio > 0.05
    assert p.loss_ratio == q.loss_ratio  # the round trip cannot tell them apart


@given(
    st.sets(st.integers(1, 98), max_size=30),
    st.sets(st.integers(1, 98), max_size=30),
)
def test_directions_count_exactly_what_was_lost(fwd: set[int], ret: set[int]) -> None:
    """Between the first and last echoed probe, the counts are exact."""
    track = PeerTrack("b", window=100.0, grace=0.0)
    simulate(track, 100, fwd, ret - fwd)
    echoed = [p for p in track.small.probes if p.echo_at is not None]
    d = directions(echoed)
    assert d.known
    assert d.forward_sent == 99 and d.forward_received == 99 - len(fwd)
    assert d.return_sent == 99 - len(fwd) and d.return_received == 99 - len(fwd) - len(ret - fwd)


def test_in_flight_probes_are_not_lost_and_nothing_back_means_unknown_direction() -> None:
    track = PeerTrack("b", window=5.0, grace=1.0)
    for i in range(60):
        track.small.sent(i * 0.1)  # nothing ever comes back
    p = track.summary(now=6.05, mtu_size=0)
    assert p is not None
    assert p.sent == 50 and p.loss_ratio == 1.0
    assert p.forward_loss_ratio is None and p.return_loss_ratio is None


def test_duplicates_reordering_and_strange_echoes() -> None:
    s = Series(keep_seconds=60)
    for i in range(4):
        s.sent(float(i))
    assert s.echoed(1, 1.1, 2, 2) == pytest.approx(0.1)
    assert s.echoed(0, 1.2, 2, 2) == pytest.approx(1.2)  # after seq 1: reordered
    assert s.echoed(0, 1.3, 2, 2) is None  # a duplicate
    assert s.echoed(99, 1.3, 3, 3) is None  # never sent
    assert s.by_seq[0].reordered and s.by_seq[0].duplicates == 1


def test_mtu_probes_that_vanish_show_in_the_window() -> None:
    track = PeerTrack("b", window=5.0, grace=1.0)
    simulate(track, 100, set(), set())
    for i in range(5):
        track.mtu.sent(5.0 + i * 0.5)  # none answered
    p = track.summary(now=10.0, mtu_size=1500)
    assert p is not None and p.mtu_size == 1500 and p.mtu_sent == 5 and p.mtu_received == 0
    assert p.loss_ratio == 0


def test_old_probes_are_forgotten() -> None:
    s = Series(keep_seconds=2.0)
    for i in range(100):
        s.sent(i * 0.1)
    assert len(s.probes) == len(s.by_seq) <= 21


def test_quantile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (
        quantile(values, 0.5) == 50 and quantile(values, 0.99) == 99 and quantile([3.0], 0.99) == 3
    )


def test_wire_roundtrip_and_refusals() -> None:
    probe = lw.Packet(lw.PROBE, 7, 3, 123)
    data = lw.encode(probe, 200)
    assert len(data) == 200 and lw.decode(data) == probe
    echo = lw.echo_of(probe, 3, 4)
    assert lw.decode(lw.encode(echo)) == lw.Packet(lw.ECHO, 7, 3, 123, 3, 4)
    for bad, why in (
        (b"short", "shorter"),
        (b"XXXX" + data[4:], "magic"),
        (data[:4] + bytes([9]) + data[5:], "version"),
        (data[:5] + bytes([77]) + data[6:], "kind"),
    ):
        with pytest.raises(lw.Malformed, match=why):
            lw.decode(bad)
    assert lw.payload_size(1500) == 1472 and lw.payload_size(1500, ipv6=True) == 1452


def test_probes_before_the_peers_first_answer_are_not_loss() -> None:
    """A peer that starts (or learns of this node) later: its silence before is no loss."""
    track = PeerTrack("b", window=5.0, grace=1.0)
    for i in range(20):
        track.small.sent(i * 0.1)  # nobody answers yet
    for received, i in enumerate(range(20, 41), start=1):
        seq = track.small.sent(i * 0.1)
        track.small.echoed(seq, i * 0.1 + 0.001, received, received)
    p = track.summary(now=4.05, mtu_size=0)  # the window 0 .. 3.05 s: 20 silent, 11 answered
    assert p is not None and p.sent == 11 and p.loss_ratio == 0
    dead = PeerTrack("c", window=5.0, grace=1.0)
    for i in range(100):
        dead.small.sent(i * 0.1)
    q = dead.summary(now=10.0, mtu_size=0)
    assert q is not None and q.loss_ratio == 1.0, "a peer that never answered is all loss"


def test_mtu_probes_are_counted_over_their_own_longer_window() -> None:
    track = PeerTrack("b", window=5.0, grace=1.0, mtu_window=30.0)
    simulate(track, 400, set(), set())  # small probes up to t = 40 s
    for t in (5.0, 15.0, 25.0, 35.0):  # the MTU window is 9 .. 39 s
        track.mtu.sent(t)  # one every 10 s, none answered
    p = track.summary(now=40.0, mtu_size=1500)
    assert p is not None and p.sent == 50 and p.mtu_sent == 3 and p.mtu_received == 0


def test_mtu_probes_before_the_peer_answered_anything_are_not_evidence() -> None:
    track = PeerTrack("b", window=5.0, grace=1.0, mtu_window=30.0)
    track.mtu.sent(0.5)  # the peer is not up yet
    for i in range(10):
        track.small.sent(i * 0.1)  # unanswered too
    for received, i in enumerate(range(10, 100), start=1):
        seq = track.small.sent(i * 0.1)
        track.small.echoed(seq, i * 0.1 + 0.001, received, received)
    p = track.summary(now=10.0, mtu_size=1500)
    assert p is not None and p.mtu_sent == 0


def test_the_rtt_histogram_counts_every_rtt_since_the_start_not_just_the_window() -> None:
    track = PeerTrack("b", window=5.0, grace=1.0)
    rtts = [40e-6, 50e-6, 70e-6, 150e-6, 0.003, 2.0]  # 2 s: only +Inf
    for i, rtt in enumerate(rtts * 10):  # one probe per 0.1 s: 6 s, beyond the window
        seq = track.small.sent(i * 0.1)
        track.small.echoed(seq, i * 0.1 + 0.0001, i + 1, i + 1, rtt)
    dup = track.small.sent(6.0)
    track.small.echoed(dup, 6.001, 61, 61, 80e-6)
    assert track.small.echoed(dup, 6.002, 61, 62, 80e-6) is None  # a duplicate: not counted
    p = track.summary(now=7.1, mtu_size=0)
    assert p is not None
    assert p.rtt_count == 61 and p.sent < 61  # the window holds fewer probes than the histogram
    assert p.rtt_bucket_counts == (20, 31, 41, 41, 41, 41, 51, 51, 51, 51)
    assert p.rtt_sum_seconds == pytest.approx(10 * sum(rtts) + 80e-6)


def test_the_kernel_rtt_is_the_one_recorded_and_bucketed() -> None:
    s = Series(10.0)
    seq = s.sent(1.0)
    assert s.echoed(seq, 1.0005, 1, 1, rtt=60e-6) == pytest.approx(60e-6)  # not 500 us
    assert s.by_seq[seq].rtt == pytest.approx(60e-6)
    assert s.rtt_buckets[1] == 1 and s.rtt_count == 1
    seq = s.sent(2.0)
    assert s.echoed(seq, 2.0004, 2, 2) == pytest.approx(0.0004)  # no kernel RTT: the clock's
    assert s.rtt_buckets[3] == 1
