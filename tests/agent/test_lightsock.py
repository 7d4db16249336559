"""Kernel receive timestamps and the responder's turnaround: real UDP sockets on loopback."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time

import pytest

from agent import lightsock
from agent import lightwire as lw
from agent.light import CLOCK_SLACK, LightOptions, LightTier, kernel_rtt
from netmesh.wire import Member, MemberList

A = Member(name="a", address="127.0.0.81")
B = Member(name="b", address="127.0.0.82")


def pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx.bind(("127.0.0.1", 0))
    return rx, tx


def test_the_kernel_stamps_each_datagram_when_it_arrives_not_when_it_is_read() -> None:
    rx, tx = pair()
    with rx, tx:
        assert lightsock.enable_timestamps(rx)
        rx.setblocking(False)
        assert lightsock.read_batch(rx, pytest.fail) == []  # nothing yet: no error
        # The kernel turns receive timestamping on with deferred work: a datagram in the
        # first moments may be stamped when it is read instead. Wait for it to take.
        tx.sendto(b"warm-up", rx.getsockname())
        time.sleep(0.05)
        assert [d for d, _, _ in lightsock.read_batch(rx, pytest.fail)] == [b"warm-up"]
        before = time.time_ns()
        tx.sendto(b"one", rx.getsockname())
        tx.sendto(b"two", rx.getsockname())
        time.sleep(0.05)  # the datagrams wait in the socket: read 50 ms after arrival
        read_at = time.time_ns()
        got = lightsock.read_batch(rx, pytest.fail)
        sender = tx.getsockname()
    assert [d for d, _, _ in got] == [b"one", b"two"]
    assert all(addr == sender for _, addr, _ in got)
    for _, _, rx_ns in got:
        assert rx_ns is not None
        assert before <= rx_ns <= read_at - 40_000_000, (before, rx_ns, read_at)


def test_without_the_option_there_is_no_timestamp() -> None:
    rx, tx = pair()
    with rx, tx:
        rx.setblocking(False)
        tx.sendto(b"x", rx.getsockname())
        time.sleep(0.01)
        ((data, _, rx_ns),) = lightsock.read_batch(rx, pytest.fail)
    assert data == b"x" and rx_ns is None


def test_ancillary_data_of_other_kinds_is_no_timestamp() -> None:
    stamp = struct.pack("@ll", 12, 345)
    assert lightsock.received_ns([(socket.SOL_SOCKET, lightsock.SCM_TIMESTAMPNS, stamp)]) == (
        12_000_000_345
    )
    assert lightsock.received_ns([(socket.IPPROTO_IP, lightsock.SCM_TIMESTAMPNS, stamp)]) is None
    assert lightsock.received_ns([(socket.SOL_SOCKET, 99, stamp)]) is None
    assert lightsock.received_ns([(socket.SOL_SOCKET, lightsock.SCM_TIMESTAMPNS, b"1")]) is None


# --------------------------------------------------------------------------- the wire


def test_an_echo_carries_the_turnaround_and_older_decoders_see_a_version_1_echo() -> None:
    echo = lw.Packet(lw.ECHO, 7, 3, 123, 4, 4, turnaround_ns=25_000)
    data = lw.encode(echo)
    assert len(data) == lw.HEADER_SIZE + 8
    assert lw.decode(data) == echo
    # what a decoder before the flag reads: the same header, flags ignored, extra bytes too
    plain = lw.encode(lw.Packet(lw.ECHO, 7, 3, 123, 4, 4))
    assert data[:6] == plain[:6] and data[8 : lw.HEADER_SIZE] == plain[8:]
    assert lw.decode(plain).turnaround_ns is None
    unknown_flag = plain[:6] + b"\x80\x00" + plain[8:]
    assert lw.decode(unknown_flag) == lw.decode(plain)  # room for later extensions


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (lw.encode(lw.Packet(lw.ECHO, 1, 0, 0))[:6] + b"\x00\x01" + bytes(40), "without the turn"),
        (
            lw.encode(lw.Packet(lw.PROBE, 1, 0, 0))[:6] + b"\x00\x01" + bytes(48),
            "a probe with a turnaround",
        ),
        (
            lw.encode(lw.Packet(lw.ECHO, 1, 0, 0))[:6]
            + b"\x00\x01"
            + bytes(40)
            + struct.pack("!Q", lw.MAX_TURNAROUND_NS + 1),
            "above",
        ),
    ],
)
def test_a_broken_turnaround_is_malformed(data: bytes, why: str) -> None:
    with pytest.raises(lw.Malformed, match=why):
        lw.decode(data)


def test_a_probe_cannot_be_encoded_with_a_turnaround() -> None:
    with pytest.raises(ValueError):
        lw.encode(lw.Packet(lw.PROBE, 1, 0, 0, turnaround_ns=5))


def test_kernel_rtt_takes_the_turnaround_off_and_distrusts_a_stepped_clock() -> None:
    sent = 1_000_000_000_000
    echo = lw.Packet(lw.ECHO, 1, 0, sent, 1, 1, turnaround_ns=30_000)
    assert kernel_rtt(echo, sent + 100_000, 0.0002) == pytest.approx(70e-6)
    no_turn = lw.Packet(lw.ECHO, 1, 0, sent, 1, 1)
    assert kernel_rtt(no_turn, sent + 100_000, 0.0002) == pytest.approx(100e-6)
    assert kernel_rtt(echo, sent - 5, 0.0002) is None  # the wall clock went back
    late = sent + int((0.0002 + CLOCK_SLACK) * 1e9) + 10_000
    assert kernel_rtt(echo, late, 0.0002) is None  # ... or forward
    huge = lw.Packet(lw.ECHO, 1, 0, sent, 1, 1, turnaround_ns=200_000)
    assert kernel_rtt(huge, sent + 100_000, 0.0002) == pytest.approx(100e-6)  # ignored


# --------------------------------------------------------------------------- two tiers


def options() -> LightOptions:
    return LightOptions(
        port=random.randint(40001, 50000), window=1.0, grace=0.3, mtu=0, max_pair_rate=50.0
    )


async def test_two_tiers_use_kernel_timestamps_and_the_responder_reports_its_turnaround() -> None:
    opts = options()
    members = MemberList(epoch=1, members=(A, B))
    a, b = LightTier(opts, A, lambda: members), LightTier(opts, B, lambda: members)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while sum(p.echo_at is not None for t in a.tracks.values() for p in t.small.probes) < 10:
            assert loop.time() < deadline, "no echoes within 5 s"
            await asyncio.sleep(0.05)
        assert a.kernel_timestamps and b.kernel_timestamps
        probes = [p for t in a.tracks.values() for p in t.small.probes if p.echo_at is not None]
        assert all(p.measured is not None for p in probes)
        for p in probes:  # the kernel RTT leaves out both loops' delays: never longer
            assert p.measured is not None and 0 < p.measured <= p.echo_at - p.sent_at
        (track,) = a.tracks.values()
        assert track.small.rtt_count >= 10  # the histogram has the kernel RTTs
        assert track.small.rtt_sum == pytest.approx(sum(p.measured or 0 for p in probes))

        # the responder's echo, read by a plain socket that is a member: flag and turnaround
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((A.address, 0))
            s.setblocking(False)
            probe = lw.encode(lw.Packet(lw.PROBE, 99, 0, time.time_ns()), 64)
            s.sendto(probe, (B.address, opts.port))
            echo = lw.decode(await asyncio.wait_for(loop.sock_recv(s, 2048), 2))
        assert echo.kind == lw.ECHO and echo.session == 99
        assert echo.turnaround_ns is not None and 0 <= echo.turnaround_ns < 1_000_000_000
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_malformed_and_stranger_packets_on_the_new_reader_are_dropped_and_counted() -> None:
    opts = options()
    members = MemberList(epoch=1, members=(A, B))
    b = LightTier(opts, B, lambda: members)
    task = asyncio.create_task(b.run())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not b.up:
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        bad_flag = lw.encode(lw.Packet(lw.ECHO, 1, 0, 0))[:6] + b"\x00\x01" + bytes(40)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((A.address, 0))
            s.sendto(bad_flag, (B.address, opts.port))  # an echo with a truncated turnaround
            s.sendto(b"\x00" * 3, (B.address, opts.port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.83", 0))
            s.sendto(lw.encode(lw.Packet(lw.PROBE, 1, 0, 0), 64), (B.address, opts.port))
        while b.dropped_malformed < 2 or b.dropped_strangers < 1:
            assert loop.time() < deadline, (b.dropped_malformed, b.dropped_strangers)
            await asyncio.sleep(0.02)
        assert b.up and not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
