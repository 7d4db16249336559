"""IperfServer against real iperf3 on loopback: stuck tests vs back-to-back tests."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
import subprocess
import time
from collections.abc import AsyncIterator

import pytest

from agent.server import IperfServer, ServerOptions, check_server
from tests.helpers import async_wait_for, free_port

HOST = "127.0.0.7"


@pytest.fixture
async def server() -> AsyncIterator[IperfServer]:
    srv = IperfServer(ServerOptions(bind_address=HOST, port=free_port(HOST), max_busy=3.0))
    task = asyncio.create_task(srv.run())

    async def up() -> bool:
        return srv.up

    await async_wait_for(up, 10, what="server up")
    yield srv
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def client(
    srv: IperfServer, seconds: int, out: pathlib.Path | None = None
) -> subprocess.Popen[bytes]:
    cmd = ["iperf3", "-c", HOST, "-p", str(srv.opts.port), "-t", str(seconds), "-b", "10M"]
    if out is None:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with out.open("wb") as fh:
        return subprocess.Popen(["stdbuf", "-oL", *cmd], stdout=fh, stderr=subprocess.STDOUT)


async def test_stuck_test_is_restarted(server: IperfServer, tmp_path: pathlib.Path) -> None:
    # As the agent does around slot starts: no liveness checks while the test starts.
    server.quiet = lambda: 0.1
    out = tmp_path / "client.out"
    proc = client(server, 30, out)
    try:

        async def running() -> bool:
            nonlocal proc
            text = out.read_text()
            if proc.poll() is not None:  # turned away by an in-flight check: try again
                proc = client(server, 30, out)
            return "0.00-1.00" in text

        await async_wait_for(running, 10, what="the client's first interval report")
        server.quiet = lambda: 0.0
        proc.send_signal(signal.SIGSTOP)  # the client goes silent mid-test
        frozen = time.monotonic()

        async def restarted() -> bool:
            return server.restarts >= 1 and server.up

        await async_wait_for(restarted, 15, what="restart of the stuck server")
        print(f"stuck server restarted {time.monotonic() - frozen:.1f}s after the client froze")
        assert "stuck test" in server.last_restart_reason
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()


async def test_back_to_back_tests_are_not_stuck(server: IperfServer) -> None:
    started = time.monotonic()
    while time.monotonic() - started < 2.5 * server.opts.max_busy:
        proc = client(server, 1)
        await asyncio.to_thread(proc.wait, 10)
    assert server.restarts == 0, server.last_restart_reason


async def test_a_listener_that_is_not_iperf3_counts_as_dead() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(37)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    port = free_port(HOST)
    srv = await asyncio.start_server(answer, HOST, port)
    try:
        assert await check_server(HOST, port, 1.0) == "dead"
    finally:
        srv.close()
        await srv.wait_closed()
