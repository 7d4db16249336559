"""The DNS check: resolve one name at a steady rate through this node's resolver configuration.

Every ``interval`` seconds the check resolves ``name`` (record type A or
AAAA) with the nameservers of ``resolv_conf`` (re-read for every lookup, so
a changed resolver configuration is followed), each lookup bounded by
``timeout``. It keeps lifetime counters by result (``netmesh.dnsreport.RESULTS``)
and, over the last ``window`` seconds, the lookups, their failures and the
latency of the answered ones; the latest successful answer is reported so
that the collector can compare it with what the other nodes get.

The resolving itself is injected (``Lookup``): the default uses dnspython's
asyncio resolver, which parses resolv.conf like libc does but gives each
failure its own exception (NXDOMAIN, SERVFAIL, timeout ...) and a hard time
limit, neither of which ``getaddrinfo`` in a thread can.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.message
import dns.rcode
import dns.resolver

from agent.periodic import PeriodicCheck, ResultWindow
from netmesh.dnsreport import FAILURES, OK, RESULTS, DnsStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DnsOptions:
    name: str
    record_type: str = "A"
    interval: float = 5.0
    timeout: float = 2.0
    window: float = 30.0
    resolv_conf: str = "/etc/resolv.conf"
    port: int = 53  # of every nameserver (tests point it at their own server)


@dataclass(frozen=True)
class Outcome:
    """One lookup: its result (one of RESULTS), the answer (sorted addresses), an error text."""

    result: str
    answers: tuple[str, ...] = ()
    error: str = ""
    servers: tuple[str, ...] = ()


Lookup = Callable[[DnsOptions], Awaitable[Outcome]]


def _no_nameservers(exc: dns.resolver.NoNameservers) -> Outcome:
    """SERVFAIL or REFUSED from every server (dnspython's NoNameservers), else error."""
    rcodes = set()
    for err in exc.kwargs.get("errors", []) or []:
        response = err[4] if len(err) > 4 else None
        if isinstance(response, dns.message.Message):
            rcodes.add(response.rcode())
    if rcodes == {dns.rcode.REFUSED}:
        return Outcome("refused", error=str(exc))
    if dns.rcode.SERVFAIL in rcodes:
        return Outcome("servfail", error=str(exc))
    return Outcome("error", error=str(exc))


async def resolve(opts: DnsOptions) -> Outcome:
    """Resolve ``opts.name`` once with dnspython; every failure becomes an Outcome, not raised."""
    try:
        resolver = dns.asyncresolver.Resolver(filename=opts.resolv_conf)
        resolver.port = opts.port
    except (dns.resolver.NoResolverConfiguration, OSError) as exc:
        return Outcome("error", error=f"{opts.resolv_conf}: {exc or 'no nameservers'}")
    servers = tuple(str(s) for s in resolver.nameservers)
    try:
        answer = await resolver.resolve(opts.name, opts.record_type, lifetime=opts.timeout)
    except dns.resolver.NXDOMAIN as exc:
        return Outcome("nxdomain", error=str(exc), servers=servers)
    except dns.resolver.NoAnswer as exc:
        return Outcome("no_answer", error=str(exc), servers=servers)
    except dns.resolver.NoNameservers as exc:
        return _replace_servers(_no_nameservers(exc), servers)
    except dns.exception.Timeout as exc:
        return Outcome("timeout", error=str(exc), servers=servers)
    except (dns.exception.DNSException, OSError, ValueError) as exc:
        return Outcome("error", error=f"{type(exc).__name__}: {exc}", servers=servers)
    addresses = tuple(sorted({rr.to_text() for rr in answer}))
    return Outcome(OK, answers=addresses, servers=servers)


def _replace_servers(outcome: Outcome, servers: tuple[str, ...]) -> Outcome:
    return Outcome(outcome.result, outcome.answers, outcome.error, servers)


class DnsCheck(PeriodicCheck):
    """Resolve at a steady rate, count, and summarise the window (``status()``)."""

    def __init__(
        self,
        opts: DnsOptions,
        *,
        lookup: Lookup = resolve,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.opts = opts
        self.lookup = lookup
        self.clock = clock
        self.sleep = sleep
        self.window = ResultWindow(RESULTS, FAILURES, opts.window, clock)
        self.answers: tuple[str, ...] = ()
        self.servers: tuple[str, ...] = ()
        self.last_error = ""
        self.interval = opts.interval

    async def once(self) -> Outcome:
        started = self.clock()
        try:
            # The resolver has its own lifetime; this bound holds even if it ignored it.
            outcome = await asyncio.wait_for(self.lookup(self.opts), self.opts.timeout + 1.0)
        except TimeoutError:
            outcome = Outcome("timeout", error=f"no answer within {self.opts.timeout + 1.0:.1f} s")
        self.record(outcome, started, self.clock() - started)
        return outcome

    def record(self, outcome: Outcome, when: float, latency: float) -> None:
        result = self.window.record(outcome.result, when, latency)
        if outcome.servers:
            self.servers = outcome.servers
        if result == OK:
            self.answers = outcome.answers
        else:
            self.last_error = outcome.error[:500]
            log.debug("DNS lookup of %s: %s: %s", self.opts.name, result, outcome.error)

    def status(self) -> DnsStatus:
        w = self.window.summary()
        up, reason = self.liveness()
        return DnsStatus(
            up=up,
            reason=reason,
            name=self.opts.name,
            record_type=self.opts.record_type,
            servers=self.servers,
            lookups=w.counts,
            window_seconds=w.window_seconds,
            window_lookups=w.window_total,
            window_failures=w.window_failures,
            window_results=w.window_results,
            latency_median_seconds=w.latency_median_seconds,
            latency_p99_seconds=w.latency_p99_seconds,
            answers=self.answers,
            last_error=self.last_error,
        )
