"""The lab's pod-network endpoints: one pod namespace per node, its address, its commands,
its environment (the node's agent's, on the pod network)."""

from __future__ import annotations

import pytest

from lab import podnet
from lab.pods import layout
from lab.topology import build


def test_one_endpoint_per_node_at_the_end_of_its_block() -> None:
    pods = layout(build("nmt", "10.80.0.0/24", 3), 2, "10.244.0.0/16")
    eps = podnet.endpoints(pods)
    assert [(e.name, e.address, e.netns) for e in eps] == [
        (f"node-{i}/podnet", f"10.244.{i}.254", f"nmt-node-{i}-podnet") for i in (1, 2, 3)
    ]
    assert {e.gateway for e in eps} == {f"10.244.{i}.1" for i in (1, 2, 3)}
    assert all(e.address not in {p.address for p in pods.pods} for e in eps)
    cmds = podnet.commands(pods)
    assert ["ip", "netns", "add", "nmt-node-2-podnet"] in cmds
    assert any(podnet.VETH in c and "nmt-node-2" in c for c in cmds)
    assert not any("nmt-node-2-pod-1" in c for c in cmds)  # the workload's pods are not touched
    mtu = podnet.mtu_commands(pods.of("node-2"), 1500)
    assert all("1500" in c or "flush" in c for c in mtu)
    assert any("nmt-node-2-podnet" in c for c in mtu)


def test_a_full_block_leaves_no_room() -> None:
    # A /28 per node: VTEP .0, gateway .1, pods .2-.14, broadcast .15: .14 is pod-13.
    pods = layout(build("nmt", "10.80.0.0/24", 3), 13, "172.20.16.0/26")
    assert pods.nodes[0].cidr.endswith("/28")
    with pytest.raises(ValueError, match="no address left for its pod-network endpoint"):
        podnet.endpoints(pods)


def test_endpoint_env_is_the_agents_on_the_pod_network() -> None:
    pods = layout(build("nmt", "10.80.0.0/24", 2), 1, "10.244.0.0/16")
    ep = podnet.endpoint_of(pods.of("node-2"))
    agent = {
        "NETMESH_NODE_NAME": "node-2",
        "NETMESH_BIND_ADDRESS": "10.80.0.3",
        "NETMESH_COLLECTOR_URL": "http://10.80.0.1:9100",
        "NETMESH_PROBE_MODE": "auto",
        "NETMESH_PROBE_LOCAL_CIDRS": "10.80.0.3/32",
        "NETMESH_DNS_NAME": "lab.example",
        "NETMESH_LABELS": "rack=rack-1",
    }
    env = podnet.endpoint_env(agent, ep)
    assert env == {
        "NETMESH_NODE_NAME": "node-2",
        "NETMESH_BIND_ADDRESS": "10.244.2.254",
        "NETMESH_COLLECTOR_URL": "http://10.80.0.1:9100",
        "NETMESH_DNS_NAME": "lab.example",
        "NETMESH_NETWORK": "pod",
    }
