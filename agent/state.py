"""What the agent knows right now: latest results, counters, members, health.

One instance per agent, owned by the daemon and passed explicitly to the
HTTP handlers and the reporter (no module-level state). Everything runs on
one event loop, so no locks are needed.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from netmesh.labels import Labels
from netmesh.ondemand import MAX_SWEEPS, Sweep
from netmesh.wire import (
    AgentHealth,
    DnsStatus,
    DropStatus,
    LightStatus,
    Member,
    MemberList,
    Network,
    ProbeStatus,
    Report,
    RetransmitFlow,
    ServiceStatus,
    TestCount,
    TestResult,
    Transport,
)

PathKey = tuple[str, Transport]
MAX_KNOWN_SWEEPS = 4 * MAX_SWEEPS  # (destination, protocol)


@dataclass
class AgentState:
    me: Member
    http_port: int
    network: Network = "host"
    started_at: float = field(default_factory=time.time)
    members: MemberList = field(default_factory=lambda: MemberList(epoch=0, members=()))
    results: dict[PathKey, TestResult] = field(default_factory=dict)
    test_counts: collections.Counter[tuple[str, Transport, str]] = field(
        default_factory=collections.Counter
    )
    skipped_tests: collections.Counter[str] = field(default_factory=collections.Counter)
    scheduler_lag_seconds: float = 0.0
    reports: collections.Counter[str] = field(default_factory=collections.Counter)
    collector_up: bool = False
    last_report_at: float = 0.0
    task_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    # Filled by the probe (agent/probe.py) when it runs.
    probe: ProbeStatus | None = None
    retransmits: tuple[RetransmitFlow, ...] = ()
    # Filled by the drop-reason probe (agent/drops.py) when it runs.
    drops: DropStatus | None = None
    # Read from the supervised iperf3 server.
    server_up: Callable[[], bool] = lambda: False
    server_restarts: Callable[[], int] = lambda: 0
    # The light tier's status and paths, when it runs (agent/light.py).
    light: Callable[[], LightStatus | None] = lambda: None
    # Topology labels and link speed (bits/s, None = unknown), from settings or sysfs.
    labels: Labels = ()
    link_speed: int | None = None
    # The DNS check's status, when it runs (agent/dns.py).
    dns: Callable[[], DnsStatus | None] = lambda: None
    # The Service check's status, when it runs (agent/service.py).
    service: Callable[[], ServiceStatus | None] = lambda: None
    # On-demand sweeps heard from the collector, kept until their window ends
    # (agent/daemon.py TestLoop prunes them), even when the collector stops listing them.
    sweeps: dict[str, Sweep] = field(default_factory=dict)
    slot_seconds: float = 0.0
    report_interval: float = 0.0

    def adopt_sweeps(self, sweeps: Iterable[Sweep]) -> None:
        for sweep in sweeps:
            if len(self.sweeps) < MAX_KNOWN_SWEEPS:
                self.sweeps.setdefault(sweep.id, sweep)

    def record(self, result: TestResult) -> None:
        self.results[(result.destination, result.protocol)] = result
        self.test_counts[(result.destination, result.protocol, result.result)] += 1

    def set_members(self, members: MemberList) -> None:
        """Adopt a member list; results and counters of departed peers are dropped."""
        self.members = members
        self.forget_except(m.name for m in members.members)

    def forget_except(self, names: Iterable[str]) -> None:
        keep = set(names)
        for key in [k for k in self.results if k[0] not in keep]:
            del self.results[key]
        for ckey in [k for k in self.test_counts if k[0] not in keep]:
            del self.test_counts[ckey]

    def health(self) -> AgentHealth:
        return AgentHealth(
            iperf3_server_up=int(self.server_up()),
            iperf3_server_restarts=self.server_restarts(),
            scheduler_lag_seconds=max(0.0, self.scheduler_lag_seconds),
            skipped_tests=sum(self.skipped_tests.values()),
            members=len(self.members.members),
            epoch=self.members.epoch,
            slot_seconds=self.slot_seconds,
            report_interval=self.report_interval,
        )

    def report(self, now: float) -> Report:
        return Report(
            node=self.me.name,
            address=self.me.address,
            iperf3_port=self.me.iperf3_port,
            http_port=self.http_port,
            generated_at=now,
            started_at=self.started_at,
            results=tuple(self.results[k] for k in sorted(self.results)),
            tests=tuple(
                TestCount(destination=d, protocol=p, result=r, count=n)
                for (d, p, r), n in sorted(self.test_counts.items())
            ),
            agent=self.health(),
            probe=self.probe,
            retransmits=self.retransmits,
            light=self.light(),
            labels=self.labels,
            link_speed_bits_per_second=self.link_speed,
            drops=self.drops,
            dns=self.dns(),
            service=self.service(),
            network=self.network,
        )
