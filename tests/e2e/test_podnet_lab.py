"""Pod-network endpoints in the lab (root): one per node in a pod namespace of its own,
measuring every pair on the pod network next to the host agents; an overlay MTU mismatch
on one node is named "overlay MTU on node X" within 30 s while its host paths stay green,
and the finding goes away after the fault is cleared.

Three nodes, one workload pod each; the pod endpoints are the agent with network=pod at
the last address of their node's pod block. Faults go in through ``python -m lab``.
"""

from __future__ import annotations

import os
import pathlib
import time
from html.parser import HTMLParser
from typing import Any

from lab import podnet
from lab.lab import Lab
from lab.shell import in_ns, run
from tests.e2e.labapi import api, ordered_pairs
from tests.e2e.labs import lab_fixture, lab_ok
from tests.e2e.labup import LIGHT_TIER
from tests.e2e.page import CHROMIUM, chromium
from tests.helpers import wait_for

PID = os.getpid()
PREFIX = f"nme{PID % 10000}"
SUBNET = f"10.{70 + PID % 10}.{PID // 10 % 250}.0/24"
POD_CIDR = f"172.{24 + PID % 4}.{PID // 4 % 16 * 16}.0/20"
NODES = ("node-1", "node-2", "node-3")


lab = lab_fixture(nodes=3, pods=1, pod_cidr=POD_CIDR, prefix=PREFIX, subnet=SUBNET, **LIGHT_TIER)


def light_paths(lab: Lab, network: str) -> dict[tuple[str, str], dict[str, float | None]]:
    body = api(lab, f"/api/v1/light?network={network}")
    assert body["network"] == network
    return {(p["source"], p["destination"]): p["values"] for p in body["paths"]}


def all_pairs_measured(lab: Lab, network: str) -> bool:
    paths = light_paths(lab, network)
    pairs = ordered_pairs(lab)
    return pairs <= paths.keys() and all(paths[p]["netmesh_light_loss_ratio"] == 0.0 for p in pairs)


def test_every_pair_is_measured_on_both_networks(lab: Lab) -> None:
    entry = lab.pods.of("node-2")
    ep = podnet.endpoint_of(entry)
    # The endpoint lives in its own pod namespace on node-2's pod bridge.
    assert ep.address in run(in_ns(ep.netns, ["ip", "-4", "addr", "show", "eth0"]))
    wait_for(lambda: all_pairs_measured(lab, "pod"), 60, 1.0, "pod-network light paths")
    wait_for(lambda: all_pairs_measured(lab, "host"), 30, 1.0, "host light paths")
    nodes = api(lab, "/api/v1/nodes?network=pod")
    by_name = {n["name"]: n for n in nodes["nodes"]}
    assert set(by_name) == set(NODES)
    assert by_name["node-2"]["address"] == ep.address
    assert all(n["up"] and n["member"] for n in by_name.values())
    text = run(["curl", "-s", lab.collector_url + "/metrics"])
    assert 'netmesh_pod_endpoint_up{node="node-2"} 1' in text
    assert 'source_node="node-1",destination_node="node-2",network="pod"' in text
    assert 'source_node="node-1",destination_node="node-2",network="host"' in text
    # No layer finding on a clean lab (once the start-up windows, in which some endpoints
    # probed peers that were not listening yet, have passed).
    wait_for(lambda: layer_findings(lab) == [], 30, 0.5, "no layer finding on a clean lab")


class _Page(HTMLParser):
    """The page's finding items and the pod matrix's cells (with their failure marks)."""

    def __init__(self) -> None:
        super().__init__()
        self.findings: list[tuple[str | None, str | None]] = []
        self.table = ""
        self.cells: dict[str, list[tuple[str | None, str | None]]] = {}
        self.pod_hidden = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "li" and a.get("data-finding"):
            self.findings.append((a.get("data-finding"), a.get("data-layer")))
        if tag == "figure" and a.get("id") == "pod-figure":
            self.pod_hidden = "hidden" in a
        if tag == "table" and a.get("id") in ("matrix", "pod-matrix"):
            self.table = a["id"] or ""
        if tag == "td" and a.get("data-source"):
            self.cells.setdefault(self.table, []).append((a.get("data-source"), a.get("class")))


def layer_findings(lab: Lab) -> list[dict[str, Any]]:
    return list(api(lab, "/api/v1/rca").get("layer_findings") or [])


def test_overlay_mtu_mismatch_is_named_while_host_paths_stay_green(
    lab: Lab, tmp_path: pathlib.Path
) -> None:
    wait_for(lambda: all_pairs_measured(lab, "pod"), 60, 1.0, "pod-network light paths")
    assert layer_findings(lab) == []
    started = time.monotonic()
    lab_ok(lab, "inject", "--node", "node-2", "--overlay-mtu", "1500")
    try:

        def named() -> dict[str, Any] | None:
            for f in layer_findings(lab):
                if f["node"] == "node-2" and f["kind"] == "overlay-mtu":
                    return f
            return None

        finding = wait_for(named, 30, 0.5, "the overlay MTU of node-2 to be named")
        took = time.monotonic() - started
        print(f"\noverlay MTU on node-2 named after {took:.1f} s: {finding['summary']}")
        assert finding["summary"].startswith("overlay MTU on node node-2")
        assert finding["layer"] == "overlay" and finding["direction"] == "outbound"
        assert [f["node"] for f in layer_findings(lab)] == ["node-2"]  # nothing else
        # Its host paths stay green: every host light path clean, the host RCA names nothing.
        host = light_paths(lab, "host")
        assert all(
            v["netmesh_light_loss_ratio"] == 0.0 and not v["netmesh_light_mtu_loss_ratio"]
            for v in host.values()
        ), host
        rca = api(lab, "/api/v1/rca")
        assert not rca.get("suspects"), rca["summary"]
        # The pod paths from node-2 lose their MTU probes.
        pod = light_paths(lab, "pod")
        assert all(pod[("node-2", b)]["netmesh_light_mtu_loss_ratio"] for b in ("node-1", "node-3"))
        if os.path.exists(CHROMIUM):  # the page: both matrices side by side, the finding
            proc = chromium(tmp_path, "--dump-dom", lab.collector_url + "/")
            assert proc.returncode == 0, proc.stderr[-2000:]
            page = _Page()
            page.feed(proc.stdout)
            assert ("node-2", "overlay") in page.findings
            assert not page.pod_hidden
            assert len(page.cells["matrix"]) == len(page.cells["pod-matrix"]) == 6
            marked = {s for s, cls in page.cells["pod-matrix"] if cls and "suspect-path" in cls}
            assert marked == set(NODES)  # node-2's row and column
    finally:
        lab_ok(lab, "clear", "--node", "node-2")
    wait_for(lambda: layer_findings(lab) == [], 60, 1.0, "the finding to go after the clear")
