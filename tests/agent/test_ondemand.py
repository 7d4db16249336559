"""The agent's part of on-demand sweeps: TestLoop runs them in place of the budgeted plan."""

from __future__ import annotations

import pytest

from agent.daemon import TestLoop
from agent.ondemand import prune, sweep_slot
from agent.runner import ClientOptions
from agent.schedule import PlanSettings
from agent.state import AgentState
from netmesh.ondemand import Sweep
from netmesh.wire import Member, MemberList
from tests.agent.test_daemon import FakeTime

A = Member(name="a", address="10.0.0.1")
B = Member(name="b", address="10.0.0.2")
C = Member(name="c", address="10.0.0.3")
# 3 s slots, budget 1: the budgeted plan has a test in every slot.
PS = PlanSettings(duration=2, omit=0, guard=1.0, protocols=("tcp", "udp"))


def node_sweep(start_at: float, node: str = "b", sweep_id: str = "s1") -> Sweep:
    return Sweep(
        id=sweep_id,
        start_at=start_at,
        protocols=("tcp", "udp"),
        kind="node",
        nodes=("a", "b", "c"),
        node=node,
    )


def make_loop(t: FakeTime, me: Member = A) -> tuple[TestLoop, AgentState]:
    state = AgentState(me=me, http_port=9101)
    state.set_members(MemberList(epoch=1, members=(A, B, C)))
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


async def test_a_sweep_replaces_the_plan_for_its_window_and_tags_its_results() -> None:
    t = FakeTime(now=3000.0)
    loop, state = make_loop(t)
    # Sweep of b (3 nodes: 2 rounds x 2 protocols = 4 slots) from 3006: slots 1002..1005.
    state.adopt_sweeps([node_sweep(3005.5)])
    await loop.run(iterations=8)
    by_slot = {int(float(c["start"]) // 3): c for c in t.calls}  # type: ignore[arg-type]
    # Before and after the window: the budgeted plan (a tests someone every slot).
    assert {1000, 1001, 1006, 1007} <= by_slot.keys()
    # In the window: only a's sweep tests (a->b and, as b's server... a is client once per round).
    window = [c for n, c in by_slot.items() if 1002 <= n < 1006]
    assert [(c["peer"], c["protocol"]) for c in window] == [("b", "tcp"), ("b", "udp")]
    tagged = [r for r in state.results.values() if r.sweep == "s1"]
    assert {(r.destination, r.protocol) for r in tagged} <= {("b", "tcp"), ("b", "udp")}
    assert state.test_counts[("b", "tcp", "busy")] >= 1


async def test_a_test_towards_a_departed_node_is_a_tagged_failure() -> None:
    t = FakeTime(now=3006.0)
    loop, state = make_loop(t, me=A)
    state.adopt_sweeps([node_sweep(3006.0)])
    state.members = MemberList(epoch=2, members=(A, C))  # b left (results of b kept here)
    await loop.run(iterations=1)
    assert t.calls == []
    (res,) = state.results.values()
    assert (res.destination, res.protocol, res.result, res.sweep) == ("b", "tcp", "error", "s1")
    assert res.message == "not a member"


async def test_a_node_without_a_test_in_a_sweep_slot_stays_idle() -> None:
    t = FakeTime(now=3006.0)
    loop, state = make_loop(t, me=A)
    # A pair sweep b -> c: a has nothing to do in its slots, and must not run its plan.
    state.adopt_sweeps(
        [
            Sweep(
                id="p",
                start_at=3006.0,
                protocols=("tcp", "udp"),
                kind="pair",
                nodes=("a", "b", "c"),
                source="b",
                destination="c",
            )
        ]
    )
    await loop.run(iterations=2)
    assert t.calls == []
    await loop.run(iterations=1)  # the window (2 slots) is over: the plan again
    assert len(t.calls) == 1


def test_every_node_sees_the_same_slot_and_each_its_own_test() -> None:
    sweeps = {"s1": node_sweep(3006.0)}
    members = (A, B, C)
    seen = {}
    for me in ("a", "b", "c"):
        slot = sweep_slot(sweeps, members, me, 3006.5, PS)
        assert slot is not None and slot.slot.number == 1002 and slot.sweep == "s1"
        seen[me] = slot.slot.test
    tests = [(x.client.name, x.server.name, x.protocol) for x in seen.values() if x]
    assert len(tests) == 2 and all("b" in (c, s) for c, s, _ in tests)
    assert len({c for c, _, _ in tests}) == 2 and len({s for _, s, _ in tests}) == 2
    assert sweep_slot(sweeps, members, "a", 3005.9, PS) is None
    # A sweep towards a node that left: the slot is held, the test is reported missing.
    gone = sweep_slot(sweeps, (A, C), "a", 3006.5, PS)
    assert gone is not None and (gone.missing, gone.protocol) == ("b", "tcp")


def test_known_sweeps_are_kept_until_their_window_ended() -> None:
    sweeps = {"s1": node_sweep(3006.0)}  # slots 1002..1005
    assert prune(sweeps, 3017.9, PS) == [] and "s1" in sweeps
    assert prune(sweeps, 3018.5, PS) == ["s1"] and sweeps == {}


@pytest.mark.parametrize("count", [1, 300])
def test_adopting_is_idempotent_and_bounded(count: int) -> None:
    state = AgentState(me=A, http_port=9101)
    batch = [node_sweep(3006.0 + i, sweep_id=str(i)) for i in range(count)]
    state.adopt_sweeps(batch)
    state.adopt_sweeps(batch)
    assert len(state.sweeps) == min(count, 256)


async def test_with_a_collector_the_plan_waits_for_the_first_report_answer() -> None:
    t = FakeTime(now=3000.0)
    state = AgentState(me=A, http_port=9101)
    state.set_members(MemberList(epoch=1, members=(A, B, C)))
    loop = TestLoop(
        state,
        PS,
        ClientOptions(),
        members=lambda: state.members.members,
        runner=t.runner,
        clock=t.clock,
        sleep=t.sleep,
        heard=lambda: sum(state.reports.values()) > 0,
    )
    await loop.run(iterations=2)
    assert t.calls == []  # a sweep could be running that this node has not heard of
    state.reports["unreachable"] += 1  # answered or not: the agent knows what it can know
    await loop.run(iterations=1)
    assert len(t.calls) == 1
