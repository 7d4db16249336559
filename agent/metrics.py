"""The agent's own /metrics (this node only, for debugging), read from AgentState at scrape time.

A custom prometheus_client collector instead of long-lived Gauge objects:
series of departed peers vanish with the state, and nothing is mutated
from two places.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.state import AgentState
from netmesh.families import PATH_GAUGES, PATH_LABELS, TESTS_TOTAL, TESTS_TOTAL_HELP


class AgentCollector(Collector):
    def __init__(self, state: AgentState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        s = self.state
        me = s.me.name
        for fam in PATH_GAUGES:
            g = GaugeMetricFamily(fam.name, fam.help, labels=PATH_LABELS)
            for (dest, proto), result in sorted(s.results.items()):
                value = fam.value(result)
                if value is not None:
                    g.add_metric([me, dest, proto], value)
            yield g
        tests = CounterMetricFamily(TESTS_TOTAL, TESTS_TOTAL_HELP, labels=[*PATH_LABELS, "result"])
        for (dest, proto, res), n in sorted(s.test_counts.items()):
            tests.add_metric([me, dest, proto, res], n)
        yield tests

        yield _gauge(
            "netmesh_agent_iperf3_server_up",
            "1 if the local iperf3 server answers liveness checks.",
            float(s.server_up()),
        )
        yield _counter(
            "netmesh_agent_iperf3_server_restarts",
            "Times the local iperf3 server was restarted.",
            s.server_restarts(),
        )
        yield _gauge(
            "netmesh_agent_scheduler_lag_seconds",
            "How late the latest test started after its slot began.",
            s.scheduler_lag_seconds,
        )
        skipped = CounterMetricFamily(
            "netmesh_agent_skipped_tests", "Tests not started, by reason.", labels=["reason"]
        )
        for reason, n in sorted(s.skipped_tests.items()):
            skipped.add_metric([reason], n)
        yield skipped
        yield _gauge(
            "netmesh_agent_members",
            "Nodes in the member list this agent plans with.",
            float(len(s.members.members)),
        )
        yield _gauge(
            "netmesh_agent_collector_up",
            "1 if the latest report reached the collector.",
            float(s.collector_up),
        )
        reports = CounterMetricFamily(
            "netmesh_agent_reports",
            "Reports pushed to the collector, by result.",
            labels=["result"],
        )
        for res, n in sorted(s.reports.items()):
            reports.add_metric([res], n)
        yield reports
        failures = CounterMetricFamily(
            "netmesh_agent_task_failures",
            "Background task crashes (each restarted), by task.",
            labels=["task"],
        )
        for task, n in sorted(s.task_failures.items()):
            failures.add_metric([task], n)
        yield failures
        yield _gauge(
            "netmesh_agent_start_time_seconds", "Unix time the agent started.", s.started_at
        )
        if s.probe is not None:
            yield from _probe_families(s)


def _probe_families(s: AgentState) -> Iterator[Metric]:
    """The eBPF probe's health and its per-flow retransmission counters (agent/probe.py)."""
    assert s.probe is not None
    up = GaugeMetricFamily(
        "netmesh_agent_probe_up",
        "1 if the eBPF retransmission probe is attached; reason says why not.",
        labels=["mode", "reason"],
    )
    up.add_metric([s.probe.mode, s.probe.reason], float(s.probe.up))
    yield up
    yield _gauge(
        "netmesh_agent_probe_map_entries",
        "Flows in the probe's in-kernel LRU map.",
        float(s.probe.map_entries),
    )
    yield _gauge(
        "netmesh_agent_probe_map_capacity",
        "Size of the probe's in-kernel LRU map (probe_map_size).",
        float(s.probe.map_capacity),
    )
    yield _counter(
        "netmesh_agent_probe_map_evictions",
        "Flows the kernel evicted from the full LRU map.",
        s.probe.evictions,
    )
    flows = CounterMetricFamily(
        "netmesh_retransmits",
        "TCP retransmissions counted in the kernel, by endpoint pair; port is the "
        "service port (ephemeral side folded); beyond the series cap: 'other'.",
        labels=["local_address", "remote_address", "port"],
    )
    for f in s.retransmits:
        port = "other" if f.local == "other" else str(f.port)
        flows.add_metric([f.local, f.remote, port], f.count)
    yield flows


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def make_registry(state: AgentState) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(state))
    ProcessCollector(registry=registry)
    return registry
