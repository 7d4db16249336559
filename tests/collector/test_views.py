"""The JSON API's bodies from state alone, no HTTP: /api/v1/nodes, /api/v1/matrix, /api/v1/rca."""

from __future__ import annotations

import dataclasses

from collector import views
from collector.live import LiveRca
from collector.settings import CollectorSettings, rca_criteria
from collector.state import CollectorState, Limits
from netmesh import catalogue as cat
from netmesh.wire import Member, MemberList, ProbeStatus, Report
from tests.collector.conftest import FakeClock
from tests.collector.reports import (
    dns_status,
    light_path,
    light_status,
    report,
    service_status,
)

NOW = 1_700_000_000.0


def state_with(*reports: Report, clock: FakeClock | None = None) -> CollectorState:
    state = CollectorState(Limits(stale_after=30.0), clock=clock or FakeClock(NOW))
    for rep in reports:
        state.accept(rep)
    return state


def live_rca() -> LiveRca:
    return LiveRca(rca_criteria(CollectorSettings()), baseline_samples=5, ebpf_window=60.0)


def test_nodes_joins_members_and_reporting_agents() -> None:
    probe = ProbeStatus(mode="kprobe", up=0, reason="no BTF")
    clock = FakeClock(NOW)
    state = state_with(
        report("a", "10.0.0.1", ("b", "c"), probe=probe, failing=("c",)), clock=clock
    )
    clock.advance(40)  # older than stale_after
    state.accept(report("c", "10.0.0.3", ("a",)))
    members = MemberList(
        epoch=9,
        members=(
            Member(name="a", address="10.0.0.1"),
            Member(name="b", address="10.0.0.2", iperf3_port=5301),
        ),
    )
    body = views.nodes(state, members, now=clock.now)
    assert body["epoch"] == 9
    a, b, c = body["nodes"]
    assert [a["name"], b["name"], c["name"]] == ["a", "b", "c"]
    # a: member and reporting, but its report is stale
    assert a["member"] and not a["up"] and a["report_age_seconds"] == 40
    assert a["last_report_at"] == NOW and a["http_port"] == 9101
    assert a["probe"] == {"mode": "kprobe", "up": 0, "reason": "no BTF"}
    assert a["health"]["epoch"] == 7 and a["health"]["members"] == 3
    assert (a["paths"], a["failing_paths"]) == (4, 2)
    # b: a member that never reported
    assert b == {
        "name": "b",
        "member": True,
        "address": "10.0.0.2",
        "iperf3_port": 5301,
        "up": False,
        "last_report_at": None,
        "report_age_seconds": None,
        "probe": None,
        "health": None,
        "drops": None,
        "dns": None,
        "service": None,
    }
    # c: reporting, fresh, not (yet) a member: its address comes from the report
    assert not c["member"] and c["up"] and c["address"] == "10.0.0.3"
    assert c["iperf3_port"] == 5201 and c["probe"] is None
    assert c["dns"] is None and c["service"] is None  # its agent runs neither check


def test_nodes_show_each_nodes_dns_and_service_window(clock: FakeClock) -> None:
    state = CollectorState(Limits(), clock=clock)
    failing = service_status(failures=5, failure="refused")
    state.accept(
        dataclasses.replace(report("a", "10.0.0.1", ()), dns=dns_status(), service=failing)
    )
    [a] = views.nodes(state, MemberList(epoch=1, members=()), now=clock.now)["nodes"]
    assert a["dns"] == {
        "subject": "kubernetes.default.svc.cluster.local",
        "up": 1,
        "attempts": 6,
        "failures": 0,
        "failure_ratio": 0.0,
        "dominant_failure": "",
        "median_seconds": 0.002,
    }
    assert a["service"]["failures"] == 5 and a["service"]["dominant_failure"] == "refused"
    assert a["service"]["subject"] == "netmesh-collector.netmesh.svc.cluster.local:8080"


def test_nodes_of_nothing() -> None:
    assert views.nodes(state_with(), MemberList(epoch=0, members=()), now=NOW) == {
        "network": "host",
        "epoch": 0,
        "nodes": [],
    }


def test_matrix_lists_latest_result_per_path_and_protocol() -> None:
    state = state_with(report("a", "10.0.0.1", ("b",), failing=("b",)), report("b", "10.0.0.2"))
    members = MemberList(epoch=1, members=(Member(name="z", address="10.0.0.26"),))
    body = views.matrix(state, members)
    assert body["nodes"] == ["a", "b", "z"]
    cells = {(p["source"], p["destination"], p["protocol"]): p for p in body["paths"]}
    assert set(cells) == {("a", "b", "tcp"), ("a", "b", "udp")}
    tcp = cells[("a", "b", "tcp")]
    assert not tcp["success"] and tcp["result"] == "refused"
    assert tcp["message"] == "connection refused" and tcp["bandwidth_bits_per_second"] is None


def test_matrix_carries_measurements() -> None:
    body = views.matrix(
        state_with(report("a", "10.0.0.1", ("b",))), MemberList(epoch=0, members=())
    )
    cells = {p["protocol"]: p for p in body["paths"]}
    assert cells["tcp"]["bandwidth_bits_per_second"] == 9.4e9
    assert cells["tcp"]["rtt_seconds"] == 0.00002 and cells["tcp"]["retransmits"] == 3
    assert cells["udp"]["loss_ratio"] == 0.001 and cells["udp"]["jitter_seconds"] == 0.00001


def test_rca_off_and_before_the_first_run() -> None:
    live = live_rca()
    assert views.rca(live, enabled=False, now=NOW)["verdict"] == "off"
    assert views.rca(live, enabled=True, now=NOW) == {
        "verdict": "no-data",
        "summary": "",
        "suspects": [],
        "ranking": [],
        "rules": [],
    }


def test_rca_after_a_run_says_when_and_how_long() -> None:
    nodes = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3", "d": "10.0.0.4"}
    reports = [
        report(
            name, ip, tuple(n for n in nodes if n != name), failing=("c",) if name != "c" else ()
        )
        for name, ip in nodes.items()
    ]
    state = state_with(*reports)
    live = live_rca()
    results = {name: entry.report.results for name, entry in state.agents.items()}
    for _ in live.steps(results, {}, lambda ip: None, now=NOW, nodes=nodes):
        pass
    body = views.rca(live, enabled=True, now=NOW + 4)
    assert body["runs"] == 1 and body["computed_at"] == NOW and body["age_seconds"] == 4
    assert body["duration_seconds"] >= 0
    assert body["verdict"] not in ("off", "no-data")
    assert body["suspects"] and body["suspects"][0]["node"] == "c"


def test_light_lists_every_agents_latest_window_per_peer_with_the_metrics_values() -> None:
    clock = FakeClock(NOW)
    lossy = light_path("a", lost=30, mtu_sent=2, mtu_received=0)
    state = state_with(
        report("a", "10.0.0.1", light=light_status(light_path("b"))),
        report("c", "10.0.0.3"),  # no light tier in its report
        clock=clock,
    )
    clock.advance(5)
    state.accept(report("b", "10.0.0.2", light=light_status(lossy, reason="")))
    members = MemberList(epoch=3, members=(Member(name="z", address="10.0.0.26"),))
    body = views.light(state, members, now=clock.now + 1)
    assert body["now"] == NOW + 6
    assert body["nodes"] == ["a", "b", "c", "z"]
    assert body["agents"] == [
        {"node": "a", "up": True, "reported_at": NOW, "light_up": True, "light_reason": ""},
        {"node": "b", "up": True, "reported_at": NOW + 5, "light_up": True, "light_reason": ""},
        {"node": "c", "up": True, "reported_at": NOW, "light_up": None, "light_reason": None},
    ]
    ab, ba = body["paths"]
    assert (ab["source"], ab["destination"], ab["reported_at"]) == ("a", "b", NOW)
    assert (ba["source"], ba["destination"], ba["reported_at"]) == ("b", "a", NOW + 5)
    assert ba["window_seconds"] == 10.0
    # keyed by the /metrics families and computed by the same functions
    assert ba["values"] == {fam.name: value_of(lossy) for fam, value_of in cat.LIGHT_GAUGES}
    assert ba["values"][cat.LIGHT_LOSS.name] == 0.3
    assert ba["values"][cat.LIGHT_MTU_LOSS.name] == 1.0
    assert ab["values"][cat.LIGHT_RTT_MEDIAN.name] == 0.0002


def test_light_of_a_down_light_tier_and_of_nothing() -> None:
    state = state_with(report("a", light=light_status(reason="bind: address in use")))
    body = views.light(state, MemberList(epoch=0, members=()), now=NOW + 60)
    assert body["agents"][0]["light_up"] is False and not body["agents"][0]["up"]
    assert body["agents"][0]["light_reason"] == "bind: address in use"
    assert body["paths"] == []
    empty = views.light(state_with(), MemberList(epoch=0, members=()), now=NOW)
    assert empty == {"network": "host", "now": NOW, "nodes": [], "agents": [], "paths": []}


def test_matrix_carries_the_light_tier_as_its_own_protocol() -> None:
    state = CollectorState(Limits())
    state.accept(
        report(
            "a",
            "10.0.0.1",
            light=light_status(
                light_path("b", lost=3),
                light_path("c", received=0, loss_ratio=1.0, forward_loss_ratio=None),
            ),
        )
    )
    members = MemberList(epoch=1, members=())
    light = {
        p["destination"]: p
        for p in views.matrix(state, members)["paths"]
        if p["protocol"] == "light"
    }
    assert light["b"]["success"] and light["b"]["loss_ratio"] == 0.03
    assert light["b"]["forward_loss_ratio"] == 3 / 99 and light["b"]["mtu_loss_ratio"] == 0
    assert not light["c"]["success"] and "none of 100 probes" in light["c"]["message"]
