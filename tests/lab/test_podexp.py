"""Reading the verdict for the seed's experiment: pod named, node named, rule lines."""

from __future__ import annotations

from lab import podexp
from lab.pods import layout
from lab.topology import build

POD = layout(build("nmt", "10.80.0.0/24", 4), 1, "10.244.0.0/16").pod("node-2/pod-1")
RULE = {
    "rule": "{pod=lab/node-2-pod-1} -> {FAIL}",
    "antecedent": ["pod=lab/node-2-pod-1"],
    "support": 0.5,
    "confidence": 1.0,
    "lift": 2.0,
}
BODY = {
    "verdict": "suspects",
    "findings": [
        {
            "kind": "pod",
            "subject": "lab/node-2-pod-1",
            "nodes": ["node-2"],
            "title": "pod lab/node-2-pod-1 (inbound)",
            "failing_paths": 3,
            "paths": 3,
            "confidence": 1.0,
            "lift": 4.0,
            "rule": "{dst=lab/node-2-pod-1} -> {FAIL}",
        }
    ],
    "pod_rules": [
        {**RULE, "rule": "{pod=lab/node-1-pod-1} -> {FAIL}", "antecedent": ["pod=x"], "lift": 3},
        RULE,
    ],
}


def test_names_the_pod_not_its_node() -> None:
    assert podexp.identity(POD) == "lab/node-2-pod-1"
    assert podexp.names_pod(BODY, POD) and not podexp.names_node(BODY, "node-2")
    node_blamed = {"findings": [{"kind": "node", "subject": "node-2", "nodes": ["node-2"]}]}
    assert podexp.names_node(node_blamed, "node-2") and not podexp.names_pod(node_blamed, POD)
    assert not podexp.any_finding({"verdict": "ok", "findings": []})


def test_describe_prints_the_pods_rule_first_with_its_measures() -> None:
    text = podexp.describe(BODY, POD, 12.5, 60)
    assert "names the faulty pod node-2/pod-1 (lab/node-2-pod-1) after 12.5 s" in text
    lines = text.splitlines()
    first = lines.index("pod rules (eBPF retransmissions per pod pair):") + 1
    assert lines[first].strip().startswith("{pod=lab/node-2-pod-1} -> {FAIL}  support 0.50")
    assert "finding: pod lab/node-2-pod-1 (inbound): 3 of its 3 pod pairs" in text
    assert "confidence 1.00  lift 2.00" in lines[first]
    assert "did not name" in podexp.describe({"verdict": "ok"}, POD, None, 60)
