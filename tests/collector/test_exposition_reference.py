"""Our hand-made /metrics is parse-identical to prometheus_client's rendering of the same state.

``reference_registry`` builds the merged /metrics the slow, obvious way — a
prometheus_client custom collector that walks every report on each scrape —
and the test parses both texts with ``prometheus_client.parser`` and compares
every family (type, help) and every sample (name, labels, value). The
render benchmark (tests/benchmarks/bench_render.py) times the same reference
with ``generate_latest`` against ``render_metrics``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from collector.membership import StaticMembership
from collector.metrics import WatchStatus, render_metrics
from collector.podmap import PodInfo
from collector.state import CollectorState, Limits
from netmesh import catalogue as cat
from netmesh.catalogue import LIGHT_GAUGES, NETWORK_LIGHT_LABELS, NETWORK_PATH_LABELS, PATH_GAUGES
from netmesh.lightreport import RTT_BUCKETS
from netmesh.wire import MemberList, ProbeStatus
from tests.benchmarks.benchlib import synthetic_report
from tests.collector.conftest import FakeClock
from tests.collector.reports import flow, light_path, light_status, report, result


def _family(
    fam: cat.MetricFamily, label_names: Sequence[str]
) -> GaugeMetricFamily | CounterMetricFamily:
    if fam.type == "counter":
        return CounterMetricFamily(fam.base_name, fam.help, labels=label_names)
    return GaugeMetricFamily(fam.name, fam.help, labels=label_names)


class _Reference(Collector):
    """The collector's /metrics, rendered on every collect() straight from the reports."""

    def __init__(
        self, state: CollectorState, members: MemberList, watches: Sequence[WatchStatus]
    ) -> None:
        self.state = state
        self.members = members
        self.watches = watches

    def collect(self) -> Iterator[Metric]:
        state = self.state
        now = state.clock()
        names = sorted(state.agents)
        up = _family(cat.AGENT_UP, ("node",))
        for name in sorted({m.name for m in self.members.members} | set(names)):
            entry = state.agents.get(name)
            up.add_metric([name], 1.0 if entry is not None and state.is_fresh(entry, now) else 0.0)
        yield up
        age = _family(cat.REPORT_AGE, ("node",))
        for name in names:
            age.add_metric([name], state.age(state.agents[name], now))
        yield age
        yield from self._agent_families(names)
        yield from self._self_metrics()

    def _agent_families(self, names: list[str]) -> Iterator[Metric]:
        state = self.state
        health = [(_family(fam, ("node",)), value_of) for fam, value_of in cat.HEALTH]
        probe_up = _family(cat.PROBE_UP, ("node", "mode", "reason"))
        paths = [(_family(fam, NETWORK_PATH_LABELS), value_of) for fam, value_of in PATH_GAUGES]
        tests = _family(cat.PATH_TESTS, (*NETWORK_PATH_LABELS, "result"))
        light_up = _family(cat.LIGHT_UP, ("node", "reason"))
        light = [(_family(fam, NETWORK_LIGHT_LABELS), value_of) for fam, value_of in LIGHT_GAUGES]
        rtt = HistogramMetricFamily(
            cat.LIGHT_RTT.name, cat.LIGHT_RTT.help, labels=NETWORK_LIGHT_LABELS
        )
        retransmits = _family(
            cat.RETRANSMITS,
            ("node", "src_namespace", "src_pod", "dst_namespace", "dst_pod", "port"),
        )
        for name in names:
            r = state.agents[name].report
            for fam, value_of in health:
                value = value_of(r)
                if value is not None:
                    fam.add_metric([name], value)
            if r.probe is not None:
                probe_up.add_metric([name, r.probe.mode, r.probe.reason], r.probe.up)
            for res in r.results:
                for fam, value_of_result in paths:
                    value = value_of_result(res)
                    if value is not None:
                        fam.add_metric([name, res.destination, res.protocol, r.network], value)
            for t in r.tests:
                tests.add_metric([name, t.destination, t.protocol, r.network, t.result], t.count)
            if r.light is not None:
                light_up.add_metric([name, r.light.reason], r.light.up)
                for lp in r.light.paths:
                    for fam, value_of_path in light:
                        v = value_of_path(lp)
                        if v is not None:
                            fam.add_metric([name, lp.destination, r.network], v)
                    if lp.rtt_bucket_counts is not None:
                        les = [floatToGoString(b) for b in RTT_BUCKETS] + ["+Inf"]
                        counts = [float(c) for c in (*lp.rtt_bucket_counts, lp.rtt_count)]
                        rtt.add_metric(
                            [name, lp.destination, r.network],
                            list(zip(les, counts, strict=True)),
                            lp.rtt_sum_seconds,
                        )
            pairs: dict[tuple[str, str, str, str, str], float] = {}
            other = 0.0
            for f in r.retransmits:
                if "other" in (f.local, f.remote):
                    other += f.count
                    continue
                s, d = state.resolve(f.local), state.resolve(f.remote)
                key = (s.namespace, s.name, d.namespace, d.name, str(f.port))
                pairs[key] = pairs.get(key, 0.0) + f.count
            for key, count in pairs.items():
                retransmits.add_metric([name, *key], count)
            if other:
                retransmits.add_metric([name, "", "other", "", "other", "other"], other)
        for fam, _ in health:
            yield fam
        yield probe_up
        yield light_up
        for fam, _ in paths:
            yield fam
        yield tests
        for fam, _ in light:
            yield fam
        yield rtt
        yield retransmits

    def _self_metrics(self) -> Iterator[Metric]:
        state, s = self.state, self.state.stats
        reports = _family(cat.COLLECTOR_REPORTS, ("result",))
        for why, n in s.reports.items():
            reports.add_metric([why], n)
        yield reports
        simple = {
            cat.COLLECTOR_AGENTS: len(state.agents),
            cat.COLLECTOR_MEMBERS: len(self.members.members),
            cat.COLLECTOR_EPOCH: self.members.epoch,
            cat.COLLECTOR_EXPIRED: s.expired,
            cat.POD_MAP_PODS: len(state.pod_map.pods),
            cat.POD_MAP_NODES: len(state.pod_map.nodes),
            cat.POD_MAP_IPS: state.pod_map.ip_count,
            cat.RENDER_SECONDS: s.render_seconds,
            cat.GC_FULL: s.gc.runs,
            cat.GC_FULL_SECONDS: s.gc.total_seconds,
            cat.GC_FULL_LAST: s.gc.last_seconds,
            cat.COLLECTOR_START_TIME: state.started_at,
            cat.COLLECTOR_SWEEPS_ACTIVE: s.sweeps_active,
        }
        for fam, value in simple.items():
            metric = _family(fam, ())
            metric.add_metric([], value)
            yield metric
        auth_mode = _family(cat.AUTH_MODE, ("mode",))
        auth_mode.add_metric([s.auth_mode], 1.0)
        yield auth_mode
        sweeps = _family(cat.COLLECTOR_SWEEPS, ("result",))
        for outcome, n in s.sweeps.items():
            sweeps.add_metric([outcome], n)
        yield sweeps
        reviews = _family(cat.TOKEN_REVIEWS, ("result",))
        for outcome, n in s.token_reviews.items():
            reviews.add_metric([outcome], n)
        yield reviews
        watch_up = _family(cat.WATCH_UP, ("resource",))
        for w in self.watches:
            watch_up.add_metric([w.resource], float(w.up))
        yield watch_up
        restarts = _family(cat.WATCH_RESTARTS, ("resource", "reason"))
        for (res, why), n in s.watch_restarts.items():
            restarts.add_metric([res, why], n)
        yield restarts
        renders = _family(cat.BLOCK_RENDERS, ("part",))
        for part, n in s.block_renders.items():
            renders.add_metric([part], n)
        yield renders
        failures = _family(cat.COLLECTOR_TASK_FAILURES, ("task",))
        for task, n in s.task_failures.items():
            failures.add_metric([task], n)
        yield failures


def reference_registry(
    state: CollectorState, members: MemberList, watches: Sequence[WatchStatus] = ()
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Reference(state, members, watches))
    return registry


Parsed = dict[str, tuple[str, str, list[tuple[str, tuple[tuple[str, str], ...], float]]]]


def parse(text: str) -> Parsed:
    """Family name → (type, help, sorted samples); families without samples left out."""
    out: Parsed = {}
    for fam in text_string_to_metric_families(text):
        assert fam.name not in out, f"family {fam.name} appears twice"
        samples = sorted((s.name, tuple(sorted(s.labels.items())), s.value) for s in fam.samples)
        if samples:
            out[fam.name] = (fam.type, fam.documentation, samples)
    return out


def assert_parse_identical(ours: str, reference: str) -> None:
    a, b = parse(ours), parse(reference)
    assert a.keys() == b.keys(), (sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys()))
    for name in a:
        assert a[name][:2] == b[name][:2], name
        sa, sb = a[name][2], b[name][2]
        assert len(sa) == len(set(sa)), f"{name}: duplicate samples"
        assert sa == sb, (name, sorted(set(sa) ^ set(sb))[:5])


def both(state: CollectorState, members: MemberList, **kw: Any) -> tuple[str, str]:
    state.refresh_identities()  # what render_metrics does first (it may count renders)
    reference = generate_latest(reference_registry(state, members, **kw)).decode()
    return render_metrics(state, members, **kw).decode(), reference


def test_parse_identical_to_prometheus_client() -> None:
    clock = FakeClock()
    state = CollectorState(Limits(), clock=clock)
    state.pod_map.upsert_pod(
        PodInfo("shop", "web-0", "b", ("10.1.0.5",), False, "Running", True, False)
    )
    weird = 'we"ird\\node\nname'
    state.accept(
        report(
            "a",
            "10.0.0.1",
            ("b", weird),
            probe=ProbeStatus(mode="tracepoint", up=1, map_entries=3, map_capacity=8192),
            light=light_status(light_path("b", lost=3), light_path(weird, forward_loss_ratio=None)),
            retransmits=(
                flow("10.0.0.1", "10.1.0.5", 80, 4),
                flow("10.0.0.1", "10.1.0.5", 80, 3),  # folds with the line above
                flow("10.0.0.1", "10.0.0.2", 5201, 9),  # an agent address → node name
                flow("10.0.0.1", "192.0.2.7", 443, 1),  # unknown → raw IP
                flow("other", "other", 0, 11),  # the agent's own overflow bucket
            ),
        )
    )
    clock.advance(3.25)
    state.accept(report("b", "10.0.0.2", ("a",), failing=("a",), probe=ProbeStatus(mode="none")))
    state.accept(report(weird, "10.0.0.3", ("a",), protocols=("udp",)))
    clock.advance(40)  # "a", "b" and the weird node stale: up 0, ages 43.25 / 40
    state.accept(report("c", "10.0.0.4"))
    state.stats.reports["accepted"] += 4
    state.stats.reports["invalid"] += 1
    state.stats.watch_restarts[("pods", "gone")] += 2
    state.stats.task_failures["expiry"] += 1
    members = StaticMembership(state, clock=clock).current()
    watches = [WatchStatus("pods", True, True), WatchStatus("nodes", False, False)]
    ours, reference = both(state, members, watches=watches)
    assert_parse_identical(ours, reference)
    assert 'node="we\\"ird\\\\node\\nname"' in ours
    assert 'dst_namespace="shop",dst_pod="web-0",port="80"} 7' in ours


def test_parse_identical_for_a_fleet() -> None:
    """Many agents with realistic reports (the benchmark's), unusual float values included."""
    clock = FakeClock()
    state = CollectorState(Limits(), clock=clock)
    n = 40
    for i in range(n):
        state.accept(synthetic_report(i, n, 5))
        clock.advance(0.013)
    odd = result("z", "a", "tcp", rtt_mean_seconds=1e-7, sent_bits_per_second=1.5e19)
    state.accept(dataclasses.replace(report("z", "10.9.0.1"), results=(odd,)))
    members = StaticMembership(state, clock=clock).current()
    assert_parse_identical(*both(state, members))
