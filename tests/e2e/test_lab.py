"""The lab end to end (root): baseline, rate, loss, recovery, cleanup — real iperf3, BPF, tc.

One lab for the whole module (4 nodes, its own prefix and subnet, state in a
temp dir). Each step waits for a full sweep: every ordered pair tested with
both protocols after a given time, polled with a deadline.
"""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.faults import Fault
from lab.lab import Lab, get_json
from lab.netns import cpu_mask, leftovers
from lab.settings import LabSettings
from lab.shell import in_ns, run
from tests.agents import sample
from tests.collector.reports import report
from tests.e2e.conftest import need_root
from tests.e2e.labapi import busy_total, metrics_text
from tests.e2e.labs import lab_fixture
from tests.helpers import wait_for

PREFIX = f"nmt{os.getpid() % 10000}"
# Per-run subnets so that concurrent runs never share a bridge subnet.
SUBNET = f"10.{220 + os.getpid() % 15}.0.0/24"
SUBNET_SMALL = f"10.{235 + os.getpid() % 9}.0.0/24"  # 235-243: 10.244/16 is the pod default
N = 4


lab = lab_fixture(nodes=N, prefix=PREFIX, subnet=SUBNET)


def sweep(lab: Lab, since: float) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Wait until every ordered pair has TCP and UDP results started after ``since``."""
    names = [n.name for n in lab.topo.nodes]
    wanted = {(s, d, p) for s in names for d in names if s != d for p in ("tcp", "udp")}

    def complete() -> dict[tuple[str, str, str], dict[str, Any]] | None:
        paths = get_json(lab.collector_url + "/api/v1/matrix")["paths"]
        got = {
            (p["source"], p["destination"], p["protocol"]): p
            for p in paths
            if p["started_at"] >= since
        }
        return got if wanted <= got.keys() else None

    timeout = lab.settings.sweep_seconds() * 2 + 20
    return wait_for(complete, timeout, interval=0.5, what="a full sweep")


def retransmits_by_pair(text: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = defaultdict(float)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "netmesh_tcp_retransmits_total":
                out[(s.labels["src_pod"], s.labels["dst_pod"])] += s.value
    return out


def test_baseline_full_sweep_without_collisions(lab: Lab) -> None:
    busy_before = busy_total(metrics_text(lab))
    start = time.time()
    results = sweep(lab, start)
    failed = {k: v["message"] for k, v in results.items() if not v["success"]}
    assert not failed, failed
    took = max(v["started_at"] for v in results.values()) - start
    print(
        f"full sweep of {N} nodes x 2 protocols in {took:.1f}s "
        f"(plan: {lab.settings.sweep_seconds():.0f}s)"
    )
    assert busy_total(metrics_text(lab)) == busy_before, "server busy collisions"
    for (_src, _dst, proto), r in results.items():
        if proto == "tcp":
            assert r["bandwidth_bits_per_second"] > 0.5 * lab.settings.baseline_rate


PAYLOAD_SHARE = 1448 / 1514  # TCP payload per Ethernet frame (MSS 1448 with timestamps)


@pytest.mark.parametrize("rate_mbit", [200, 500])
def test_rate_shaping_measured_within_10_percent(lab: Lab, rate_mbit: int) -> None:
    node = lab.topo.nodes[0].name
    lab.inject(node, Fault(rate_bps=rate_mbit * 1_000_000))
    try:
        results = sweep(lab, time.time() + 0.5)
    finally:
        lab.clear(node)
    measured = [
        r["bandwidth_bits_per_second"] / 1e6
        for (s, _d, p), r in results.items()
        if s == node and p == "tcp"
    ]
    # tbf shapes whole frames; iperf3 reports TCP payload: at most 1448 of every 1514 bytes
    payload = rate_mbit * PAYLOAD_SHARE
    errors = [abs(m - payload) / payload for m in measured]
    print(
        f"tbf {rate_mbit} Mbit/s on {node} (payload limit {payload:.0f}): measured "
        f"{[round(m) for m in measured]} Mbit/s, worst error {max(errors):.1%}"
    )
    assert len(measured) == N - 1
    assert max(errors) <= 0.10


def test_loss_into_one_node(lab: Lab) -> None:
    victim = lab.topo.nodes[2]
    before = retransmits_by_pair(metrics_text(lab))
    lab.inject(victim.name, Fault(loss=0.05))
    try:
        # With 5 % loss some UDP tests into the victim fail outright (iperf3's
        # UDP handshake datagram dropped): measure over up to three sweeps.
        measured: dict[tuple[str, float], float] = {}
        for _ in range(3):
            results = sweep(lab, time.time() + 0.5)
            for (s, d, p), r in results.items():
                if d == victim.name and p == "udp" and r["success"]:
                    measured[(s, r["started_at"])] = r["loss_ratio"]
            if len(measured) >= N - 1:
                break
        after = retransmits_by_pair(wait_for(lambda: metrics_text(lab), 5))
    finally:
        lab.clear(victim.name)
    udp_to = list(measured.values())
    udp_else = [
        r["loss_ratio"]
        for (s, d, p), r in results.items()
        if d != victim.name and p == "udp" and r["success"]
    ]
    # Median over paths: a stall of this 2-core machine can add a few % to the
    # concurrent tests of one slot; the injected drop is on every path into Y.
    loss_to = statistics.median(udp_to)
    udp_from = {
        d: f"{r['loss_ratio']:.2%}"
        for (s, d, p), r in results.items()
        if s == victim.name and p == "udp" and r["success"]
    }
    print(
        f"5% loss into {victim.name}: UDP loss to it {loss_to:.2%} (per path "
        f"{[f'{x:.2%}' for x in udp_to]}), from it {udp_from}, elsewhere max {max(udp_else):.2%}"
    )
    assert len(udp_to) >= N - 2
    assert abs(loss_to - 0.05) <= 0.02
    # The drop is only into the victim: other paths stay clean.
    assert statistics.median(udp_else) < 0.01, udp_else
    tcp_to = [
        r["retransmits"]
        for (s, d, p), r in results.items()
        if d == victim.name and p == "tcp" and r["success"]
    ]
    tcp_else = [
        r["retransmits"]
        for (s, d, p), r in results.items()
        if d != victim.name and p == "tcp" and r["success"]
    ]
    print(f"iperf3 retransmits to {victim.name}: {tcp_to}; elsewhere: {tcp_else}")
    assert tcp_to and min(tcp_to) > 0
    # Per path, as for UDP: a stall of the machine can make one clean path's tbf drop a
    # burst (528 retransmits on one path seen at load 20); the typical clean path has none.
    assert statistics.median(tcp_else) <= 0.01 * statistics.median(tcp_to), tcp_else
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    to_victim = sum(v for (s, d), v in delta.items() if d == victim.name)
    elsewhere = sum(v for (s, d), v in delta.items() if victim.name not in (d, s))
    print(
        f"eBPF retransmissions attributed to {victim.name}: {to_victim:.0f}; "
        f"between other nodes: {elsewhere:.0f}"
    )
    assert to_victim > 100
    assert elsewhere <= 0.01 * to_victim


def test_veths_steer_flows_over_every_cpu(lab: Lab) -> None:
    """Each node's veth ends spread received packets by flow hash (RPS): without it this
    2-core machine reorders a flow's packets and TCP retransmits on clean paths."""
    mask = int(cpu_mask(os.cpu_count() or 1).replace(",", ""), 16)

    def rps(dev: str, netns: str | None = None) -> int:
        cmd = ["cat", f"/sys/class/net/{dev}/queues/rx-0/rps_cpus"]
        return int(run(in_ns(netns, cmd) if netns else cmd).strip().replace(",", ""), 16)

    for node in lab.topo.nodes:
        assert rps(node.host_veth) == mask, node.host_veth
        assert rps("eth0", node.netns) == mask, node.netns


def test_recovery_next_sweep_is_clean(lab: Lab) -> None:
    victim = lab.topo.nodes[1].name
    lab.inject(victim, Fault(loss=0.2))
    lab.clear(victim)
    assert lab.faults() == {}
    results = sweep(lab, time.time() + 0.5)
    failed = {k: v["message"] for k, v in results.items() if not v["success"]}
    assert not failed, failed
    udp = {(src, dst): r["loss_ratio"] for (src, dst, p), r in results.items() if p == "udp"}
    print(f"UDP loss after clear: {[f'{s}->{d} {v:.2%}' for (s, d), v in sorted(udp.items())]}")
    # The 20 % drop rule is gone: paths into the victim are no worse than the
    # rest and far below what was injected. A stall of this 2-core machine can
    # cost the 4 concurrent tests of one slot a few % together, so single
    # paths are not held to zero; the median path is.
    into_victim = [v for (_s, d), v in udp.items() if d == victim]
    others = [v for (_s, d), v in udp.items() if d != victim]
    assert statistics.fmean(into_victim) < 0.05, udp
    assert statistics.fmean(into_victim) <= statistics.fmean(others) + 0.02, udp
    assert statistics.median(udp.values()) < 0.01, udp


def test_cli_errors_are_clear(lab: Lab) -> None:
    base = [
        sys.executable,
        "-m",
        "lab",
        "inject",
        "--prefix",
        PREFIX,
        "--subnet",
        SUBNET,
        "--state-dir",
        lab.settings.state_dir,
    ]

    def inject(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=30, check=False
        )

    bad = inject("--node", "node-9", "--loss", "5%")
    assert bad.returncode == 1 and "no lab node 'node-9'" in bad.stderr
    bad = inject("--node", "node-1", "--loss", "150%")
    assert bad.returncode == 1 and "loss" in bad.stderr
    if not lab.status()["netem"]:
        bad = inject("--node", "node-1", "--delay", "20ms")
        assert bad.returncode == 1 and "netem" in bad.stderr
    assert lab.faults() == {}, "a rejected fault changed the lab"


def test_probe_and_metrics_visible(lab: Lab) -> None:
    text = metrics_text(lab)
    for node in lab.topo.nodes:
        assert sample(text, "netmesh_agent_up", node=node.name) == 1.0


def test_lab_runs_authenticated(lab: Lab) -> None:
    """The agents' reports carry the lab's token and are accepted; none without it."""
    assert lab.token_path.stat().st_mode & 0o777 == 0o600
    text = metrics_text(lab)
    assert sample(text, "netmesh_collector_auth_mode", mode="token") == 1.0
    assert (sample(text, "netmesh_collector_reports_total", result="accepted") or 0) > 0
    assert sample(text, "netmesh_collector_reports_total", result="unauthenticated") is None
    forged = report(lab.topo.nodes[0].name).to_json()
    request = urllib.request.Request(
        lab.collector_url + "/api/v1/reports",
        data=json.dumps(forged).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 401
    assert get_json(lab.collector_url + "/healthz")["auth"] == "token"


def test_down_is_idempotent_and_complete(tmp_path: pathlib.Path) -> None:
    need_root()
    lab = Lab(
        LabSettings(
            nodes=2,
            prefix=f"{PREFIX}x",
            subnet=SUBNET_SMALL,
            state_dir=str(tmp_path),
            traffic=False,
            probe_mode="off",
        )
    )
    lab.up()
    lab.inject("node-2", Fault(loss=0.1))
    assert lab.down()
    assert lab.down() == []
    assert leftovers(f"{PREFIX}x") == ([], [])
    out = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True, check=True).stdout
    assert f"{PREFIX}x" not in out
