"""A lab with racks (root): topology, uplink and link faults, and the CLI on the running lab.

Four nodes on two rack bridges (node-1, node-2 in rack-1; node-3, node-4 in
rack-2) joined through the core bridge. The agents' light tier measures every
pair continuously (iperf3 spaced by a small budget), so loss shows within one
10 s window. Faults go in through ``python -m lab`` without repeating the
flags ``up`` got: the commands read the running lab's state file.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time

from lab.lab import Lab
from lab.netns import has_nft_table, leftovers
from lab.shell import in_ns, run
from tests.e2e.labapi import light_windows_after
from tests.e2e.labs import lab_cli, lab_fixture, lab_ok
from tests.e2e.labup import LIGHT_TIER
from tests.helpers import wait_for

PREFIX = f"nmr{os.getpid() % 10000}"
SUBNET = f"10.{100 + os.getpid() % 20}.0.0/24"

Loss = dict[tuple[str, str], float]


lab = lab_fixture(
    nft_for="uplink loss", nodes=4, racks=2, prefix=PREFIX, subnet=SUBNET, **LIGHT_TIER
)


def forward_loss_after(lab: Lab, since: float) -> Loss:
    """Light-tier forward loss of every ordered pair, from windows that began after ``since``."""
    paths = wait_for(
        lambda: light_windows_after(lab, since, min_probes=50),
        60,
        1.0,
        "a light-tier window of every pair after the change",
    )
    return {
        (p["source"], p["destination"]): float(p["values"]["netmesh_light_forward_loss_ratio"])
        for p in paths
    }


def rack(lab: Lab, name: str) -> int:
    return lab.topo.node(name).rack


def test_nodes_sit_on_their_rack_bridges_and_reach_each_other_through_the_core(lab: Lab) -> None:
    for node in lab.topo.nodes:
        shown = run(["ip", "-o", "link", "show", node.host_veth])
        assert f"master {PREFIX}-r{node.rack}" in shown
    for k in (1, 2):
        assert f"master {PREFIX}-br" in run(["ip", "-o", "link", "show", f"{PREFIX}u{k}c"])
    loss = forward_loss_after(lab, time.time())
    assert all(v < 0.03 for v in loss.values()), loss


def test_agents_get_their_rack_label_and_link_speed(lab: Lab) -> None:
    pids = lab.load_state()["pids"]
    for node in lab.topo.nodes:
        env = pathlib.Path(f"/proc/{pids[node.name]}/environ").read_bytes().split(b"\0")
        assert f"NETMESH_LABELS=rack=rack-{node.rack}".encode() in env
        assert f"NETMESH_LINK_SPEED={lab.settings.baseline_rate}".encode() in env


def test_uplink_loss_hits_cross_rack_paths_only(lab: Lab) -> None:
    since = time.time()
    out = lab_ok(lab, "inject", "--uplink", "rack-2", "--loss", "20%")
    assert "uplink of rack-2: 20% loss (both directions)" in out
    try:
        assert has_nft_table(PREFIX)
        loss = forward_loss_after(lab, since)
        cross = {p: v for p, v in loss.items() if rack(lab, p[0]) != rack(lab, p[1])}
        same = {p: v for p, v in loss.items() if rack(lab, p[0]) == rack(lab, p[1])}
        assert len(cross) == 8 and len(same) == 4
        assert all(0.08 < v < 0.4 for v in cross.values()), cross
        assert all(v < 0.03 for v in same.values()), same
    finally:
        lab_ok(lab, "clear", "--uplink", "rack-2")
    assert not has_nft_table(PREFIX)


def test_uplink_loss_in_one_direction(lab: Lab) -> None:
    since = time.time()
    lab_ok(lab, "inject", "--uplink", "2", "--loss", "20%", "--direction", "in")
    try:
        loss = forward_loss_after(lab, since)
        into = {p: v for p, v in loss.items() if rack(lab, p[0]) == 1 and rack(lab, p[1]) == 2}
        out_of = {p: v for p, v in loss.items() if rack(lab, p[0]) == 2 and rack(lab, p[1]) == 1}
        assert all(0.08 < v < 0.4 for v in into.values()), into
        # Not exactly 0: with 20 % of the echoes lost, the last probes of a window whose echoes
        # (which carry the responder's count) all vanished cannot be told from forward loss
        # (seen: 1 of 33). The injected direction reads 8-40 %.
        assert all(v < 0.05 for v in out_of.values()), out_of
    finally:
        lab_ok(lab, "clear", "--uplink", "2")


def _iperf3(lab: Lab, client: str, server: str, port: int) -> float:
    """Received bits/s of a 2 s TCP test ``client`` → ``server`` on a port of this test's own."""
    src, dst = lab.topo.node(client), lab.topo.node(server)
    srv = subprocess.Popen(
        in_ns(dst.netns, ["iperf3", "-s", "-B", dst.address, "-p", str(port)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def measure() -> float | None:
            proc = subprocess.run(
                in_ns(src.netns, ["iperf3", "-c", dst.address, "-p", str(port), "-t", "2", "-J"]),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            try:  # not listening yet, or a test cut short: try again
                return float(json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"])
            except (ValueError, KeyError):
                return None

        return wait_for(measure, 20, 0.2, f"iperf3 {client} -> {server}")
    finally:
        srv.kill()
        srv.wait(timeout=10)


def test_uplink_rate_limits_cross_rack_throughput_into_the_rack(lab: Lab) -> None:
    lab_ok(lab, "inject", "--uplink", "rack-2", "--rate", "50mbit", "--direction", "in")
    try:
        cross = _iperf3(lab, "node-1", "node-3", 5301)
        same = _iperf3(lab, "node-4", "node-3", 5302)
    finally:
        lab_ok(lab, "clear", "--uplink", "rack-2")
    assert 25e6 < cross < 60e6, cross
    # Same rack: no uplink on the path, only the 1 Gbit/s baseline (busy cores reach less).
    assert same > 75e6, same


def test_link_loss_hits_that_pair_only(lab: Lab) -> None:
    since = time.time()
    out = lab_ok(lab, "inject", "--link", "node-2,node-1", "--loss", "20%")
    assert "link node-1 <-> node-2: 20% loss both ways" in out
    try:
        loss = forward_loss_after(lab, since)
        pair = {("node-1", "node-2"), ("node-2", "node-1")}
        assert all(0.08 < loss[p] < 0.4 for p in pair), loss
        assert all(v < 0.03 for p, v in loss.items() if p not in pair), loss
        status = lab_ok(lab, "status")
        assert '"node-1|node-2"' in status
    finally:
        lab_ok(lab, "clear", "--link", "node-1,node-2")


def test_cli_acts_on_the_running_lab(lab: Lab) -> None:
    status = lab_ok(lab, "status")
    assert '"stray_processes": []' in status and '"racks": 2' in status
    # A node beyond the default count is not needed here; the subnet is not the default one.
    out = lab_ok(lab, "inject", "--node", "node-4", "--loss", "1%")
    assert f"node-4 ({lab.topo.node('node-4').address})" in out and SUBNET[:-6] in out
    assert lab_ok(lab, "clear").startswith("cleared: node-1, node-2, node-3, node-4")
    bad = lab_cli(lab, "inject", "--node", "node-1", "--loss", "1%", "--nodes", "6")
    assert bad.returncode == 2 and "--nodes 6 (the lab runs with 4)" in bad.stderr
    bad = lab_cli(lab, "inject", "--link", "node-1,node-2", "--rate", "10mbit")
    assert bad.returncode == 1 and "--loss only" in bad.stderr


def test_down_without_flags_removes_everything(lab: Lab) -> None:
    lab_ok(lab, "inject", "--uplink", "rack-1", "--loss", "1%")
    out = lab_ok(lab, "down")
    assert "processes" in out and f"nft table bridge netmesh_lab_{PREFIX}" in out
    assert leftovers(PREFIX) == ([], [])
    assert not has_nft_table(PREFIX)
    assert "no lab" in lab_cli(lab, "inject", "--node", "1", "--loss", "1%").stderr
