"""Pod layout (blocks, addresses, names), its validation, and the overlay's commands."""

from __future__ import annotations

import pathlib

import pytest

from lab import overlay
from lab.lab import Lab, LabError
from lab.pods import block_prefix, layout, validate
from lab.settings import LabSettings
from lab.state import state_path, write
from lab.topology import build
from netmesh.config import SettingsError


def test_layout_carves_one_block_per_node() -> None:
    topo = build("nmt", "10.80.0.0/24", 4)
    pods = layout(topo, 2, "10.244.0.0/16")
    assert [n.cidr for n in pods.nodes] == [f"10.244.{i}.0/24" for i in range(1, 5)]
    entry = pods.of("node-2")
    assert (entry.vtep, entry.gateway) == ("10.244.2.0", "10.244.2.1")
    assert [p.address for p in entry.pods] == ["10.244.2.2", "10.244.2.3"]
    pod = pods.pod("node-2/pod-1")
    assert pod.netns == "nmt-node-2-pod-1" and pod.node_veth == "vp1" and pod.node == "node-2"
    assert pods.pod("10.244.3.3").name == "node-3/pod-2"
    assert len({n.vtep_mac for n in pods.nodes}) == 4


def test_small_cidr_gets_smaller_blocks() -> None:
    assert block_prefix("172.20.16.0/20", 4, 2) == 24
    assert block_prefix("172.20.16.0/24", 4, 2) == 27
    with pytest.raises(ValueError, match="too small"):
        block_prefix("172.20.16.0/28", 4, 5)


def test_unknown_pod_and_no_pods_are_clear() -> None:
    topo = build("nmt", "10.80.0.0/24", 3)
    with pytest.raises(KeyError, match=r"no lab pod 'node-9/pod-1' \(pods: node-1/pod-1"):
        layout(topo, 1, "10.244.0.0/16").pod("node-9/pod-1")
    with pytest.raises(KeyError, match="has no pods"):
        layout(topo, 0, "10.244.0.0/16").pod("node-1/pod-1")


@pytest.mark.parametrize(
    ("cidr", "subnet", "pods", "message"),
    [
        ("10.80.0.0/16", "10.80.0.0/24", 1, "overlaps the lab subnet"),
        ("8.8.0.0/16", "10.80.0.0/24", 1, "private"),
        ("10.244.0.0/29", "10.80.0.0/24", 4, "too small"),
        ("nonsense", "10.80.0.0/24", 1, "pod_cidr 'nonsense'"),
        ("10.244.0.0/16", "10.80.0.0/24", 99, "pods 99"),
    ],
)
def test_validate_names_the_problem(cidr: str, subnet: str, pods: int, message: str) -> None:
    assert any(message in p for p in validate(cidr, subnet, 4, pods))


def test_settings_refuse_overlapping_pod_cidr() -> None:
    with pytest.raises(SettingsError, match="overlaps the lab subnet"):
        LabSettings(subnet="10.80.1.0/24", pod_cidr="10.80.0.0/16", pods=1)
    assert validate("10.80.0.0/16", "10.81.0.0/24", 4, 0) == []


def test_overlay_commands_reach_every_peer_without_multicast() -> None:
    topo = build("nmt", "10.80.0.0/24", 3)
    cmds = [" ".join(c) for c in overlay.commands(layout(topo, 1, "10.244.0.0/16"))]
    node1 = [c for c in cmds if c.startswith("ip netns exec nmt-node-1 ")]
    assert any(
        "type vxlan id 1 local 10.80.0.11 dev eth0 dstport 4789 nolearning" in c for c in node1
    )
    assert sum("bridge fdb append" in c for c in node1) == 2
    assert any("route replace 10.244.3.0/24 via 10.244.3.0 dev vxlan0 onlink" in c for c in node1)
    assert not any("10.244.1.0/24 via" in c for c in node1)  # no route to its own block
    assert any(f"mtu {overlay.POD_MTU}" in c and "nmt-node-1-pod-1" in c for c in cmds)
    assert overlay.POD_MTU == 1450


def test_up_refuses_ranges_of_another_running_lab(tmp_path: pathlib.Path) -> None:
    other = state_path(str(tmp_path), "nmother")
    write(other, {"settings": {}, "subnet": "10.80.5.0/24", "pod_cidr": "172.20.0.0/16"})
    lab = Lab(
        LabSettings(
            state_dir=str(tmp_path),
            prefix="nmme",
            subnet="10.80.6.0/24",
            pods=1,
            pod_cidr="172.20.16.0/20",
        )
    )
    with pytest.raises(
        LabError,
        match=r"pod_cidr 172.20.16.0/20 overlaps the pod_cidr 172.20.0.0/16 of lab 'nmother'",
    ):
        lab._check_overlaps()
    lab = Lab(LabSettings(state_dir=str(tmp_path), prefix="nmme", subnet="10.80.5.0/25"))
    with pytest.raises(LabError, match=r"subnet 10.80.5.0/25 overlaps the subnet"):
        lab._check_overlaps()
    Lab(
        LabSettings(state_dir=str(tmp_path), prefix="nmme", subnet="10.80.7.0/24")
    )._check_overlaps()
