"""What the collector knows: the latest report of every agent, counters, and the pod map.

One ``CollectorState`` per collector, created by the app factory and passed
explicitly (no module-level state). Everything runs on the event loop; the
watch threads hand their events over with ``call_soon_threadsafe``.

Each agent's report is rendered into cached exposition fragments when it
arrives (collector/exposition.py), so a scrape joins bytes. Retransmission
fragments name pods, so they are re-rendered when one of the IPs they name
changes identity (the pod map's dirty IPs) — only for the agents that name it.

The seam for root-cause analysis (collector/live.py): read
``latest_results()`` (every fresh agent's latest TestResult per path) and
``agents`` (the latest report and its age per node); do not mutate.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from collector import exposition as ex
from collector.gcpolicy import FullCollections
from collector.podmap import Identity, PodMap
from netmesh.wire import Network, Report, TestResult


@dataclass(frozen=True, kw_only=True)
class Limits:
    report_ttl: float = 60.0
    stale_after: float = 30.0
    max_agents: int = 5000
    max_series_per_agent: int = 30_000
    light_histogram: bool = True
    max_retransmit_series_per_agent: int = 500
    max_drop_series_per_agent: int = 100


@dataclass
class AgentEntry:
    report: Report
    received_at: float
    block: ex.AgentBlock
    retransmits: ex.RetransmitBlock
    label: str = ""  # '{node="<name>"}', built once (per-scrape families reuse it)
    drops: ex.RetransmitBlock = ex.EMPTY_BLOCK
    drop_keys: frozenset[ex.DropKey] = frozenset()  # drop series shown (kept next time)
    ips: frozenset[str] = frozenset()  # the IPs either block names (identity refresh)


@dataclass
class Stats:
    """Collector self-metrics kept as plain counters."""

    reports: collections.Counter[str] = field(default_factory=collections.Counter)
    expired: int = 0
    watch_restarts: collections.Counter[tuple[str, str]] = field(
        default_factory=collections.Counter
    )
    task_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    block_renders: collections.Counter[str] = field(default_factory=collections.Counter)
    render_seconds: float = 0.0
    auth_mode: str = "none"  # collector/auth.py: none, token or tokenreview
    # On-demand sweeps (collector/sweeps.py): requested, done, expired, refused; and active now.
    sweeps: collections.Counter[str] = field(default_factory=collections.Counter)
    sweeps_active: int = 0
    token_reviews: collections.Counter[str] = field(default_factory=collections.Counter)
    gc: FullCollections = field(default_factory=FullCollections)


class TooManyAgents(Exception):
    """A report from a new agent when ``max_agents`` are already kept."""


class CollectorState:
    """The endpoints of one network: the host agents, or (``network="pod"``) the pod endpoints.

    The host state owns the pod state (``pod_network``): the same node has an
    endpoint on each network, so the two are kept apart, each with its own
    member list, and share the pod map, the clock and the counters.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        pod_map: PodMap | None = None,
        clock: Callable[[], float] = time.time,
        network: Network = "host",
        stats: Stats | None = None,
    ) -> None:
        self.limits = limits
        self.pod_map = pod_map if pod_map is not None else PodMap()
        self.clock = clock
        self.network: Network = network
        self.started_at = clock()
        self.agents: dict[str, AgentEntry] = {}
        self.stats = stats if stats is not None else Stats()
        self._pod_network: CollectorState | None = None
        # Bumped whenever the set of reporting agents or their addresses change.
        self.agents_version = 0
        self._sorted: list[str] | None = None
        self._addresses: dict[str, str] = {}  # agent address → node (static-mode identities)
        self._dirty_ips: set[str] = set()
        self._ip_refs: dict[str, set[str]] = {}  # IP → agents whose retransmits name it

    @property
    def pod_network(self) -> CollectorState:
        """The pod-network endpoints' state (created on first use; the host state owns it)."""
        if self.network != "host":
            raise ValueError("only the host state has a pod network")
        if self._pod_network is None:
            self._pod_network = CollectorState(
                self.limits,
                pod_map=self.pod_map,
                clock=self.clock,
                network="pod",
                stats=self.stats,
            )
        return self._pod_network

    def networks(self) -> tuple[CollectorState, ...]:
        """Host, then pod (when a pod endpoint ever reported)."""
        if self._pod_network is None:
            return (self,)
        return (self, self._pod_network)

    def for_report(self, report: Report) -> CollectorState:
        """The state a report belongs to (by its network)."""
        return self.pod_network if report.network == "pod" else self

    # ---- reports
    def accept(self, report: Report) -> None:
        """Store a validated report (replacing the agent's previous one)."""
        if report.network != self.network:
            if self.network != "host":
                raise ValueError(f"a {report.network}-network report for the pod-network state")
            self.pod_network.accept(report)
            return
        now = self.clock()
        old = self.agents.get(report.node)
        if old is None and len(self.agents) >= self.limits.max_agents:
            raise TooManyAgents(
                f"already keeping {len(self.agents)} agents (max_agents); "
                f"not accepting new agent {report.node!r}"
            )
        if old is None or (old.report.address, old.report.iperf3_port) != (
            report.address,
            report.iperf3_port,
        ):
            if old is not None:
                self._forget_address(report.node, old.report.address)
            self._set_address(report.node, report.address)
            self.agents_version += 1
            self._sorted = None
        block = ex.render_agent(
            report,
            max_series=self.limits.max_series_per_agent,
            light_histogram=self.limits.light_histogram,
        )
        self.stats.block_renders["path"] += 1
        entry = AgentEntry(
            report=report,
            received_at=now,
            block=block,
            retransmits=ex.RetransmitBlock(b"", frozenset(), frozenset(), 0, 0),
            label=old.label if old is not None else ex.labels(("node",), (report.node,)),
        )
        self.agents[report.node] = entry
        self._render_retransmits(report.node, entry, old.retransmits if old else None, old)

    def expire(self) -> list[str]:
        """Drop agents whose latest report is older than the TTL; return their names.

        The host state sweeps the pod network's endpoints too (named ``node (pod)``).
        """
        cutoff = self.clock() - self.limits.report_ttl
        gone = [name for name, e in self.agents.items() if e.received_at < cutoff]
        for name in gone:
            self.remove(name)
            self.stats.expired += 1
        if self._pod_network is not None:
            gone += [f"{name} (pod)" for name in self._pod_network.expire()]
        return gone

    def remove(self, name: str) -> None:
        entry = self.agents.pop(name, None)
        if entry is None:
            return
        self._forget_address(name, entry.report.address)
        self._unref(name, entry.ips)
        self.agents_version += 1
        self._sorted = None

    def sorted_names(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.agents)
        return self._sorted

    def age(self, entry: AgentEntry, now: float) -> float:
        return max(0.0, now - entry.received_at)

    def is_fresh(self, entry: AgentEntry, now: float) -> bool:
        return self.age(entry, now) <= self.limits.stale_after

    def latest_results(self) -> Iterator[TestResult]:
        """The seam for RCA: every kept agent's latest result per (destination, protocol)."""
        for name in self.sorted_names():
            yield from self.agents[name].report.results

    # ---- identities
    def resolve(self, ip: str) -> Identity:
        found = self.pod_map.resolve(ip)
        if found is not None:
            return found
        node = self._addresses.get(ip)
        if node is not None:
            return Identity("", node, "node")
        return Identity("", ip, "ip")

    def _set_address(self, node: str, address: str) -> None:
        self._addresses[address] = node
        self._dirty_ips.add(address)

    def _forget_address(self, node: str, address: str) -> None:
        if self._addresses.get(address) == node:
            del self._addresses[address]
            self._dirty_ips.add(address)

    def _unref(self, name: str, ips: frozenset[str]) -> None:
        for ip in ips:
            refs = self._ip_refs.get(ip)
            if refs is not None:
                refs.discard(name)
                if not refs:
                    del self._ip_refs[ip]

    def _render_retransmits(
        self,
        name: str,
        entry: AgentEntry,
        previous: ex.RetransmitBlock | None,
        old: AgentEntry | None = None,
    ) -> None:
        """Render the identity-dependent blocks (retransmissions, drops by remote end)."""
        old_ips = old.ips if old is not None else frozenset()
        block = ex.render_retransmits(
            name,
            entry.report.retransmits,
            self.resolve,
            cap=self.limits.max_retransmit_series_per_agent,
            previous=previous.keys if previous is not None else frozenset(),
        )
        self.stats.block_renders["retransmit"] += 1
        entry.retransmits = block
        drops = entry.report.drops
        if drops is not None and drops.flows:
            entry.drops, entry.drop_keys = ex.render_drops(
                name,
                drops.flows,
                self.resolve,
                cap=self.limits.max_drop_series_per_agent,
                previous=old.drop_keys if old is not None else frozenset(),
            )
        else:
            entry.drops, entry.drop_keys = (
                ex.RetransmitBlock(b"", frozenset(), frozenset(), 0, 0),
                frozenset(),
            )
        entry.ips = block.ips | entry.drops.ips
        self._unref(name, old_ips - entry.ips)
        for ip in entry.ips - old_ips:
            self._ip_refs.setdefault(ip, set()).add(name)

    def refresh_identities(self) -> int:
        """Re-render the retransmission fragments that name an IP whose identity changed."""
        dirty = self.pod_map.take_dirty()
        if dirty is None:  # the whole map changed (a re-list): everyone
            names = set(self.agents)
        else:
            dirty |= self._dirty_ips
            names = set()
            for ip in dirty:
                names |= self._ip_refs.get(ip, set())
        self._dirty_ips = set()
        for name in names:
            entry = self.agents.get(name)
            if entry is not None:
                self._render_retransmits(name, entry, entry.retransmits, entry)
        return len(names)
