"""Reporter against a small aiohttp collector stand-in on loopback."""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.reporter import Reporter
from agent.state import AgentState
from netmesh.wire import Member, MemberList, parse_report
from tests.helpers import free_port

ME = Member(name="a", address="127.0.0.1", iperf3_port=5201)
B = Member(name="b", address="127.0.0.2", iperf3_port=5201)


class Collector:
    def __init__(self) -> None:
        self.reports: list[Any] = []
        self.tokens: list[str | None] = []
        self.mode = "ok"

    async def handle(self, request: web.Request) -> web.Response:
        self.tokens.append(request.headers.get("Authorization"))
        if self.mode in ("401", "403"):
            return web.Response(status=int(self.mode), text=f"report rejected: {self.mode}")
        body = await request.json()
        self.reports.append(parse_report(body))  # the agent's report must validate
        if self.mode == "reject":
            return web.Response(status=400, text="schema: bad")
        if self.mode == "garbage":
            return web.json_response({"epoch": "x"})
        return web.json_response(MemberList(epoch=7, members=(ME, B)).to_json())


@pytest.fixture
async def collector() -> Any:
    c = Collector()
    app = web.Application()
    app.router.add_post("/api/v1/reports", c.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield c, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_members_adopted_then_kept_while_collector_fails(
    collector: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c, url = collector
    state = AgentState(me=ME, http_port=9101)
    reporter = Reporter(state, collector_url=url, interval=1.0, timeout=1.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        assert await reporter.push_once(session)
        assert state.members.epoch == 7 and state.members.members == (ME, B)
        assert state.collector_up and c.reports[0].node == "a"

        caplog.set_level(logging.INFO, logger="agent.reporter")
        for mode, result in (("reject", "rejected"), ("garbage", "bad_response")):
            c.mode = mode
            assert not await reporter.push_once(session)
            assert not await reporter.push_once(session)
            assert state.reports[result] == 2
            assert state.members.members == (ME, B), "members lost while the collector fails"
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2, "one warning per change of state, not per attempt"
        c.mode = "ok"
        assert await reporter.push_once(session)
        assert any("reachable again" in r.message for r in caplog.records)


async def test_unreachable_collector() -> None:
    state = AgentState(me=ME, http_port=9101)
    reporter = Reporter(
        state, collector_url=f"http://127.0.0.1:{free_port()}", interval=1.0, timeout=0.5
    )
    async with aiohttp.ClientSession() as session:
        assert not await reporter.push_once(session)
    assert state.reports["unreachable"] == 1 and not state.collector_up


async def test_token_presented_reread_and_refusals_counted(
    collector: Any, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    c, url = collector
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    state = AgentState(me=ME, http_port=9101)
    reporter = Reporter(
        state, collector_url=url, interval=1.0, timeout=1.0, token_file=str(token_file)
    )
    caplog.set_level(logging.INFO, logger="agent.reporter")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        assert await reporter.push_once(session)
        token_file.write_text("rotated-token")  # the kubelet rotates the file in place
        assert await reporter.push_once(session)
        assert c.tokens == ["Bearer first-token", "Bearer rotated-token"]
        for mode, result in (("401", "unauthenticated"), ("403", "forbidden")):
            c.mode = mode
            assert not await reporter.push_once(session)
            assert not await reporter.push_once(session)
            assert state.reports[result] == 2 and not state.collector_up
        token_file.unlink()
        sent = len(c.tokens)
        assert not await reporter.push_once(session)
        assert len(c.tokens) == sent, "posted without the token it could not read"
        assert state.reports["unauthenticated"] == 3
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings  # once per change: 401, 403, unreadable file
    assert "HTTP 403" in warnings[1] and "rotated-token" not in "".join(warnings)
