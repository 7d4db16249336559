"""The agent's own /metrics (this node only, for debugging), read from AgentState at scrape time.

A custom prometheus_client collector instead of long-lived Gauge objects:
series of departed peers vanish with the state, and nothing is mutated
from two places. Names, types, help and labels come from the catalogue
(netmesh/catalogue.py); the families the collector exposes too are computed
from the same report the agent pushes, with the catalogue's extractors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from agent.state import AgentState
from netmesh import catalogue as cat
from netmesh.wire import LightPath


def family(
    fam: cat.MetricFamily, rows: Iterable[tuple[Sequence[str], float]] = ()
) -> GaugeMetricFamily | CounterMetricFamily:
    """A prometheus_client family for a catalogue entry, with the agent's label names."""
    labels = list(fam.label_names(cat.AGENT))
    out: GaugeMetricFamily | CounterMetricFamily
    if fam.type == "counter":
        out = CounterMetricFamily(fam.base_name, fam.help, labels=labels)
    else:
        out = GaugeMetricFamily(fam.name, fam.help, labels=labels)
    for values, value in rows:
        out.add_metric(list(values), value)
    return out


def rtt_histogram(
    me: str, paths: Iterable[LightPath], network: str = "host"
) -> HistogramMetricFamily:
    """The light tier's RTT histogram per path (the catalogue's buckets)."""
    fam = cat.LIGHT_RTT
    out = HistogramMetricFamily(fam.name, fam.help, labels=list(fam.label_names(cat.AGENT)))
    for lp in paths:
        if lp.rtt_bucket_counts is None:
            continue
        counts = (*lp.rtt_bucket_counts, lp.rtt_count)
        buckets = [(le, float(c)) for le, c in zip(cat.RTT_BUCKET_LABELS, counts, strict=True)]
        out.add_metric([me, lp.destination, network], buckets, lp.rtt_sum_seconds)
    return out


class AgentCollector(Collector):
    def __init__(self, state: AgentState, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        s = self.state
        me = s.me.name
        net = s.network
        report = s.report(self.clock())
        for fam, value_of in cat.PATH_GAUGES:
            rows = []
            for result in report.results:
                value = value_of(result)
                if value is not None:
                    rows.append(((me, result.destination, result.protocol, net), value))
            yield family(fam, rows)
        yield family(
            cat.PATH_TESTS,
            (((me, t.destination, t.protocol, net, t.result), t.count) for t in report.tests),
        )
        for fam, report_value in cat.HEALTH:
            value = report_value(report)
            if value is not None:
                yield family(fam, [((), value)])
        if report.probe is not None:
            yield family(
                cat.PROBE_UP, [((report.probe.mode, report.probe.reason), report.probe.up)]
            )
            yield family(
                cat.FLOW_RETRANSMITS,
                (
                    ((f.local, f.remote, "other" if f.local == "other" else str(f.port)), f.count)
                    for f in s.retransmits
                ),
            )
        if report.drops is not None:
            d = report.drops  # DROPS_UP and DROPS come with cat.REPORT_ROWS below
            yield family(
                cat.DROP_FLOWS, (((f.reason, f.remote, f.protocol), f.count) for f in d.flows)
            )
        if report.light is not None:
            light = report.light
            yield family(cat.LIGHT_UP, [((light.reason,), float(light.up))])
            for fam, value_of_path in cat.LIGHT_GAUGES:
                light_rows: list[tuple[tuple[str, ...], float]] = []
                for lp in light.paths:
                    value = value_of_path(lp)
                    if value is not None:
                        light_rows.append(((me, lp.destination, net), value))
                yield family(fam, light_rows)
            yield rtt_histogram(me, light.paths, net)
        for fam, rows_of in cat.REPORT_ROWS:
            yield family(fam, rows_of(report))
        yield family(cat.COLLECTOR_UP, [((), float(s.collector_up))])
        yield family(cat.REPORTS_SENT, (((r,), n) for r, n in sorted(s.reports.items())))
        yield family(
            cat.AGENT_TASK_FAILURES, (((t,), n) for t, n in sorted(s.task_failures.items()))
        )


def make_registry(state: AgentState) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(state))
    ProcessCollector(registry=registry)
    return registry
