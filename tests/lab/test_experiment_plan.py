"""The experiment's plan and grouping for node and uplink faults; no root, no lab up."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from lab.__main__ import _parser
from lab.experiment import PhaseData, make_plan, summarise
from lab.expview import render_matrix, summary_table
from lab.faults import Fault
from lab.lab import Lab, LabError
from lab.settings import LabSettings


def racked(tmp_path: pathlib.Path) -> Lab:
    return Lab(LabSettings(nodes=6, racks=2, state_dir=str(tmp_path), prefix="nmrexp"))


def args(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(["experiment", *argv])


def test_an_uplink_fault_marks_the_racks_nodes(tmp_path: pathlib.Path) -> None:
    lab = racked(tmp_path)
    plan = make_plan(lab, args("--fault-uplink", "rack-2"), Fault(loss=0.03))
    assert plan.uplink and plan.node == "rack-2" and plan.target == "the uplink of rack-2"
    assert plan.marked == {"node-4", "node-5", "node-6"}
    with pytest.raises(LabError, match="no lab rack 'rack-3'"):
        make_plan(lab, args("--fault-uplink", "rack-3"), Fault(loss=0.03))
    with pytest.raises(LabError, match="loss and/or rate"):
        make_plan(lab, args("--fault-uplink", "1"), Fault(mtu=1400))
    flat = Lab(LabSettings(nodes=3, state_dir=str(tmp_path)))
    with pytest.raises(LabError, match="no racks"):
        make_plan(flat, args("--fault-uplink", "1"), Fault(loss=0.03))


def test_a_node_fault_is_unchanged(tmp_path: pathlib.Path) -> None:
    plan = make_plan(racked(tmp_path), args("--fault-node", "5"), Fault(loss=0.1))
    assert not plan.uplink and plan.node == "node-5" and plan.marked == {"node-5"}


def _result(src: str, dst: str, loss: float) -> dict[str, object]:
    return {"source": src, "destination": dst, "success": True, "loss_ratio": loss}


def test_uplink_groups_are_into_the_rack_out_of_it_and_the_rest() -> None:
    phase = PhaseData(name="fault")
    measured = [
        ("node-1", "node-4", 0.03),
        ("node-4", "node-1", 0.02),
        ("node-4", "node-5", 0.0),
        ("node-1", "node-2", 0.0),
    ]
    for i, (src, dst, loss) in enumerate(measured):
        phase.results[(src, dst, "udp", float(i))] = _result(src, dst, loss)
    row = summarise(phase, frozenset({"node-4", "node-5", "node-6"}))
    assert row["to_udp_loss"] == pytest.approx(0.03)
    assert row["from_udp_loss"] == pytest.approx(0.02)
    assert row["others_udp_loss"] == 0.0  # inside rack-2, and inside rack-1
    table = summary_table([row], "the uplink of rack-2")
    assert table.startswith("Summary (faulty the uplink of rack-2)")
    assert summary_table([row], "node-3").startswith("Summary (faulty node: node-3)")
    matrix = render_matrix([], ["node-3", "node-4"], frozenset({"node-4"}))
    assert "node-4*" in matrix and "node-3*" not in matrix


def test_a_pod_fault_plans_loss_into_that_pod(tmp_path: pathlib.Path) -> None:
    lab = Lab(LabSettings(nodes=4, pods=1, state_dir=str(tmp_path), prefix="nmpexp"))
    plan = make_plan(lab, args("--pod-fault", "node-2/pod-1"), None)
    assert plan.pod is not None and plan.pod.name == "node-2/pod-1"
    assert plan.fault == Fault(loss=0.2)  # the seed's 20 % by default
    assert plan.target == "pod node-2/pod-1" and plan.marked == {"node-2"}
    assert plan.ebpf_marked == {"node-2-pod-1"}
    with pytest.raises(LabError, match="no lab pod 'node-7/pod-1'"):
        make_plan(lab, args("--pod-fault", "node-7/pod-1"), Fault(loss=0.2))
    with pytest.raises(LabError, match="--loss only"):
        make_plan(lab, args("--pod-fault", "node-2/pod-1"), Fault(rate_bps=10_000_000))
    with pytest.raises(LabError, match="one of"):
        make_plan(lab, args("--pod-fault", "node-2/pod-1", "--fault-node", "2"), None)


def test_pod_retransmissions_group_on_the_pod() -> None:
    phase = PhaseData(name="fault")
    phase.retransmits_end = {
        ("node-1-pod-1", "node-2-pod-1"): 40.0,
        ("node-2-pod-1", "node-3-pod-1"): 4.0,
        ("node-1-pod-1", "node-3-pod-1"): 1.0,
    }
    row = summarise(phase, frozenset({"node-2"}), frozenset({"node-2-pod-1"}))
    assert (row["to_ebpf_retransmits"], row["from_ebpf_retransmits"]) == (40.0, 4.0)
    assert row["others_ebpf_retransmits"] == 1.0


def test_a_pod_faults_recovery_outlasts_the_ebpf_window(tmp_path: pathlib.Path) -> None:
    lab = Lab(LabSettings(nodes=4, pods=1, state_dir=str(tmp_path), prefix="nmpexp"))
    assert make_plan(lab, args("--pod-fault", "node-3/pod-1"), None).durations["recovery"] >= 45
    given = make_plan(lab, args("--pod-fault", "node-3/pod-1", "--recovery", "20"), None)
    assert given.durations["recovery"] == 20
