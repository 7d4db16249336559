"""Layer findings: a node's pod network failing while its host paths are fine."""

from __future__ import annotations

from collections.abc import Callable

from collector.judging import Criteria, PathOutcome
from collector.layers import (
    OVERLAY_MTU,
    POD_NETWORK,
    LayerCriteria,
    LayerJudge,
    judge_layers,
    mtu_mismatch,
)
from netmesh.wire import LightPath, TestResult
from tests.collector.reports import light_path, result

NODES = ("node-1", "node-2", "node-3", "node-4")
Light = dict[str, list[LightPath]]


def mesh(path: Callable[[str, str], LightPath] | None = None) -> Light:
    """Every ordered pair of NODES, clean unless ``path`` gives the pair's window."""
    make = path or (lambda _a, b: light_path(b, mtu_size=1450, mtu_sent=3, mtu_received=3))
    return {a: [make(a, b) for b in NODES if b != a] for a in NODES}


def clean(_a: str, b: str) -> LightPath:
    return light_path(b, mtu_size=1450, mtu_sent=3, mtu_received=3)


def mtu_out_of(node: str) -> Callable[[str, str], LightPath]:
    """``node``'s pods send 1500-byte packets (2 of its 3 latest DF probes lost)."""

    def make(a: str, b: str) -> LightPath:
        if a == node:
            return light_path(b, mtu_size=1500, mtu_sent=3, mtu_received=1)
        return clean(a, b)

    return make


def host_results(failing_node: str = "") -> dict[str, list[TestResult]]:
    return {
        a: [result(a, b, "tcp", ok=failing_node not in (a, b)) for b in NODES if b != a]
        for a in NODES
    }


def test_a_clean_mesh_has_no_finding() -> None:
    assert judge_layers(mesh(), mesh(), host_results(), Criteria()) == []


def test_overlay_mtu_mismatch_on_one_node() -> None:
    found = judge_layers(mesh(mtu_out_of("node-2")), mesh(), host_results(), Criteria())
    assert len(found) == 1
    (f,) = found
    assert (f.node, f.kind, f.layer, f.direction) == ("node-2", OVERLAY_MTU, "overlay", "outbound")
    assert f.summary.startswith("overlay MTU on node node-2: don't-fragment probes of 1500 bytes")
    assert f.evidence["failing_pod_paths"] == 3
    body = f.to_json()
    assert body["layer"] == "overlay" and body["network"] == "pod" and body["scope"] == "node"


def test_an_answered_mtu_probe_earlier_in_the_window_does_not_hide_it() -> None:
    p = light_path("b", mtu_size=1500, mtu_sent=3, mtu_received=1)
    assert mtu_mismatch(p, LayerCriteria()) is not None
    assert mtu_mismatch(light_path("b", mtu_sent=3, mtu_received=2), LayerCriteria()) is None
    lossy = light_path("b", lost=60, mtu_sent=3, mtu_received=0)  # everything is lost: not MTU
    assert mtu_mismatch(lossy, LayerCriteria()) is None


def test_host_paths_failing_too_is_the_underlay_not_the_overlay() -> None:
    assert (
        judge_layers(mesh(mtu_out_of("node-2")), mesh(), host_results("node-2"), Criteria()) == []
    )
    # Host light-tier loss into node-2 as well: the same.
    host = mesh(lambda a, b: light_path(b, lost=100 if b == "node-2" else 0))
    assert judge_layers(mesh(mtu_out_of("node-2")), host, host_results(), Criteria()) == []


def test_pod_loss_into_one_node_names_its_pod_network() -> None:
    def lossy(a: str, b: str) -> LightPath:
        return light_path(b, lost=100) if b == "node-3" else clean(a, b)

    (f,) = judge_layers(mesh(lossy), mesh(), host_results(), Criteria())
    assert (f.node, f.kind) == ("node-3", POD_NETWORK)
    assert f.summary.startswith("pod network (overlay/CNI) of node node-3")


def test_a_fault_elsewhere_on_the_host_does_not_hide_a_nodes_overlay() -> None:
    # node-4's host paths fail (underlay), node-2's pod MTU is wrong: only node-2 here.
    found = judge_layers(mesh(mtu_out_of("node-2")), mesh(), host_results("node-4"), Criteria())
    assert [f.node for f in found] == ["node-2"]


def test_every_pod_path_failing_is_cluster_wide() -> None:
    (f,) = judge_layers(
        mesh(lambda _a, b: light_path(b, lost=100)), mesh(), host_results(), Criteria()
    )
    assert f.node == "" and f.to_json()["scope"] == "cluster-wide" and f.kind == POD_NETWORK


def test_two_nodes_need_one_failing_pair_and_the_judge_keeps_the_latest() -> None:
    pod = {
        "a": [light_path("b", mtu_size=1500, mtu_sent=3, mtu_received=0)],
        "b": [light_path("a", mtu_size=1450, mtu_sent=3, mtu_received=3)],
    }
    judge = LayerJudge(Criteria())
    (f,) = judge.run(pod, {}, {})
    assert f.node == "a" and f.kind == OVERLAY_MTU and judge.findings == (f,)
    assert judge.run({}, {}, {}) == () and judge.findings == ()


def test_the_judge_runs_again_only_after_duty_times_its_cost() -> None:
    now = [0.0]

    def perf() -> float:
        now[0] += 0.1  # every reading: 0.1 s later (a run "costs" 0.1 s)
        return now[0]

    judge = LayerJudge(Criteria(), duty=20, perf=perf)
    first = judge.run(mesh(mtu_out_of("node-2")), mesh(), host_results())
    assert [f.node for f in first] == ["node-2"] and judge.seconds > 0
    assert judge.run(mesh(), mesh(), host_results()) == first  # too soon: the last findings
    now[0] += 2 * 20 * judge.seconds
    assert judge.run(mesh(), mesh(), host_results()) == ()


def test_the_host_rcas_own_light_outcomes_stand_in_for_the_host_windows() -> None:
    bad = [PathOutcome(a, "node-2", "light", reasons=("light tier: none",)) for a in NODES[:1]]
    bad += [PathOutcome("node-2", b, "light", reasons=("light tier: none",)) for b in NODES[2:]]
    # node-2's host paths fail per the host RCA: not an overlay finding, whatever host_light says
    pod = mesh(mtu_out_of("node-2"))
    assert judge_layers(pod, mesh(), host_results(), Criteria(), host_judged=bad) == []
    judge = LayerJudge(Criteria())
    assert judge.run(pod, mesh(), host_results(), bad) == ()
    found = judge_layers(pod, mesh(), host_results(), Criteria(), host_judged=[])
    assert [f.node for f in found] == ["node-2"]
