"""The report response's member list is serialised once per list and follows changes."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.reporter import Reporter
from agent.state import AgentState
from collector.app import create_app
from collector.memberbody import MemberListBody
from collector.settings import CollectorSettings
from netmesh.wire import Member, MemberList, WireError, parse_member_list, parse_member_response
from tests.helpers import free_port

A = Member(name="a", address="10.0.0.1")
B = Member(name="b", address="10.0.0.2", iperf3_port=5301)


def test_body_is_cached_per_list_and_follows_changes() -> None:
    cache = MemberListBody()
    one = MemberList(epoch=1, members=(A,))
    first = cache.body(one)
    assert cache.body(one) is first  # not serialised again
    assert parse_member_list(json.loads(first)) == one
    two = MemberList(epoch=2, members=(A, B))
    assert parse_member_list(json.loads(cache.body(two))) == two


def test_an_agent_on_the_current_epoch_gets_the_short_answer() -> None:
    cache = MemberListBody()
    one = MemberList(epoch=1_700_000_000_000, members=(A, B))
    full = cache.body(one, agent_epoch=0)
    short = cache.body(one, agent_epoch=one.epoch)
    assert len(short) < 60 < len(full)
    # What the agent makes of each: the same list.
    assert parse_member_response(json.loads(short), one) is one
    assert parse_member_response(json.loads(full), MemberList(epoch=0, members=())) == one
    # A stale agent (older epoch) gets the whole list.
    assert parse_member_list(json.loads(cache.body(one, agent_epoch=one.epoch - 1))) == one


def test_an_unchanged_answer_for_another_epoch_is_refused() -> None:
    mine = MemberList(epoch=5, members=(A,))
    for bad, why in (
        ({"epoch": 6, "unchanged": True}, "not the agent's epoch 5"),
        ({"epoch": 5, "unchanged": False}, "expected true"),
        ({"unchanged": True}, "epoch: missing"),
    ):
        with pytest.raises(WireError, match=why):
            parse_member_response(bad, mine)


async def test_reporter_against_the_real_collector_keeps_its_list_on_unchanged() -> None:
    """The real collector answers "unchanged" once the agent plans with its epoch."""
    app = create_app(CollectorSettings(mode="static", rca_interval=0, gc_full_interval=0))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    answers: list[bytes] = []

    async def trace(_s: Any, _c: Any, params: aiohttp.TraceRequestEndParams) -> None:
        answers.append(await params.response.read())

    tracing = aiohttp.TraceConfig()
    tracing.on_request_end.append(trace)
    try:
        state = AgentState(me=A, http_port=9101)
        reporter = Reporter(state, collector_url=f"http://127.0.0.1:{port}", interval=1, timeout=2)
        async with aiohttp.ClientSession(trace_configs=[tracing]) as session:
            assert await reporter.push_once(session)
            first = state.members
            assert first.epoch > 0 and first.members == (A,)
            assert await reporter.push_once(session)
            assert state.members is first
            assert b'"members"' in answers[0] and b'"unchanged": true' in answers[1]
            assert state.reports["ok"] == 2
    finally:
        await runner.cleanup()


def test_sweeps_are_spliced_into_both_answers() -> None:
    cache = MemberListBody()
    members = MemberList(epoch=5, members=(A, B))
    sweeps = b'[{"id":"x"}]'
    full = json.loads(cache.body(members, 4, sweeps))
    assert full["sweeps"] == [{"id": "x"}] and len(full["members"]) == 2
    short = json.loads(cache.body(members, 5, sweeps))
    assert short == {"epoch": 5, "unchanged": True, "sweeps": [{"id": "x"}]}
    assert "sweeps" not in json.loads(cache.body(members, 5))


async def test_the_agent_adopts_a_requested_sweep_from_its_next_answer() -> None:
    """POST /api/v1/sweeps on the real collector; the agent's reporter picks it up."""
    app = create_app(CollectorSettings(mode="static", rca_interval=0, gc_full_interval=0))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    try:
        states = [AgentState(me=m, http_port=9101) for m in (A, B)]
        reporters = [Reporter(s, collector_url=url, interval=1, timeout=2) for s in states]
        async with aiohttp.ClientSession() as session:
            for reporter in reporters * 2:
                assert await reporter.push_once(session)
            async with session.post(url + "/api/v1/sweeps", json={"node": "b"}) as resp:
                assert resp.status == 202
                sweep_id = (await resp.json())["id"]
            for reporter in reporters:  # the short "unchanged" answer carries it too
                assert await reporter.push_once(session)
        for state in states:
            assert list(state.sweeps) == [sweep_id]
            assert state.sweeps[sweep_id].nodes == ("a", "b")
    finally:
        await runner.cleanup()
