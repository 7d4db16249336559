"""A lab with pods (root): pod namespaces, the VXLAN overlay over racks, the pod workload,
pod loss, the overlay MTU mismatch, bad input, and a clean ``down``.

Four nodes on two racks, two pods each. Pod-to-pod traffic between nodes is
encapsulated on the nodes' ``vxlan0`` (its counters prove it) and rides the racked
underlay. Faults go in through ``python -m lab`` on the running lab.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import subprocess
import sys
import time

from lab import overlay
from lab.lab import Lab
from lab.netns import leftovers
from lab.pods import LabPod
from lab.shell import in_ns, run
from tests.e2e.labs import lab_cli, lab_fixture, lab_ok
from tests.helpers import wait_for

PREFIX = f"nmp{os.getpid() % 10000}"
SUBNET = f"10.{80 + os.getpid() % 10}.{os.getpid() // 10 % 250}.0/24"
POD_CIDR = f"172.{20 + os.getpid() % 4}.{os.getpid() // 4 % 16 * 16}.0/20"

# Receive UDP datagrams on (address, port) for a few seconds; print how many arrived.
UDP_RECV = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(float(sys.argv[3]))
n = 0
try:
    while True:
        s.recv(65535)
        n += 1
except TimeoutError:
    pass
print(n)
"""
# Send N datagrams of SIZE bytes (DF set or not); print "sent errors".
UDP_SEND = """
import socket, sys, time
addr, df = sys.argv[1], sys.argv[5]
port, n, size = (int(a) for a in sys.argv[2:5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2 if df == "df" else 0)  # IP_MTU_DISCOVER: DO / DONT
sent = errors = 0
for _ in range(n):
    try:
        s.sendto(b"x" * size, (addr, port))
        sent += 1
    except OSError:
        errors += 1
    time.sleep(0.003)
print(sent, errors)
"""


lab = lab_fixture(
    nodes=4,
    racks=2,
    pods=2,
    pod_cidr=POD_CIDR,
    prefix=PREFIX,
    subnet=SUBNET,
    probe_mode="off",
    bandwidth_budget=0.05,
)


def fetch(src: LabPod, dst: LabPod, size: int = 1000) -> str:
    """HTTP status and size of ``GET /bytes/size`` from the pod workload's server in ``dst``."""
    url = f"http://{dst.address}:8080/bytes/{size}"
    fmt = "%{http_code} %{size_download}"
    return run(in_ns(src.netns, ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", fmt, url]))


def udp(src: LabPod, dst: LabPod, *, count: int, size: int, df: bool, port: int) -> tuple[int, int]:
    """(sent without error, received) of ``count`` datagrams ``src`` → ``dst``."""
    recv = subprocess.Popen(
        in_ns(dst.netns, [sys.executable, "-c", UDP_RECV, dst.address, str(port), "2"]),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: f":{port} " in run(in_ns(dst.netns, ["ss", "-uln"])), 10, 0.05, "receiver")
        args = [str(port), str(count), str(size), "df" if df else "nodf"]
        out = run(
            in_ns(
                src.netns,
                [sys.executable, "-c", UDP_SEND, dst.address, *args],
            )
        )
        received, _ = recv.communicate(timeout=30)
    finally:
        recv.kill()
        recv.wait(timeout=10)
    return int(out.split()[0]), int(received.strip())


def counters(lab: Lab, node: str) -> dict[str, int]:
    return overlay.vxlan_counters(lab.topo.node(node).netns)


def test_pods_sit_on_their_node_bridge_with_the_overlay_mtu(lab: Lab) -> None:
    assert len(lab.pods.pods) == 8
    pod = lab.pods.pod("node-3/pod-2")
    entry = lab.pods.of("node-3")
    assert ipaddress.IPv4Address(pod.address) in entry.network
    assert entry.network.subnet_of(ipaddress.IPv4Network(POD_CIDR))
    shown = run(in_ns(entry.node.netns, ["ip", "-o", "link", "show", pod.node_veth]))
    assert "master cni0" in shown and f"mtu {overlay.POD_MTU}" in shown
    assert f"mtu {overlay.POD_MTU}" in run(in_ns(pod.netns, ["ip", "-o", "link", "show", "eth0"]))
    routes = run(in_ns(entry.node.netns, ["ip", "route"]))
    others = [e for e in lab.pods.nodes if e.node.name != "node-3"]
    assert all(f"{e.cidr} via {e.vtep} dev vxlan0 onlink" in routes for e in others), routes
    body = json.loads(lab.pods_file.read_text())
    assert {"namespace": "lab", "name": "node-3-pod-2", "node": "node-3", "ips": [pod.address]} in (
        body["pods"]
    )


def test_pod_to_pod_across_racks_is_encapsulated(lab: Lab) -> None:
    src, dst = lab.pods.pod("node-1/pod-1"), lab.pods.pod("node-4/pod-2")  # rack-1 → rack-2
    assert lab.topo.node("node-1").rack != lab.topo.node("node-4").rack
    before = counters(lab, "node-1")
    assert fetch(src, dst, 200_000) == "200 200000"
    after = counters(lab, "node-1")
    # The request went out and the 200 kB answer came in through vxlan0.
    assert after["tx_packets"] > before["tx_packets"]
    assert after["rx_bytes"] - before["rx_bytes"] > 200_000
    # Same node: bridged on cni0, and pods reach node addresses (masqueraded) and the collector.
    assert fetch(src, lab.pods.pod("node-1/pod-2")) == "200 1000"
    url = f"{lab.collector_url}/healthz"
    assert (
        run(
            in_ns(
                src.netns, ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url]
            )
        )
        == "200"
    )


def test_the_workload_calls_every_pod(lab: Lab) -> None:
    """Every pod's server answers, and every node's overlay carries traffic on its own."""
    before = {n.name: counters(lab, n.name)["rx_bytes"] for n in lab.topo.nodes}

    def grown() -> bool:
        return all(counters(lab, n)["rx_bytes"] - b > 100_000 for n, b in before.items())

    wait_for(grown, 20, 0.5, "the pods' traffic on every node's vxlan0")
    logs = pathlib.Path(lab.settings.state_dir) / PREFIX / "logs"
    assert len(list(logs.glob("node-*-pod-*-traffic.log"))) == 8


def test_pod_loss_drops_into_that_pod_only(lab: Lab) -> None:
    out = lab_ok(lab, "inject", "--pod", "node-2/pod-1", "--loss", "30%")
    faulty, sibling = lab.pods.pod("node-2/pod-1"), lab.pods.pod("node-2/pod-2")
    assert f"pod node-2/pod-1 ({faulty.address}): 30% loss into the pod" in out
    src = lab.pods.pod("node-3/pod-1")
    try:
        status = json.loads(lab_ok(lab, "status"))
        assert status["pod_faults"]["node-2/pod-1"]["loss"] == 0.3
        sent, got = udp(src, faulty, count=400, size=200, df=False, port=9611)
        assert sent == 400 and 200 < got < 360, got
        sent, got = udp(src, sibling, count=400, size=200, df=False, port=9612)
        assert got >= 396, got
        # Out of the faulty pod is not dropped (receiver-side only).
        sent, got = udp(faulty, src, count=400, size=200, df=False, port=9613)
        assert got >= 396, got
    finally:
        assert "node-2/pod-1" in lab_ok(lab, "clear", "--pod", "node-2/pod-1")
    assert json.loads(lab_ok(lab, "status"))["pod_faults"] == {}
    assert udp(src, faulty, count=200, size=200, df=False, port=9614)[1] >= 198


def test_overlay_mtu_mismatch_breaks_big_df_packets_from_that_nodes_pods(lab: Lab) -> None:
    out = lab_ok(lab, "inject", "--node", "node-3", "--overlay-mtu", "1500")
    assert "overlay (VXLAN and pod) MTU 1500" in out
    src, dst = lab.pods.pod("node-3/pod-1"), lab.pods.pod("node-1/pod-1")
    try:
        assert "mtu 1500" in run(in_ns(src.netns, ["ip", "-o", "link", "show", "eth0"]))
        dropped = counters(lab, "node-3")["tx_dropped"]
        # 1472 bytes of UDP = a 1500-byte packet: with DF it cannot be encapsulated.
        sent, got = udp(src, dst, count=20, size=1472, df=True, port=9621)
        assert got == 0 and sent <= 1, (sent, got)
        assert counters(lab, "node-3")["tx_dropped"] > dropped
        # Below the real overlay MTU everything passes; without DF the node fragments.
        assert udp(src, dst, count=20, size=1400, df=True, port=9622)[1] == 20
        assert udp(src, dst, count=20, size=1472, df=False, port=9623)[1] == 20
        # TCP is unharmed (MSS from the peer's 1450, PMTU discovery).
        assert fetch(src, dst, 2_000_000) == "200 2000000"
        assert fetch(dst, src, 2_000_000) == "200 2000000"
        assert json.loads(lab_ok(lab, "status"))["overlay_faults"]["node-3"]["mtu"] == 1500
    finally:
        lab_ok(lab, "clear", "--node", "node-3")
    assert f"mtu {overlay.POD_MTU}" in run(in_ns(src.netns, ["ip", "-o", "link", "show", "eth0"]))
    assert "dev eth0" in run(
        in_ns(src.netns.rsplit("-pod-", 1)[0], ["ip", "-d", "link", "show", "vxlan0"])
    )
    assert udp(src, dst, count=20, size=1400, df=True, port=9624)[1] == 20
    assert fetch(src, dst) == "200 1000"


def test_bad_input_gets_clear_errors(lab: Lab) -> None:
    bad = lab_cli(lab, "inject", "--pod", "node-9/pod-1", "--loss", "20%")
    assert bad.returncode == 1 and "no lab pod 'node-9/pod-1' (pods: node-1/pod-1" in bad.stderr
    bad = lab_cli(lab, "inject", "--pod", "node-1/pod-1", "--rate", "10mbit")
    assert bad.returncode == 1 and "--loss only" in bad.stderr
    bad = lab_cli(lab, "inject", "--node", "node-1", "--overlay-mtu", "1450")
    assert bad.returncode == 1 and "correct pod MTU" in bad.stderr
    bad = lab_cli(lab, "inject", "--pod", "node-1/pod-1", "--overlay-mtu", "1500")
    assert bad.returncode == 1 and "node faults" in bad.stderr
    up = ["up", "--prefix", "nmpbad", "--subnet", SUBNET, "--pods", "2"]
    for flags, message in (
        (["--pod-cidr", SUBNET.rsplit(".", 2)[0] + ".0.0/16"], "overlaps the lab subnet"),
        (["--pod-cidr", "172.20.0.0/28"], "too small for 4 nodes x 2 pods"),
        (["--pods", "99"], "pods 99"),
    ):
        proc = lab_cli(lab, *up, *flags)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_down_removes_pods_and_overlay(lab: Lab) -> None:
    lab_ok(lab, "inject", "--pod", "node-1/pod-1", "--loss", "5%")
    out = lab_ok(lab, "down")
    assert f"netns {PREFIX}-node-1-pod-1" in out
    assert leftovers(PREFIX) == ([], [])
    assert not lab.pods_file.exists()
    started = time.monotonic()
    assert "no lab" in lab_cli(lab, "inject", "--pod", "node-1/pod-1", "--loss", "1%").stderr
    assert time.monotonic() - started < 30
