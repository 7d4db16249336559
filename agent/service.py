"""The Service check: a TCP connect to one Service (host:port) at a steady rate.

In Kubernetes the target is the collector's own ClusterIP Service: a connect
from this node goes through whatever implements Services here (kube-proxy's
iptables/IPVS rules, or a CNI's eBPF replacement) to a backend, so a node
whose Service rules are broken, stale or blackholed fails its connects while
every other node's succeed. Every ``interval`` seconds the check resolves the
target's name (when it is one), connects within ``timeout``, and closes; it
keeps lifetime counters by result (netmesh.servicereport.RESULTS) and, over
the last ``window`` seconds, the connects, their failures and the connect
times of the good ones.

A name that does not resolve is the DNS layer's failure, not the Service's:
the check then connects to the address it resolved last (a ClusterIP does not
change while its Service exists) and counts "unresolved" only while it never
resolved at all. Resolving and connecting are injected (``Connect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.periodic import PeriodicCheck, ResultWindow
from netmesh.addresses import is_ip
from netmesh.servicereport import FAILURES, OK, RESULTS, UNRESOLVED, ServiceStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ServiceOptions:
    target: str  # host:port (host a name, an IPv4 address or a bracketed IPv6 address)
    interval: float = 5.0
    timeout: float = 2.0
    window: float = 30.0


def split_target(target: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` → (host, port); ValueError with the reason otherwise."""
    host, sep, port_text = target.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{target!r}: expected host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{target!r}: an IPv6 address goes in brackets, [addr]:port")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{target!r}: port {port_text!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{target!r}: port {port} is not 1..65535")
    return host, port


@dataclass(frozen=True)
class Outcome:
    """One attempt: its result (one of RESULTS), and an error text."""

    result: str
    error: str = ""


# (address, port, timeout) → Outcome; never raises
Connect = Callable[[str, int, float], Awaitable[Outcome]]
# (name, port, timeout) → an address; raises OSError or TimeoutError
Resolve = Callable[[str, int, float], Awaitable[str]]

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL}


def classify(exc: BaseException) -> Outcome:
    """A connect's exception → its result."""
    if isinstance(exc, TimeoutError):
        return Outcome("timeout", "no answer to the connect (SYN) in time")
    if isinstance(exc, ConnectionRefusedError):
        return Outcome("refused", str(exc))
    if isinstance(exc, ConnectionResetError):
        return Outcome("reset", str(exc))
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return Outcome("unreachable", str(exc))
    return Outcome("error", f"{type(exc).__name__}: {exc}")


async def connect(address: str, port: int, seconds: float) -> Outcome:
    """One TCP connect (and close) to ``address``:``port`` within ``seconds``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), seconds)
    except (OSError, TimeoutError) as exc:
        return classify(exc)
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):  # connected is what counts
        await asyncio.wait_for(writer.wait_closed(), seconds)
    return Outcome(OK)


async def resolve(name: str, port: int, seconds: float) -> str:
    """The first TCP address of ``name`` by the system resolver (getaddrinfo), in ``seconds``."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), seconds
    )
    if not infos:
        raise OSError(f"{name}: no address")
    return str(infos[0][4][0])


class ServiceCheck(PeriodicCheck):
    """Connect at a steady rate, count, and summarise the window (``status()``)."""

    def __init__(
        self,
        opts: ServiceOptions,
        *,
        connect: Connect = connect,
        resolve: Resolve = resolve,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.opts = opts
        self.host, self.port = split_target(opts.target)
        self.connect = connect
        self.resolve = resolve
        self.clock = clock
        self.sleep = sleep
        self.window = ResultWindow(RESULTS, FAILURES, opts.window, clock)
        self.address = self.host if is_ip(self.host) else ""
        self.last_error = ""
        self.interval = opts.interval

    async def _address(self) -> str:
        """The address to connect to: resolved now, else the last one ('' when none)."""
        if is_ip(self.host):
            return self.host
        try:
            self.address = await self.resolve(self.host, self.port, self.opts.timeout)
        except (OSError, TimeoutError) as exc:
            self.last_error = f"resolving {self.host}: {exc or type(exc).__name__}"[:500]
            log.debug("Service check: %s", self.last_error)
        return self.address

    async def once(self) -> Outcome:
        address = await self._address()
        started = self.clock()
        if not address:
            outcome = Outcome(UNRESOLVED, self.last_error)
        else:
            try:
                # connect has its own bound; this one holds even if it ignored it.
                outcome = await asyncio.wait_for(
                    self.connect(address, self.port, self.opts.timeout), self.opts.timeout + 1.0
                )
            except TimeoutError:
                outcome = Outcome("timeout", f"no answer within {self.opts.timeout + 1.0:.1f} s")
        result = self.window.record(outcome.result, started, self.clock() - started)
        if result != OK:
            self.last_error = outcome.error[:500]
            log.debug("Service connect to %s (%s): %s", self.opts.target, address, outcome.error)
        return outcome

    def status(self) -> ServiceStatus:
        w = self.window.summary()
        up, reason = self.liveness()
        return ServiceStatus(
            up=up,
            reason=reason,
            target=self.opts.target,
            address=self.address,
            connects=w.counts,
            window_seconds=w.window_seconds,
            window_connects=w.window_total,
            window_failures=w.window_failures,
            window_results=w.window_results,
            latency_median_seconds=w.latency_median_seconds,
            latency_p99_seconds=w.latency_p99_seconds,
            last_error=self.last_error,
        )
