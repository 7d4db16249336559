"""The Service check: real TCP connects on loopback (accepted, refused, a name resolved by the
system resolver), and its window arithmetic with injected connect, resolve and clock."""

from __future__ import annotations

import asyncio
import errno
import json
import socket

import pytest

from agent.service import (
    Outcome,
    ServiceCheck,
    ServiceOptions,
    classify,
    connect,
    resolve,
    split_target,
)
from agent.settings import AgentSettings
from netmesh.config import SettingsError
from netmesh.servicereport import RESULTS, service_to_json
from netmesh.wire import parse_report
from tests.collector.conftest import FakeClock
from tests.collector.reports import report


@pytest.mark.parametrize(
    ("target", "parsed"),
    [
        ("netmesh-collector.netmesh.svc:9100", ("netmesh-collector.netmesh.svc", 9100)),
        ("10.96.0.1:443", ("10.96.0.1", 443)),
        ("[fd00::1]:80", ("fd00::1", 80)),
    ],
)
def test_split_target(target: str, parsed: tuple[str, int]) -> None:
    assert split_target(target) == parsed


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("collector", "expected host:port"),
        (":80", "expected host:port"),
        ("host:http", "is not a number"),
        ("host:0", "not 1..65535"),
        ("fd00::1:80", "in brackets"),
    ],
)
def test_split_target_says_why(target: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        split_target(target)


def test_settings_refuse_a_bad_target() -> None:
    base = {"node_name": "n1", "bind_address": "10.0.0.1"}
    assert AgentSettings(**base, service_target="svc.ns.svc:9100").service_target
    with pytest.raises(SettingsError, match="service_target 'svc': expected host:port"):
        AgentSettings(**base, service_target="svc")
    with pytest.raises(SettingsError, match="is no address or name"):
        AgentSettings(**base, service_target="bad name!:80")
    with pytest.raises(SettingsError, match="service_window"):
        AgentSettings(**base, service_target="10.0.0.9:80", service_interval=10, service_window=5)


def test_classify_names_the_cause() -> None:
    assert classify(TimeoutError()).result == "timeout"
    assert classify(ConnectionRefusedError(errno.ECONNREFUSED, "refused")).result == "refused"
    assert classify(ConnectionResetError(errno.ECONNRESET, "reset")).result == "reset"
    assert classify(OSError(errno.EHOSTUNREACH, "no route")).result == "unreachable"
    assert classify(OSError(errno.EACCES, "denied")).result == "error"


async def test_real_connects_accepted_and_refused() -> None:
    accepted = 0

    async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with socket.socket() as closed:  # a port nobody listens on: bound, never listening
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
        async with server:
            assert await connect("127.0.0.1", port, 2.0) == Outcome("ok")
            refused = await connect("127.0.0.1", closed_port, 2.0)
            assert refused.result == "refused"
            # the check end to end: resolves localhost with the system resolver, connects
            check = ServiceCheck(
                ServiceOptions(target=f"localhost:{port}", interval=0.01, window=60)
            )
            await check.run(iterations=3)
    status = check.status()
    assert accepted >= 4
    assert dict(status.connects)["ok"] == 3 and status.window_failures == 0
    assert status.address in ("127.0.0.1", "::1")
    assert status.latency_median_seconds is not None and status.latency_median_seconds < 2
    assert status.up == 0 and status.reason == "not running"


async def test_resolve_fails_for_a_name_that_does_not_exist() -> None:
    with pytest.raises(OSError):
        await resolve("no-such-name.invalid", 80, 5.0)


class Fakes:
    """Injected connect/resolve: scripted results, a fake clock that each attempt advances."""

    def __init__(self, results: list[str], names: list[str | None]) -> None:
        self.results = results
        self.names = names  # per attempt: the address it resolves to, None = fails
        self.clock = FakeClock()
        self.connected: list[str] = []

    async def connect(self, address: str, port: int, seconds: float) -> Outcome:
        self.connected.append(address)
        self.clock.advance(0.002)
        result = self.results.pop(0)
        return Outcome(result, "" if result == "ok" else f"{result} at {address}:{port}")

    async def resolve(self, name: str, port: int, seconds: float) -> str:
        address = self.names.pop(0)
        if address is None:
            raise OSError(f"{name}: Name or service not known")
        return address

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)


def check_with(fakes: Fakes, *, window: float = 30.0) -> ServiceCheck:
    return ServiceCheck(
        ServiceOptions(target="svc.ns.svc:9100", interval=5.0, timeout=2.0, window=window),
        connect=fakes.connect,
        resolve=fakes.resolve,
        clock=fakes.clock,
        sleep=fakes.sleep,
    )


async def test_a_name_that_stops_resolving_keeps_its_last_address() -> None:
    # DNS is another layer: while the name fails, the check connects to the address it had.
    fakes = Fakes(["ok", "ok", "timeout", "ok"], ["10.96.0.7", None, None, None])
    check = check_with(fakes)
    await check.run(iterations=4)
    status = check.status()
    assert fakes.connected == ["10.96.0.7"] * 4
    assert dict(status.window_results) == {"ok": 3, "timeout": 1}
    assert status.window_connects == 4 and status.window_failures == 1
    assert status.address == "10.96.0.7"
    assert status.dominant_failure() == "timeout"


async def test_a_name_that_never_resolved_is_unresolved_not_a_failed_connect() -> None:
    fakes = Fakes([], [None, None, None])
    check = check_with(fakes)
    await check.run(iterations=3)
    status = check.status()
    assert fakes.connected == []
    assert dict(status.connects)["unresolved"] == 3
    assert status.window_connects == 0 and status.failure_ratio is None
    assert "Name or service not known" in status.last_error


async def test_an_address_target_is_not_resolved_and_old_attempts_leave_the_window() -> None:
    fakes = Fakes(["refused"] * 4 + ["ok"] * 2, [])
    check = ServiceCheck(
        # attempts at 0, 5, ... 25 s; the status at 30 s sees the last 17 s: 15, 20 and 25
        ServiceOptions(target="10.96.0.9:80", interval=5.0, window=17.0),
        connect=fakes.connect,
        resolve=fakes.resolve,
        clock=fakes.clock,
        sleep=fakes.sleep,
    )
    await check.run(iterations=6)
    status = check.status()
    assert dict(status.connects)["refused"] == 4  # lifetime
    assert dict(status.window_results) == {"refused": 1, "ok": 2}
    assert status.failure_ratio == pytest.approx(1 / 3)


async def test_a_connect_that_ignores_its_timeout_is_bounded() -> None:
    async def hang(address: str, port: int, seconds: float) -> Outcome:
        await asyncio.sleep(3600)
        return Outcome("ok")

    check = ServiceCheck(ServiceOptions(target="10.96.0.9:80", timeout=0.05), connect=hang)
    outcome = await check.once()
    assert outcome.result == "timeout"
    assert check.status().window_failures == 1


async def test_status_travels_in_the_report() -> None:
    fakes = Fakes(["ok", "unreachable"], ["10.96.0.7", "10.96.0.7"])
    check = check_with(fakes)
    await check.run(iterations=2)
    status = check.status()
    wire = service_to_json(status)
    assert set(wire["connects"]) == set(RESULTS)
    body = json.loads(json.dumps({**report("a", "10.0.0.1", ("b",)).to_json(), "service": wire}))
    parsed = parse_report(body)
    assert parsed.service == status
    bad = {**wire, "window_failures": 5}
    with pytest.raises(ValueError, match="more failures than connects"):
        parse_report({**body, "service": bad})
    with pytest.raises(ValueError, match="unknown result 'weird'"):
        parse_report({**body, "service": {**wire, "connects": {"weird": 1}}})
