"""The light tier for real: two tiers on loopback addresses probe each other; strangers refused."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable

import pytest

import agent.light
from agent import lightwire as lw
from agent.light import LightOptions, LightTier, pair_interval, peers
from netmesh.wire import Member, MemberList

A = Member(name="a", address="127.0.0.61")
B = Member(name="b", address="127.0.0.62")


def options(**kw: float) -> LightOptions:
    values: dict[str, float] = {
        "port": random.randint(30000, 40000),
        "window": 1.0,
        "grace": 0.3,
        "mtu": 1500,
        "mtu_interval": 0.2,
    }
    values.update(kw)
    return LightOptions(**values)  # type: ignore[arg-type]


async def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_two_tiers_measure_each_other_and_refuse_strangers() -> None:
    opts = options()
    members = MemberList(epoch=1, members=(A, B))
    a, b = LightTier(opts, A, lambda: members), LightTier(opts, B, lambda: members)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:

        def measured() -> bool:
            paths = a.status().paths
            return bool(paths) and paths[0].sent >= 5 and paths[0].mtu_sent >= 1

        await until(measured, 5, "a window of a -> b")
        (path,) = a.status().paths
        assert path.destination == "b"
        assert path.loss_ratio == 0 and path.forward_loss_ratio == 0
        assert path.rtt_median_seconds is not None and 0 < path.rtt_median_seconds < 0.05
        assert path.mtu_size == 1500 and path.mtu_received == path.mtu_sent

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.63", 0))
            probe = lw.encode(lw.Packet(lw.PROBE, 1, 0, 0), 64)
            s.sendto(probe, (B.address, opts.port))  # not a member
            s.sendto(b"hello" * 20, (B.address, opts.port))  # not a light-tier packet
            s.settimeout(0.5)
            with pytest.raises(TimeoutError):
                s.recvfrom(2048)  # nothing answers a stranger
        await until(lambda: b.dropped_strangers >= 1, 2, "the stranger counted")
        await until(lambda: b.dropped_malformed >= 1, 2, "the malformed packet counted")
        assert b.status().up == 1
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_port_in_use_turns_the_tier_off_with_the_reason() -> None:
    opts = options()
    members = MemberList(epoch=1, members=(A, B))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((A.address, opts.port))
        tier = LightTier(opts, A, lambda: members)
        await asyncio.wait_for(tier.run(), 2)
    status = tier.status()
    assert status.up == 0 and "cannot bind UDP" in status.reason


def test_peers_full_mesh_then_ring_and_rate_spread() -> None:
    ms = MemberList(
        epoch=1, members=tuple(Member(name=f"n{i}", address="10.0.0.1") for i in range(8))
    )
    opts = LightOptions(port=1, full_mesh_max=8, ring_peers=3, rate=20, max_pair_rate=10)
    assert len(peers(ms, "n0", opts)) == 7
    small = LightOptions(port=1, full_mesh_max=5, ring_peers=3)
    chosen = peers(ms, "n0", small)
    assert len(chosen) == 3 and "n0" not in {m.name for m in chosen}
    assert pair_interval(1, opts) == pytest.approx(0.1)  # the per-pair cap
    assert pair_interval(7, opts) == pytest.approx(7 / 20)  # the node's budget
    assert pair_interval(0, opts) == float("inf")


def test_peers_are_chosen_again_only_when_the_member_list_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Choosing peers sorts the ring (a SHA-256 per member); doing it every 10 ms tick
    # cost ~0.1 of a core at 500 members (tests/benchmarks/bench_light.py, scale).
    calls: list[int] = []
    real = agent.light.peers

    def counting(members: MemberList, me: str, opts: LightOptions) -> list[Member]:
        calls.append(len(members.members))
        return real(members, me, opts)

    monkeypatch.setattr(agent.light, "peers", counting)
    current = MemberList(epoch=1, members=(A, B))
    tier = LightTier(options(), A, lambda: current)
    assert [m.name for m in tier._update_peers()] == ["b"]
    tier._update_peers()
    assert calls == [2]
    current = MemberList(epoch=2, members=(A, B, Member(name="c", address="127.0.0.64")))
    assert sorted(m.name for m in tier._update_peers()) == ["b", "c"]
    assert calls == [2, 3]
    assert tier.allowed == frozenset({B.address, "127.0.0.64"})


async def test_the_send_queue_keeps_each_peers_rate_across_member_changes() -> None:
    opts = options(max_pair_rate=20.0, mtu_interval=0.25)  # nobody answers: sends only
    c, d = Member(name="c", address="127.0.0.73"), Member(name="d", address="127.0.0.74")
    current = MemberList(epoch=1, members=(A, B, c))
    tier = LightTier(opts, A, lambda: current)
    task = asyncio.create_task(tier.run())
    try:
        await until(lambda: tier.up, 2, "the tier up")
        await asyncio.sleep(1.0)
        small = {t.destination: t.small.next_seq for t in tier.tracks.values()}
        mtu = {t.destination: t.mtu.next_seq for t in tier.tracks.values()}
        assert set(small) == {"b", "c"} and all(15 <= n <= 23 for n in small.values()), small
        assert all(3 <= n <= 5 for n in mtu.values()), mtu
        current = MemberList(epoch=2, members=(A, c, d))  # b leaves, d joins
        await asyncio.sleep(0.5)
        small = {t.destination: t.small.next_seq for t in tier.tracks.values()}
        assert set(small) == {"c", "d"} and small["c"] >= 25 and 7 <= small["d"] <= 12, small
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_unanswered_mtu_probe_is_confirmed_at_once() -> None:
    # b answers small probes but not MTU-sized ones (a blackhole for big packets): a's next
    # MTU probe follows the lost one after grace + CONFIRM_AFTER, not a whole interval later.
    opts = options(mtu_interval=8.0, grace=0.2, window=1.0)
    members = MemberList(epoch=1, members=(A, B))
    a, b = LightTier(opts, A, lambda: members), LightTier(opts, B, lambda: members)
    answer = b._answer

    def small_only(probe: lw.Packet, host: str, port: int, rx_ns: int | None = None) -> None:
        if probe.kind != lw.MTU_PROBE:
            answer(probe, host, port, rx_ns)

    b._answer = small_only  # type: ignore[method-assign]
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        await until(lambda: bool(a.tracks), 2, "a's track of b")
        track = next(iter(a.tracks.values()))
        limit = 8.0 + opts.grace + agent.light.CONFIRM_AFTER + 2.0  # the first at random in 8 s
        await until(lambda: track.mtu.next_seq >= 2, limit, "a second (confirming) MTU probe")
        first, second = track.mtu.probes[0], track.mtu.probes[1]
        gap = second.sent_at - first.sent_at
        assert (
            opts.grace + agent.light.CONFIRM_AFTER
            <= gap
            < opts.grace + agent.light.CONFIRM_AFTER + 0.5
        )
        assert first.echo_at is None and second.echo_at is None
        await asyncio.sleep(opts.grace + agent.light.CONFIRM_AFTER + 0.3)
        assert track.mtu.next_seq == 2  # one confirmation, not a probe every second
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
