"""Supervise this node's ``iperf3 -s``: restart it when it exits or stops answering.

iperf3 3.12 can hang on a dead control connection, and a stopped process
still has its listening socket accept connections in the kernel, so a TCP
connect says nothing. The liveness check therefore speaks the first step of
iperf3's control protocol: send a 37-byte cookie and wait for the server's
one-byte state. An idle server answers PARAM_EXCHANGE (9) — it then sees the
check hang up and goes back to listening — and a busy one answers
ACCESS_DENIED (-1); both mean "alive". No answer within the timeout, twice
in a row → kill and restart.

"Busy" is fine while a test runs, but 3.12 can stay stuck in a test whose
client is gone. Polling cannot tell a stuck test from back-to-back tests, so
idleness is read from the server's own output: it prints "Server listening"
each time it is ready again (run under ``stdbuf -oL``: iperf3 block-buffers
a pipe). Busy with no such line for longer than ``max_busy`` (longer than any
test can take) → stuck → restart.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import shutil
import string
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.process import kill, spawn

log = logging.getLogger(__name__)

PARAM_EXCHANGE = 9
ACCESS_DENIED = 0xFF  # -1 as a signed char
COOKIE_SIZE = 37
FAST_POLL = 0.1  # seconds between checks while a fresh server is starting


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    binary: str = "iperf3"
    bind_address: str = "0.0.0.0"
    port: int = 5201
    check_interval: float = 1.0
    check_timeout: float = 1.0
    failures_to_restart: int = 2
    max_busy: float = 60.0
    restart_delay: float = 0.2
    rcv_timeout_ms: int = 10_000


def line_buffered() -> list[str]:
    """iperf3 block-buffers stdout into a pipe; stdbuf makes its lines arrive at once."""
    stdbuf = shutil.which("stdbuf")
    if stdbuf is None:
        log.warning("stdbuf not found: iperf3's output arrives late, stuck tests show late")
        return []
    return [stdbuf, "-oL"]


def server_command(opts: ServerOptions) -> list[str]:
    return [
        *line_buffered(),
        opts.binary,
        "-s",
        "-B",
        opts.bind_address,
        "-p",
        str(opts.port),
        # End a test whose client went silent; 3.12 ignores values above 10 s.
        "--rcv-timeout",
        str(min(opts.rcv_timeout_ms, 10_000)),
    ]


def check_address(bind_address: str) -> str:
    if bind_address in ("0.0.0.0", ""):
        return "127.0.0.1"
    if bind_address == "::":
        return "::1"
    return bind_address


async def check_server(host: str, port: int, wait: float) -> str:
    """'idle', 'busy' or 'dead' (no answer within ``wait`` seconds)."""
    alphabet = string.ascii_lowercase + "234567"  # iperf3's cookie characters
    cookie = "".join(secrets.choice(alphabet) for _ in range(COOKIE_SIZE - 1))
    writer = None
    try:
        async with asyncio.timeout(wait):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(cookie.encode() + b"\0")
            await writer.drain()
            state = await reader.readexactly(1)
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        return "dead"
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=0.5)
    if state[0] == ACCESS_DENIED:
        return "busy"
    # Anything but PARAM_EXCHANGE is not an iperf3 server answering.
    return "idle" if state[0] == PARAM_EXCHANGE else "dead"


class IperfServer:
    """The supervised server. ``run()`` loops until cancelled; state is read by metrics."""

    def __init__(
        self,
        opts: ServerOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_restart: Callable[[str], None] | None = None,
        quiet: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.opts = opts
        self.clock = clock
        # Seconds to hold off checking because a test may be starting right now:
        # a check that reaches an idle server first makes a real client "busy".
        self.quiet = quiet
        self.on_restart = on_restart
        self.restarts = 0
        self.up = False
        self.pid: int | None = None
        self.last_restart_reason = ""
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.last_idle = clock()  # when the server last said it is listening
        self._proc: asyncio.subprocess.Process | None = None

    async def run(self) -> None:
        first = True
        try:
            while True:
                if not first:
                    await asyncio.sleep(self.opts.restart_delay)
                reason = await self._run_once()
                first = False
                self.up = False
                self.restarts += 1
                self.last_restart_reason = reason
                log.warning("iperf3 server restarting: %s", reason)
                if self.on_restart is not None:
                    self.on_restart(reason)
        finally:
            self.up = False
            if self._proc is not None:
                await kill(self._proc)

    async def _run_once(self) -> str:
        """Start the server, watch it; return why it had to be restarted."""
        cmd = server_command(self.opts)
        try:
            proc = await spawn(cmd)
        except OSError as exc:
            await asyncio.sleep(1.0)
            return f"cannot start {cmd[0]}: {exc}"
        self._proc = proc
        self.pid = proc.pid
        assert proc.stdout is not None and proc.stderr is not None
        drains = [
            asyncio.create_task(self._drain(proc.stdout, errors=False)),
            asyncio.create_task(self._drain(proc.stderr, errors=True)),
        ]
        try:
            return await self._watch(proc)
        finally:
            await kill(proc)
            for drain in drains:
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain
            self._proc = None

    async def _watch(self, proc: asyncio.subprocess.Process) -> str:
        host = check_address(self.opts.bind_address)
        failures = 0
        busy_since: float | None = None
        # Poll fast until a fresh server answers, then every check_interval;
        # after a failed check, check again at once (restart within seconds).
        pause = FAST_POLL
        waiter = asyncio.create_task(proc.wait())
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=pause)
                if done:
                    tail = "; ".join(list(self.stderr_tail)[-2:])
                    return f"exited with code {proc.returncode}" + (f" ({tail})" if tail else "")
                hold = self.quiet()
                if hold > 0:
                    pause = hold
                    continue
                state = await check_server(host, self.opts.port, self.opts.check_timeout)
                if state == "dead":
                    failures += 1
                    if failures >= self.opts.failures_to_restart:
                        return f"no answer to {failures} liveness checks"
                    pause = 0.0 if self.up else FAST_POLL
                    continue
                failures = 0
                self.up = True
                pause = self.opts.check_interval
                if state == "busy":
                    busy_since = busy_since if busy_since is not None else self.clock()
                    if self.clock() - max(busy_since, self.last_idle) > self.opts.max_busy:
                        return f"busy for more than {self.opts.max_busy:.0f}s (stuck test)"
                else:
                    busy_since = None
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter

    async def _drain(self, stream: asyncio.StreamReader, *, errors: bool) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").strip()
            if not text:
                continue
            if "Server listening" in text:
                self.last_idle = self.clock()
            if errors:
                self.stderr_tail.append(text)
            log.debug("iperf3 server: %s", text)
