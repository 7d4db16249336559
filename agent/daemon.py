"""The agent's main loop: wire settings, state, server, tests, reporting and HTTP together."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol as TypingProtocol

from aiohttp import web

from agent.dns import DnsCheck, DnsOptions
from agent.drops import Drops, drops_config
from agent.http import create_app
from agent.iperf import TestId, failed
from agent.light import LightOptions, LightTier
from agent.metrics import make_registry
from agent.netinfo import interface_mtu, interface_of, link_speed_of
from agent.ondemand import SweepSlot, prune, sweep_slot
from agent.probe import Probe, probe_config
from agent.reporter import Reporter
from agent.runner import ClientOptions, run_test
from agent.schedule import SETTINGS_NAMES, PlanSettings, Slot, Test, plan
from agent.server import IperfServer, ServerOptions
from agent.service import ServiceCheck, ServiceOptions
from agent.settings import AgentSettings
from agent.state import AgentState
from netmesh.config import project
from netmesh.tasks import background
from netmesh.wire import Member, MemberList, TestResult, Transport

log = logging.getLogger(__name__)


class RunTest(TypingProtocol):
    def __call__(
        self,
        *,
        source: str,
        peer: Member,
        protocol: Transport,
        opts: ClientOptions,
        deadline: float,
        clock: Callable[[], float],
    ) -> Awaitable[TestResult]: ...


# Option names → the AgentSettings names where they differ (for netmesh.config.project).
OPTION_NAMES = {
    **SETTINGS_NAMES,
    "protocols": "protocol_list",
    "binary": "iperf3_binary",
    "port": "iperf3_port",
    "check_interval": "server_check_interval",
    "check_timeout": "server_check_timeout",
}


def plan_settings(settings: AgentSettings) -> PlanSettings:
    return project(settings, PlanSettings, rename=OPTION_NAMES)


def client_options(settings: AgentSettings) -> ClientOptions:
    # Peers reach this node's server at the advertised address: send tests from it.
    return project(settings, ClientOptions, rename=OPTION_NAMES, bind_address=settings.address)


def server_options(settings: AgentSettings) -> ServerOptions:
    return project(
        settings,
        ServerOptions,
        rename=OPTION_NAMES,
        defaults=("failures_to_restart", "restart_delay", "rcv_timeout_ms"),
        # Longer than any test can take: a test never outlives its slot.
        max_busy=2 * plan_settings(settings).slot_seconds + 2,
    )


class TestLoop:
    """Run this node's test of every slot; never overrun a slot, never start late.

    A test may start up to half the guard time after its slot began; later
    than that it could overrun into the next slot (and collide with the next
    test of the same server), so it is skipped and counted instead.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        state: AgentState,
        settings: PlanSettings,
        opts: ClientOptions,
        *,
        members: Callable[[], Sequence[Member]],
        runner: RunTest = run_test,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        heard: Callable[[], bool] = lambda: True,
    ) -> None:
        self.state = state
        self.settings = settings
        self.opts = opts
        self.members = members
        self.runner = runner
        self.clock = clock
        self.sleep = sleep
        # With a collector: has the first report been answered (or failed)? Until then
        # this node may not know of a running on-demand sweep (e.g. after a restart)
        # and must not run the budgeted plan into it. (run_agent also waits here for
        # the eBPF probes to finish compiling.)
        self.heard = heard
        self.last_slot = -1
        self.first_step = True

    async def run(self, iterations: int | None = None) -> None:
        done = 0
        while iterations is None or done < iterations:
            await self.step()
            done += 1

    async def step(self) -> None:
        now = self.clock()
        prune(self.state.sweeps, now, self.settings)
        on_demand = sweep_slot(
            self.state.sweeps, self.members(), self.state.me.name, now, self.settings
        )
        if on_demand is not None:
            # A sweep holds this slot on every node: the budgeted plan waits.
            await self._sweep_step(on_demand, now)
            return
        slot = plan(self.members(), self.state.me.name, now, self.settings)
        if not self.heard():
            await self.sleep(max(0.0, slot.end - self.clock()) + 0.001)
            return
        log.debug(
            "slot %d at +%.3fs: %s",
            slot.number,
            now - slot.start,
            f"{slot.test.protocol} to {slot.test.server.name}" if slot.test else "idle",
        )
        if slot.test is not None and slot.number != self.last_slot:
            self.last_slot = slot.number
            await self._run_or_skip(slot, slot.test, now)
        self.first_step = False
        await self.sleep(max(0.0, slot.end - self.clock()) + 0.001)

    async def _sweep_step(self, on_demand: SweepSlot, now: float) -> None:
        slot = on_demand.slot
        if slot.number != self.last_slot:
            if on_demand.missing:
                self.last_slot = slot.number
                self._missing_peer(on_demand, now)
            elif slot.test is not None:
                self.last_slot = slot.number
                await self._run_or_skip(slot, slot.test, now, sweep=on_demand.sweep)
        self.first_step = False
        await self.sleep(max(0.0, slot.end - self.clock()) + 0.001)

    def _missing_peer(self, on_demand: SweepSlot, now: float) -> None:
        """A sweep test towards a node that is not (any more) a member: a failed result."""
        test = TestId(
            source=self.state.me.name,
            destination=on_demand.missing,
            protocol=on_demand.protocol,
            started_at=now,
        )
        result = failed(test, result="error", message="not a member", duration=0.0)
        self.state.record(dataclasses.replace(result, sweep=on_demand.sweep))

    async def _run_or_skip(self, slot: Slot, test: Test, now: float, sweep: str = "") -> None:
        lag = now - slot.start
        if now + self.settings.omit + self.settings.duration > slot.end - self.settings.guard / 2:
            # Joining mid-slot at start-up is not a scheduling problem: just wait.
            if not self.first_step:
                self.state.skipped_tests["late"] += 1
                log.warning(
                    "skipping test of %s in slot %d: started %.2fs late",
                    test.server.name,
                    slot.number,
                    lag,
                )
            return
        self.state.scheduler_lag_seconds = lag
        result = await self.runner(
            source=self.state.me.name,
            peer=test.server,
            protocol=test.protocol,
            opts=self.opts,
            deadline=slot.end - 0.05,
            clock=self.clock,
        )
        if sweep:
            result = dataclasses.replace(result, sweep=sweep)
        self.state.record(result)
        if not result.ok:
            log.info(
                "test %s -> %s (%s): %s: %s",
                result.source,
                result.destination,
                result.protocol,
                result.result,
                result.message,
            )


def start_window(settings: PlanSettings, now: float) -> float:
    """Seconds until tests can no longer be starting (0 outside the window).

    Tests start at a slot's start and at most guard/2 later; liveness checks
    of the local iperf3 server keep out of [start - 0.2 s, start + guard/2 + 0.2 s].
    """
    length = settings.slot_seconds
    into = now % length
    if into >= length - 0.2:
        return length - into + settings.guard / 2 + 0.2
    end = settings.guard / 2 + 0.2
    return end - into if into < end else 0.0


def mtu_source(settings: AgentSettings) -> Callable[[], int | None] | None:
    """light_mtu 0 (auto): read the MTU of the advertise address's interface, each time."""
    if settings.light_mtu != 0 or settings.light_mtu_interval <= 0:
        return None
    ifname = interface_of(settings.address)
    if ifname is None:
        return None
    return lambda: interface_mtu(ifname)


def light_options(settings: AgentSettings) -> LightOptions:
    mtu = settings.light_mtu
    if mtu == 0:
        ifname = interface_of(settings.address)
        mtu = (interface_mtu(ifname) if ifname else None) or 1500
    return project(
        settings,
        LightOptions,
        prefix="light_",
        rename={"port": "light_port", "window": "light_window"},
        defaults=("grace", "size", "tick"),
        mtu=mtu if settings.light_mtu_interval > 0 else 0,
    )


PROBE_SETTLE_MAX = 60.0  # s the heavy tier waits at most for the eBPF probes to load


def probes_settled(state: AgentState, runs_probe: bool, running_for: float) -> bool:
    """Whether the heavy tier may test: BCC compiles for seconds of a full core, and a test
    meanwhile would measure this node's CPU (UDP receivers drop, TCP slows), so the plan
    waits for both eBPF probes' load attempts (loaded or down), at most PROBE_SETTLE_MAX."""
    if not runs_probe or running_for > PROBE_SETTLE_MAX:
        return True
    return state.probe is not None and state.drops is not None


def dns_options(settings: AgentSettings) -> DnsOptions:
    return project(settings, DnsOptions, prefix="dns_", defaults=("port",))


def service_options(settings: AgentSettings) -> ServiceOptions:
    return project(settings, ServiceOptions, prefix="service_")


def initial_members(settings: AgentSettings) -> MemberList:
    members = {m.name: m for m in settings.static_peers}
    members[settings.node_name] = settings.me
    return MemberList(epoch=0, members=tuple(sorted(members.values())))


async def run_agent(settings: AgentSettings, *, ready: asyncio.Event | None = None) -> None:
    """Run until cancelled."""
    state = AgentState(
        me=settings.me,
        http_port=settings.http_port,
        labels=settings.labels,
        link_speed=settings.link_speed or link_speed_of(settings.address),
        network=settings.network_name,
    )
    state.set_members(initial_members(settings))
    state.slot_seconds = plan_settings(settings).slot_seconds
    state.report_interval = settings.report_interval
    server = IperfServer(server_options(settings))
    server.quiet = lambda: start_window(plan_settings(settings), time.time())
    state.server_up = lambda: server.up
    state.server_restarts = lambda: server.restarts

    def failed(name: str) -> None:
        state.task_failures[name] += 1

    begun = time.monotonic()
    loop = TestLoop(
        state,
        plan_settings(settings),
        client_options(settings),
        members=lambda: state.members.members,
        heard=lambda: (
            (not settings.collector_url or sum(state.reports.values()) > 0)
            and probes_settled(state, settings.runs_probe, time.monotonic() - begun)
        ),
    )
    app = create_app(state, make_registry(state))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.bind_address, settings.http_port)
    await site.start()
    log.info(
        "agent %s (%s network) listening on %s:%d (iperf3 on port %d), %d members",
        settings.node_name,
        settings.network_name,
        settings.bind_address,
        settings.http_port,
        settings.iperf3_port,
        len(state.members.members),
    )
    work: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("iperf3-server", server.run),
        ("tests", loop.run),
    ]
    if settings.runs_probe:  # the host network only: a pod endpoint loads no BPF
        probe = Probe(probe_config(settings), state)
        # BCC compiles one program at a time: the drop probe waits for the retransmission
        # probe's status (loaded or not) before it compiles.
        drops = Drops(drops_config(settings), state, ready=lambda: state.probe is not None)
        work += [("probe", probe.run), ("drops", drops.run)]
    if settings.light_port:
        light = LightTier(
            light_options(settings),
            settings.me,
            lambda: state.members,
            mtu_source=mtu_source(settings),
        )
        state.light = light.status
        work.append(("light", light.run))
    if settings.dns_name:
        dns_check = DnsCheck(dns_options(settings))
        state.dns = dns_check.status
        work.append(("dns", dns_check.run))
    if settings.service_target:
        service_check = ServiceCheck(service_options(settings))
        state.service = service_check.status
        work.append(("service", service_check.run))
    if settings.collector_url:
        reporter = Reporter(
            state,
            collector_url=settings.collector_url,
            interval=settings.report_interval,
            timeout=settings.report_timeout,
            token_file=settings.auth_token_file,
        )
        work.append(("reporter", reporter.run))
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(runner.cleanup)  # last: after every task has ended
        tasks = [
            await stack.enter_async_context(background(name, run, on_failure=failed))
            for name, run in work
        ]
        if ready is not None:
            ready.set()
        await asyncio.gather(*tasks)
