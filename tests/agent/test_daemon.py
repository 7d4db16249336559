"""TestLoop with an injected clock, sleep and runner: slots, deadlines, late starts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.daemon import (
    PROBE_SETTLE_MAX,
    TestLoop,
    client_options,
    plan_settings,
    probes_settled,
    server_options,
    start_window,
)
from agent.iperf import TestId, failed
from agent.runner import ClientOptions
from agent.schedule import PlanSettings
from agent.server import ServerOptions
from agent.settings import AgentSettings
from agent.state import AgentState
from netmesh.config import load
from netmesh.wire import DropStatus, Member, MemberList, ProbeStatus, TestResult, Transport

A = Member(name="a", address="10.0.0.1")
B = Member(name="b", address="10.0.0.2")
PS = PlanSettings(duration=2, omit=0, guard=1.0, protocols=("tcp", "udp"))  # 3 s slots


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now
        self.calls: list[dict[str, object]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def runner(
        self,
        *,
        source: str,
        peer: Member,
        protocol: Transport,
        opts: ClientOptions,
        deadline: float,
        clock: Callable[[], float],
    ) -> TestResult:
        self.calls.append(
            {"start": self.now, "deadline": deadline, "protocol": protocol, "peer": peer.name}
        )
        self.now += 2.1  # the test takes its duration plus a little
        test = TestId(source=source, destination=peer.name, protocol=protocol, started_at=0)
        return failed(test, result="busy", message="x", duration=2.1)


def make_loop(t: FakeTime) -> tuple[TestLoop, AgentState]:
    state = AgentState(me=A, http_port=9101)
    state.set_members(MemberList(epoch=1, members=(A, B)))
    loop = TestLoop(
        state,
        PS,
        ClientOptions(),
        members=lambda: state.members.members,
        runner=t.runner,
        clock=t.clock,
        sleep=t.sleep,
    )
    return loop, state


async def test_one_test_per_slot_with_deadline_at_slot_end() -> None:
    t = FakeTime(now=3000.0)  # exactly a slot start
    loop, state = make_loop(t)
    await loop.run(iterations=4)
    # Each wake-up aims at the next slot start, so lateness never accumulates.
    assert [c["start"] for c in t.calls] == pytest.approx([3000.0, 3003.001, 3006.001, 3009.001])
    for call in t.calls:
        assert call["peer"] == "b"
        slot_end = (int(float(call["start"]) // 3) + 1) * 3  # type: ignore[arg-type]
        assert slot_end - 0.1 < float(call["deadline"]) < slot_end  # type: ignore[arg-type]
    assert {c["protocol"] for c in t.calls} == {"tcp", "udp"}
    assert state.test_counts[("b", "tcp", "busy")] == 2
    assert state.test_counts[("b", "udp", "busy")] == 2
    assert not state.skipped_tests


async def test_late_start_is_skipped_and_counted_but_not_at_startup() -> None:
    t = FakeTime(now=3001.2)  # 1.2 s into a 3 s slot: a 2 s test would overrun
    loop, state = make_loop(t)
    await loop.step()
    assert t.calls == [] and not state.skipped_tests  # joined mid-slot: just wait
    assert t.now == 3003.001
    await loop.step()  # on time
    assert len(t.calls) == 1
    t.now += 0.9  # the loop is woken 0.9 s into the next slot (> guard/2)
    await loop.step()
    assert len(t.calls) == 1
    assert state.skipped_tests["late"] == 1


async def test_lag_within_half_the_guard_still_runs() -> None:
    t = FakeTime(now=3000.4)
    loop, state = make_loop(t)
    await loop.step()
    assert len(t.calls) == 1
    assert abs(state.scheduler_lag_seconds - 0.4) < 1e-9


async def test_departed_peer_results_are_forgotten() -> None:
    t = FakeTime(now=3000.0)
    loop, state = make_loop(t)
    await loop.step()
    assert state.results
    state.set_members(MemberList(epoch=2, members=(A,)))
    assert not state.results and not state.test_counts
    await loop.step()
    assert len(t.calls) == 1  # alone: nothing to test


def test_liveness_checks_keep_out_of_test_starts() -> None:
    ps = PlanSettings(duration=2, omit=0, guard=1.0, protocols=("tcp",))  # 3 s slots
    assert start_window(ps, 3000.0) == pytest.approx(0.7)  # at a slot start
    assert start_window(ps, 3000.5) == pytest.approx(0.2)  # a late test may still start
    assert start_window(ps, 3000.75) == 0.0
    assert start_window(ps, 3002.0) == 0.0
    assert start_window(ps, 3002.9) == pytest.approx(0.1 + 0.7)  # just before the next slot


def test_options_from_settings() -> None:
    s = load(
        AgentSettings,
        ["--bind-address", "0.0.0.0", "--advertise-address", "10.0.0.9", "--protocols", "udp,tcp"],
        {
            "NETMESH_NODE_NAME": "a",
            "NETMESH_TEST_DURATION": "4",
            "NETMESH_OMIT_SECONDS": "2",
            "NETMESH_GUARD_SECONDS": "1.5",
            "NETMESH_CONCURRENCY": "3",
            "NETMESH_PEERS_K": "2",
            "NETMESH_UDP_BITRATE": "20M",
            "NETMESH_IPERF3_BINARY": "/opt/iperf3",
            "NETMESH_IPERF3_PORT": "5301",
            "NETMESH_SERVER_CHECK_INTERVAL": "0.5",
            "NETMESH_SERVER_CHECK_TIMEOUT": "0.25",
            "NETMESH_CONNECT_TIMEOUT": "2",
            "NETMESH_BANDWIDTH_BUDGET": "0.2",
        },
    )
    assert plan_settings(s) == PlanSettings(
        duration=4,
        omit=2,
        guard=1.5,
        protocols=("tcp", "udp"),
        concurrency=3,
        peers_k=2,
        budget=0.2,
    )
    assert client_options(s) == ClientOptions(
        binary="/opt/iperf3",
        duration=4,
        omit=2,
        udp_bitrate=20_000_000,
        connect_timeout=2.0,
        bind_address="10.0.0.9",
    )
    assert server_options(s) == ServerOptions(
        binary="/opt/iperf3",
        bind_address="0.0.0.0",
        port=5301,
        check_interval=0.5,
        check_timeout=0.25,
        max_busy=2 * 7.5 + 2,
    )


def test_the_heavy_tier_waits_for_the_ebpf_probes_to_settle() -> None:
    state = AgentState(me=A, http_port=9101)
    assert not probes_settled(state, True, 1.0)  # both probes still compiling
    state.probe = ProbeStatus(mode="tracepoint", up=1)
    assert not probes_settled(state, True, 1.0)  # the drop-reason probe still compiling
    state.drops = DropStatus(mode="none", up=0, reason="disabled (drops_mode=off)")
    assert probes_settled(state, True, 1.0)  # loaded or down: both attempts are over
    assert probes_settled(AgentState(me=A, http_port=9101), False, 0.0)  # a pod endpoint
    assert probes_settled(AgentState(me=A, http_port=9101), True, PROBE_SETTLE_MAX + 1)
