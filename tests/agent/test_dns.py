"""The DNS check against a real DNS server on loopback (dnspython answers, real UDP), and its
window arithmetic with an injected lookup and clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import socket
from collections.abc import AsyncIterator

import dns.message
import dns.rcode
import dns.rrset
import pytest

from agent.dns import DnsCheck, DnsOptions, Outcome, resolve
from agent.settings import is_dns_name
from netmesh.dnsreport import RESULTS, dns_to_json
from netmesh.wire import parse_report
from tests.collector.conftest import FakeClock
from tests.collector.reports import report

ZONE = {"good.test.": "10.1.2.3", "other.test.": "10.9.9.9"}


class _Server(asyncio.DatagramProtocol):
    """good.test/other.test → A; servfail.test → SERVFAIL; refused.test → REFUSED;
    empty.test → no A record; silent.test → never answered; anything else → NXDOMAIN."""

    def __init__(self) -> None:
        self.queries = 0
        self.five = asyncio.Event()  # set at the fifth query
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        if self.queries >= 5:
            self.five.set()
        query = dns.message.from_wire(data)
        name = query.question[0].name.to_text()
        response = dns.message.make_response(query)
        if name == "silent.test.":
            return
        if name in ZONE:
            response.answer.append(dns.rrset.from_text(name, 30, "IN", "A", ZONE[name]))
        elif name == "servfail.test.":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name == "refused.test.":
            response.set_rcode(dns.rcode.REFUSED)
        elif name != "empty.test.":
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def dns_server(tmp_path: pathlib.Path) -> AsyncIterator[tuple[DnsOptions, _Server]]:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        _Server, local_addr=("127.0.0.1", 0), family=socket.AF_INET
    )
    port = transport.get_extra_info("sockname")[1]
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")
    try:
        yield DnsOptions(name="good.test", resolv_conf=str(conf), port=port, timeout=0.5), server
    finally:
        transport.close()


@pytest.mark.parametrize(
    ("name", "result", "answers"),
    [
        ("good.test", "ok", ("10.1.2.3",)),
        ("good.test.", "ok", ("10.1.2.3",)),
        ("nothere.test", "nxdomain", ()),
        ("servfail.test", "servfail", ()),
        ("refused.test", "refused", ()),
        ("empty.test", "no_answer", ()),
        ("silent.test", "timeout", ()),
    ],
)
async def test_each_answer_of_a_real_server_is_its_own_result(
    tmp_path: pathlib.Path, name: str, result: str, answers: tuple[str, ...]
) -> None:
    async with dns_server(tmp_path) as (opts, _):
        outcome = await resolve(DnsOptions(**{**opts.__dict__, "name": name}))
    assert (outcome.result, outcome.answers) == (result, answers)
    assert outcome.servers == ("127.0.0.1",)
    assert result == "ok" or outcome.error


async def test_no_nameserver_and_missing_file_are_errors_with_the_file_named(
    tmp_path: pathlib.Path,
) -> None:
    empty = tmp_path / "empty.conf"
    empty.write_text("# nothing\n")
    for path in (empty, tmp_path / "missing.conf"):
        outcome = await resolve(DnsOptions(name="good.test", resolv_conf=str(path)))
        assert outcome.result == "error"
        assert str(path) in outcome.error


async def test_nobody_listening_is_a_failure_within_the_timeout(tmp_path: pathlib.Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never read: nothing answers
        conf = tmp_path / "resolv.conf"
        conf.write_text("nameserver 127.0.0.1\n")
        loop = asyncio.get_running_loop()
        started = loop.time()
        check = DnsCheck(
            DnsOptions(name="good.test", resolv_conf=str(conf), port=port, timeout=0.3)
        )
        outcome = await check.once()
    assert outcome.result == "timeout"
    assert loop.time() - started < 0.3 + 1.0


async def test_the_check_follows_a_changed_resolver_configuration(tmp_path: pathlib.Path) -> None:
    async with dns_server(tmp_path) as (opts, server):
        check = DnsCheck(opts)
        assert (await check.once()).result == "ok"
        conf = pathlib.Path(opts.resolv_conf)
        await asyncio.to_thread(conf.write_text, "nameserver 127.0.0.2\n")  # nobody there
        assert (await check.once()).result in ("timeout", "error")
        assert server.queries == 1
    status = check.status()
    assert status.window_lookups == 2 and status.window_failures == 1
    assert status.answers == ("10.1.2.3",)  # the latest successful answer


async def test_window_counts_and_latency_with_an_injected_lookup() -> None:
    clock = FakeClock(1000.0)
    outcomes = iter(
        [Outcome("ok", ("10.0.0.1",))] * 3 + [Outcome("timeout", error="timed out")] * 2
    )

    async def lookup(_opts: DnsOptions) -> Outcome:
        clock.advance(0.01)
        return next(outcomes)

    check = DnsCheck(
        DnsOptions(name="x.test", interval=5.0, window=12.0), lookup=lookup, clock=clock
    )
    for i in range(5):
        if i:
            clock.advance(5.0)
        await check.once()
    status = check.status()
    # 5 lookups 5 s apart; the window keeps the last 12 s: the last 3 (1 ok, 2 timeouts)
    assert (status.window_lookups, status.window_failures) == (3, 2)
    assert status.window_results == (("ok", 1), ("timeout", 2))
    assert dict(status.lookups) == {**dict.fromkeys(RESULTS, 0), "ok": 3, "timeout": 2}
    assert status.latency_median_seconds == pytest.approx(0.01)
    assert status.dominant_failure() == "timeout"
    assert status.last_error == "timed out"
    assert status.up == 0 and status.reason == "not running"  # run() was never started


async def test_run_keeps_a_steady_rate_and_reports_up_while_running(
    tmp_path: pathlib.Path,
) -> None:
    async with dns_server(tmp_path) as (opts, server):
        check = DnsCheck(DnsOptions(**{**opts.__dict__, "interval": 0.1}))
        task = asyncio.create_task(check.run())
        await asyncio.wait_for(server.five.wait(), 5)
        assert check.status().up == 1
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert server.queries >= 5
    assert check.status().up == 0


async def test_the_status_survives_the_wire(tmp_path: pathlib.Path) -> None:
    async with dns_server(tmp_path) as (opts, _):
        check = DnsCheck(opts)
        await check.once()
        await check.once()
    status = check.status()
    sent = report("a", "10.0.0.1", ("b",))
    body = {**sent.to_json(), "dns": dns_to_json(status)}
    assert parse_report(json.loads(json.dumps(body))).dns == status


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("kubernetes.default.svc.cluster.local", True),
        ("kubernetes.default.svc.cluster.local.", True),
        ("a", True),
        ("", False),
        ("-bad.example", False),
        ("a..b", False),
        ("x" * 64 + ".example", False),
        ("has space.example", False),
    ],
)
def test_dns_names(text: str, ok: bool) -> None:
    assert is_dns_name(text) is ok
