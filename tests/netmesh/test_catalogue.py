"""The catalogue is the truth about both endpoints' /metrics.

An agent with results, counters, a probe and flows renders its own /metrics
(prometheus_client); its report goes to a real collector state that renders
the merged /metrics. Both texts are parsed, and every family in them must be
in the catalogue with the right type, unit and labels; every family the
catalogue says an endpoint exposes must be there; and a family exposed by
both has one name, one type and one label set (plus the collector's
``node`` where the catalogue says so).
"""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import make_registry
from agent.state import AgentState
from collector.judging import Criteria
from collector.layers import LayerJudge
from collector.live import LiveRca
from collector.membership import StaticMembership
from collector.metrics import WatchStatus, render_metrics
from collector.state import CollectorState, Limits
from collector.topology import topology_of
from netmesh import catalogue as cat
from netmesh.wire import DropFlow, DropReason, DropStatus, Member, ProbeStatus, RetransmitFlow
from tests.collector.conftest import FakeClock
from tests.collector.reports import (
    dns_status,
    light_path,
    light_status,
    report,
    result,
    service_status,
)

IGNORED_PREFIXES = ("process_", "python_")  # prometheus_client's own families

# family name -> (type, {frozenset of label names of a sample})
Seen = dict[str, tuple[str, set[frozenset[str]]]]


def parse(text: str) -> Seen:
    out: Seen = {}
    for fam in text_string_to_metric_families(text):
        if fam.name.startswith(IGNORED_PREFIXES) or not fam.samples:
            continue
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        assert name not in out, f"{name} appears twice"
        if fam.type == "histogram":  # _bucket samples carry le as well, _sum and _count not
            assert {s.name for s in fam.samples} == set(cat.LIGHT_RTT.series_names), name
            les = [s.labels["le"] for s in fam.samples if s.name.endswith("_bucket")]
            assert les[: len(cat.RTT_BUCKET_LABELS)] == list(cat.RTT_BUCKET_LABELS), les
        labelsets = {frozenset(s.labels) - {"le"} for s in fam.samples}
        out[name] = (fam.type, labelsets)
    return out


def agent_state(clock: FakeClock) -> AgentState:
    state = AgentState(me=Member(name="a", address="10.0.0.1"), http_port=9101)
    state.started_at = clock()
    for peer in ("b", "c"):
        for proto in ("tcp", "udp"):
            state.record(result("a", peer, proto))
    state.record(result("a", "c", "tcp", ok=False))
    state.skipped_tests["late"] += 1
    state.reports["ok"] += 3
    state.collector_up = True
    state.task_failures["probe"] += 1
    state.probe = ProbeStatus(mode="tracepoint", up=1, map_entries=2, map_capacity=8192)
    light = light_status(light_path("b", lost=2), light_path("c"))
    state.light = lambda: light
    dns = dns_status(failures=2)
    state.dns = lambda: dns
    service = service_status(failures=1)
    state.service = lambda: service
    state.retransmits = (
        RetransmitFlow(local="10.0.0.1", remote="10.0.0.2", port=5201, count=4),
        RetransmitFlow(local="other", remote="other", port=0, count=1),
    )
    state.drops = DropStatus(
        mode="tracepoint",
        up=1,
        map_entries=1,
        map_capacity=4096,
        unspecified=7,
        reasons=(DropReason(reason="NETFILTER_DROP", count=5),),
        flows=(
            DropFlow(reason="NETFILTER_DROP", remote="10.0.0.2", protocol="udp", count=5),
            DropFlow(reason="other", remote="other", protocol="other", count=1),
        ),
    )
    return state


def rendered() -> tuple[Seen, Seen]:
    clock = FakeClock()
    agent = agent_state(clock)
    agent_text = generate_latest(make_registry(agent)).decode()

    collector = CollectorState(Limits(max_series_per_agent=100), clock=clock)
    collector.accept(agent.report(clock()))
    collector.accept(report("b", "10.0.0.2", ("a", "c"), failing=("c",)))
    collector.accept(report("c", "10.0.0.3", ("a", "b"), failing=("a", "b")))
    many = tuple(f"peer-{i}" for i in range(20))
    collector.accept(report("e", "10.0.0.5", many))  # more series than the cap: some dropped
    # Pod-network endpoints: their paths join the same families (network="pod"), and
    # their up/age come from their own families (a member that never reported: d).
    pod_a = dataclasses.replace(agent.report(clock()), network="pod", address="10.244.0.1")
    collector.accept(pod_a)
    collector.accept(dataclasses.replace(report("b", "10.244.1.1", ("a",)), network="pod"))
    collector.stats.reports["accepted"] += 3
    collector.stats.watch_restarts[("pods", "gone")] += 1
    collector.stats.block_renders["path"] += 3
    collector.stats.task_failures["expiry"] += 1
    collector.stats.expired += 1
    collector.stats.reports["unauthenticated"] += 1
    collector.stats.auth_mode = "tokenreview"
    collector.stats.token_reviews["authenticated"] += 2
    collector.stats.sweeps["requested"] += 1
    members = StaticMembership(collector, clock=clock).current()
    members = type(members)(
        epoch=members.epoch, members=(*members.members, Member(name="d", address="10.0.0.4"))
    )
    live = LiveRca(Criteria())
    results = {n: collector.agents[n].report.results for n in collector.sorted_names()}
    flows = {n: collector.agents[n].report.retransmits for n in results}
    reports = [collector.agents[n].report for n in results]
    reports[0] = type(reports[0])(
        **{**reports[0].__dict__, "labels": (("rack", "r1"),), "link_speed_bits_per_second": 10**9}
    )
    topology = topology_of(reports)
    dns = {"a": dns_status(), "b": dns_status(failures=6), "c": dns_status()}  # b: a finding
    service = {"a": service_status(), "b": service_status(), "c": service_status(failures=6)}
    for _ in live.steps(
        results,
        flows,
        lambda _ip: None,
        now=clock(),
        topology=topology,
        dns=dns,
        service=service,
    ):
        pass
    pod_members = StaticMembership(collector.pod_network, clock=clock).current()
    pod_members = type(pod_members)(
        epoch=pod_members.epoch,
        members=(*pod_members.members, Member(name="d", address="10.244.3.1")),
    )
    layers = LayerJudge(Criteria())  # node a's pods send too big packets: a layer finding
    pod_light = {
        "a": [light_path("b", mtu_sent=3, mtu_received=0)],
        "b": [light_path("a", mtu_size=1450, mtu_sent=3, mtu_received=3)],
    }
    assert layers.run(pod_light, {}, {})
    collector_text = render_metrics(
        collector,
        members,
        [WatchStatus("pods", True, True)],
        rca=live,
        pod_members=pod_members,
        layers=layers,
    ).decode()
    return parse(agent_text), parse(collector_text)


@pytest.fixture(scope="module")
def outputs() -> dict[cat.Endpoint, Seen]:
    agent, collector = rendered()
    return {cat.AGENT: agent, cat.COLLECTOR: collector}


@pytest.mark.parametrize("endpoint", [cat.AGENT, cat.COLLECTOR])
def test_every_exposed_family_is_catalogued_as_exposed(
    outputs: dict[cat.Endpoint, Seen], endpoint: cat.Endpoint
) -> None:
    known = cat.by_name()
    for name, (kind, label_sets) in outputs[endpoint].items():
        assert name in known, f"{endpoint} exposes {name}, which the catalogue does not know"
        fam = known[name]
        assert endpoint in fam.exposed_by, f"{endpoint} exposes {name}; catalogue: {fam.exposed_by}"
        assert kind == fam.type, (name, kind, fam.type)
        assert label_sets == {frozenset(fam.label_names(endpoint))}, (name, label_sets)


@pytest.mark.parametrize("endpoint", [cat.AGENT, cat.COLLECTOR])
def test_every_catalogued_family_is_exposed(
    outputs: dict[cat.Endpoint, Seen], endpoint: cat.Endpoint
) -> None:
    missing = [f.name for f in cat.exposed_by(endpoint) if f.name not in outputs[endpoint]]
    assert not missing, f"the catalogue says the {endpoint} exposes {missing}, it does not"


def test_families_of_both_endpoints_agree(outputs: dict[cat.Endpoint, Seen]) -> None:
    shared = [f for f in cat.FAMILIES if f.exposed_by == cat.BOTH]
    assert shared, "no family is exposed by both endpoints"
    for fam in shared:
        agent_kind, agent_labels = outputs[cat.AGENT][fam.name]
        coll_kind, coll_labels = outputs[cat.COLLECTOR][fam.name]
        assert agent_kind == coll_kind == fam.type
        (agent_set,) = agent_labels
        (coll_set,) = coll_labels
        assert coll_set - agent_set == set(fam.collector_labels), fam.name
        assert agent_set <= coll_set, fam.name


def test_names_follow_prometheus_conventions() -> None:
    for fam in cat.FAMILIES:
        assert fam.name.startswith("netmesh_"), fam.name
        assert fam.name.endswith("_total") == (fam.type == "counter"), fam.name
        if fam.unit:
            assert f"_{fam.unit}" in fam.name, (fam.name, fam.unit)
        assert fam.help.endswith("."), fam.name
        for endpoint in fam.exposed_by:
            names = fam.label_names(endpoint)
            assert len(set(names)) == len(names), (fam.name, endpoint)


def test_two_families_under_one_name_are_refused() -> None:
    assert len({f.name for f in cat.FAMILIES}) == len(cat.FAMILIES)
    one = cat.MetricFamily("netmesh_x", "gauge", "", "x.")
    assert cat.collect({"a": one, "b": one, "c": 3}) == (one,)
    two = cat.MetricFamily("netmesh_y", "gauge", "", "y.")
    assert cat.collect({"pairs": ((one, len), (two, len))}) == (one, two)
    with pytest.raises(ValueError, match="two metric families are named netmesh_x"):
        cat.collect({"a": one, "b": cat.MetricFamily("netmesh_x", "gauge", "", "y.")})
