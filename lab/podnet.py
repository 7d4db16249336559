"""The lab's pod-network endpoints: one per node, in a pod namespace of its own.

In Kubernetes the pod-network endpoint is a pod of its own DaemonSet
(manifests/components/pod-network); here it is a pod namespace per node,
``<prefix>-node-N-podnet``, wired to the node's ``cni0`` like the workload's
pods (lab/overlay.py) but not one of them: the HTTP workload does not call it
and a fault on one workload pod does not touch it. Its address is the last
usable one of the node's pod block (10.244.2.254 in a /24), out of the way of
pod-1, pod-2, ... An overlay MTU fault on its node (lab/podfaults.py) reaches
it too, as a CNI's MTU reaches every pod of the node.

Nothing here does I/O but ``create`` and ``set_mtu``.
"""

from __future__ import annotations

import dataclasses

from lab import overlay
from lab.pods import LabPod, NodePods, PodLayout
from lab.shell import in_ns, run

VETH = "vpnm"  # the endpoint's port on cni0 (the workload's are vp1, vp2, ...)


def endpoint_of(entry: NodePods) -> LabPod:
    """The node's pod-network endpoint pod; ValueError when its block has no room left."""
    net = entry.network
    address = net.broadcast_address - 1
    used = {p.address for p in entry.pods} | {entry.vtep, entry.gateway}
    if str(address) in used or address <= net.network_address + 1:
        raise ValueError(
            f"pod block {entry.cidr} of {entry.node.name}: no address left for its "
            "pod-network endpoint (use a larger pod_cidr or fewer pods)"
        )
    return LabPod(
        name=f"{entry.node.name}/podnet",
        node=entry.node.name,
        index=0,
        netns=f"{entry.node.netns}-podnet",
        node_veth=VETH,
        address=str(address),
        gateway=entry.gateway,
    )


def endpoints(layout: PodLayout) -> tuple[LabPod, ...]:
    return tuple(endpoint_of(entry) for entry in layout.nodes)


# The host agent's variables a pod endpoint does not take over (it has no eBPF probe, and
# its labels and link speed are the node's). It keeps the DNS and Service checks: from the
# pod network they go the pods' way (masqueraded, through the node's Service rules).
NOT_FOR_PODS = ("NETMESH_PROBE_", "NETMESH_LABELS", "NETMESH_LINK_SPEED")


def endpoint_env(agent_env: dict[str, str], pod: LabPod) -> dict[str, str]:
    """The pod endpoint's environment: its node's agent's, on the pod network at its pod."""
    env = {k: v for k, v in agent_env.items() if not k.startswith(NOT_FOR_PODS)}
    env.update(NETMESH_NETWORK="pod", NETMESH_BIND_ADDRESS=pod.address, NETMESH_NODE_NAME=pod.node)
    return env


def commands(layout: PodLayout) -> list[list[str]]:
    """Commands that create every node's endpoint namespace on its pod bridge."""
    cmds: list[list[str]] = []
    for entry in layout.nodes:
        only = dataclasses.replace(entry, pods=(endpoint_of(entry),))
        cmds += overlay.pod_commands(only)
    return cmds


def mtu_commands(entry: NodePods, mtu: int) -> list[list[str]]:
    """The endpoint's link and cni0 port get ``mtu`` (with its node's overlay MTU fault)."""
    pod = endpoint_of(entry)
    return [
        in_ns(entry.node.netns, ["ip", "link", "set", pod.node_veth, "mtu", str(mtu)]),
        in_ns(pod.netns, ["ip", "link", "set", "eth0", "mtu", str(mtu)]),
        in_ns(pod.netns, ["ip", "route", "flush", "cache"]),
    ]


def create(layout: PodLayout) -> None:
    for cmd in commands(layout):
        run(cmd)


def set_mtu(entry: NodePods, mtu: int) -> None:
    for cmd in mtu_commands(entry, mtu):
        run(cmd)
