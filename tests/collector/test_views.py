"""The JSON API's bodies from state alone, no HTTP: /api/v1/nodes, /api/v1/matrix, /api/v1/rca."""

from __future__ import annotations

from collector import views
from collector.live import LiveRca
from collector.settings import CollectorSettings, rca_criteria
from collector.state import CollectorState, Limits
from netmesh.wire import Member, MemberList, ProbeStatus, Report
from tests.collector.conftest import FakeClock
from tests.collector.reports import report

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
    }
    # c: reporting, fresh, not (yet) a member: its address comes from the report
    assert not c["member"] and c["up"] and c["address"] == "10.0.0.3"
    assert c["iperf3_port"] == 5201 and c["probe"] is None


def test_nodes_of_nothing() -> None:
    assert views.nodes(state_with(), MemberList(epoch=0, members=()), now=NOW) == {
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
