"""The seed's experiment end to end (root): 4 pods calling each other, 20 % loss into one.

A 4-node lab with one pod per node on the VXLAN overlay, the pods' HTTP
workload all-to-all and the eBPF probe on. ``netmesh-lab experiment
--pod-fault node-2/pod-1 --loss 20%`` runs on it (baseline, fault, recovery):
the verdict names that pod — not its node — within 30 s, the printed rules
include the pod's {pod} → {FAIL} with support, confidence and lift, and there
is no finding in the baseline nor at the end of the recovery.
"""

from __future__ import annotations

import json
import os
import pathlib

from lab import podexp
from lab.lab import Lab
from tests.e2e.labs import lab_fixture, lab_ok

PREFIX = f"nmq{os.getpid() % 10000}"
SUBNET = f"10.{84 + os.getpid() % 4}.{os.getpid() // 7 % 250}.0/24"
POD_CIDR = f"172.{20 + (os.getpid() + 2) % 4}.{(os.getpid() // 4 + 8) % 16 * 16}.0/20"
GOAL = 30.0
EXPERIMENT = [
    "--pod-fault",
    "node-2/pod-1",
    "--loss",
    "20%",
    "--plain",
    "--baseline",
    "20",
    "--fault",
    "40",
    "--recovery",
    "50",
]


lab = lab_fixture(
    nodes=4, pods=1, pod_cidr=POD_CIDR, prefix=PREFIX, subnet=SUBNET, bandwidth_budget=0.05
)


def test_the_seeds_experiment_names_the_pod(lab: Lab, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "experiment.json"
    text = lab_ok(lab, "experiment", *EXPERIMENT, "--json", str(out), timeout=300)
    summary = json.loads(out.read_text())
    pod = lab.pods.pod("node-2/pod-1")
    assert summary["pod"] == "node-2/pod-1"
    # Named, in time, and not its node.
    assert summary["named_after"] is not None and summary["named_after"] <= GOAL, text
    assert podexp.names_pod(summary["rca"], pod), summary["rca"]
    assert not podexp.names_node(summary["rca"], "node-2"), summary["rca"]
    assert "names the faulty pod node-2/pod-1 (lab/node-2-pod-1)" in text
    # The printed rules: the pod's own, with its measures.
    rule = next(
        line
        for line in text.splitlines()
        if "=lab/node-2-pod-1} -> {FAIL}" in line and line.lstrip().startswith("{")
    )
    assert "support" in rule and "confidence" in rule and "lift" in rule
    best = [r for r in summary["rca"]["pod_rules"] if "lab/node-2-pod-1" in r["rule"]]
    assert max(r["lift"] for r in best) > 1.0 and max(r["confidence"] for r in best) >= 0.5
    # Nothing in the baseline; nothing left at the end of the recovery.
    assert summary["findings_seen"]["baseline"] == 0, text
    assert summary["findings_at_end"]["recovery"] is False, text
    # eBPF saw the loss into the pod, not elsewhere.
    fault = summary["phases"][1]
    assert fault["to_ebpf_retransmits"] > 10 * max(1.0, fault["others_ebpf_retransmits"])
