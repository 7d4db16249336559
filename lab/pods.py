"""The lab's pods as plain data: per-node pod CIDRs, pod namespaces, addresses, VTEPs.

``pod_cidr`` (a lab setting, e.g. 10.244.0.0/16) is carved into equal blocks,
one per node, as a CNI's IPAM does: block ``i`` belongs to node-i (block 0 is
never used, so node-2's pods live in 10.244.2.0/24). A block is a /24 when the
CIDR has room for that, smaller otherwise. In a node's block:

- ``.0`` is the node's VTEP address (on its ``vxlan0``, /32, as flannel does);
- ``.1`` is the gateway on the node's pod bridge ``cni0``;
- ``.2 ...`` are its pods: pod-1, pod-2, ...

A pod is ``node-2/pod-1``: namespace ``<prefix>-node-2-pod-1``, its ``eth0``
paired with ``vp1`` on the node's ``cni0``. Nothing here does I/O; lab/overlay.py
builds it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from lab.topology import LabNode, Topology

POD_BLOCK_PREFIX = 24  # a /24 per node when the pod CIDR has room
POD_NAMESPACE = "lab"  # the Kubernetes-style namespace the lab's pods carry
MAX_PODS = 32
RESERVED = 3  # network (VTEP), gateway, broadcast


@dataclass(frozen=True, kw_only=True)
class LabPod:
    name: str  # node-2/pod-1
    node: str  # node-2
    index: int  # 1 ...
    netns: str  # <prefix>-node-2-pod-1
    node_veth: str  # vp1, in the node's namespace, on cni0
    address: str
    gateway: str

    @property
    def pod_name(self) -> str:
        """The pod's name without its node: what Kubernetes would call it (node-2-pod-1)."""
        return self.name.replace("/", "-")


@dataclass(frozen=True, kw_only=True)
class NodePods:
    node: LabNode
    cidr: str  # the node's block, e.g. 10.244.2.0/24
    pods: tuple[LabPod, ...]

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def vtep(self) -> str:
        """The node's VTEP address (on vxlan0, /32): the block's network address."""
        return str(self.network.network_address)

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def vtep_mac(self) -> str:
        """A fixed, locally administered MAC per node, so peers need no discovery."""
        i = self.node.index
        return f"0e:6e:6d:00:{i >> 8:02x}:{i & 0xFF:02x}"


@dataclass(frozen=True, kw_only=True)
class PodLayout:
    cidr: str
    nodes: tuple[NodePods, ...]

    @property
    def pods(self) -> tuple[LabPod, ...]:
        return tuple(p for n in self.nodes for p in n.pods)

    def of(self, node: str) -> NodePods:
        for entry in self.nodes:
            if entry.node.name == node:
                return entry
        raise KeyError(f"no lab node {node!r}")

    def pod(self, name: str) -> LabPod:
        """``node-2/pod-1`` (or its address) → the pod."""
        text = name.strip()
        for pod in self.pods:
            if text in (pod.name, pod.address, pod.pod_name):
                return pod
        if not self.pods:
            raise KeyError("this lab has no pods (start it with `netmesh-lab up --pods P`)")
        known = ", ".join(p.name for p in self.pods[:12])
        more = f" ... ({len(self.pods)} in all)" if len(self.pods) > 12 else ""
        raise KeyError(f"no lab pod {name!r} (pods: {known}{more})")


def block_prefix(cidr: str, nodes: int, pods: int) -> int:
    """The prefix length of each node's block; ValueError when ``cidr`` is too small."""
    net = ipaddress.IPv4Network(cidr)
    bits = nodes.bit_length()  # room for blocks 0..nodes
    prefix = max(POD_BLOCK_PREFIX, net.prefixlen + bits)
    if prefix > 30 or 2 ** (32 - prefix) < pods + RESERVED:
        raise ValueError(
            f"pod_cidr {cidr}: too small for {nodes} nodes x {pods} pods "
            f"({nodes + 1} blocks of >= {pods + RESERVED} addresses; try a /16)"
        )
    if net.prefixlen + bits > prefix:  # cannot happen with max() above; kept for clarity
        raise ValueError(f"pod_cidr {cidr}: too small for {nodes} node blocks")
    return prefix


def validate(cidr: str, subnet: str, nodes: int, pods: int) -> list[str]:
    """Problems with these pod settings (empty when fine)."""
    problems = []
    if not 0 <= pods <= MAX_PODS:
        problems.append(f"pods {pods}: must be 0..{MAX_PODS} per node")
    try:
        net = ipaddress.IPv4Network(cidr)
    except ValueError as exc:
        return [*problems, f"pod_cidr {cidr!r}: {exc}"]
    if not net.is_private:
        problems.append(f"pod_cidr {cidr}: must be a private range")
    try:
        if net.overlaps(ipaddress.IPv4Network(subnet)):
            problems.append(f"pod_cidr {cidr} overlaps the lab subnet {subnet}")
    except ValueError:
        pass  # the subnet's own check reports it
    if pods:
        try:
            block_prefix(cidr, nodes, pods)
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def layout(topo: Topology, pods: int, cidr: str) -> PodLayout:
    """Every node's block and pods (none when ``pods`` is 0)."""
    if not pods:
        return PodLayout(cidr=cidr, nodes=())
    prefix = block_prefix(cidr, len(topo.nodes), pods)
    blocks = list(ipaddress.IPv4Network(cidr).subnets(new_prefix=prefix))
    entries = []
    for node in topo.nodes:
        block = blocks[node.index]
        gateway = str(block.network_address + 1)
        entries.append(
            NodePods(
                node=node,
                cidr=str(block),
                pods=tuple(
                    LabPod(
                        name=f"{node.name}/pod-{k}",
                        node=node.name,
                        index=k,
                        netns=f"{node.netns}-pod-{k}",
                        node_veth=f"vp{k}",
                        address=str(block.network_address + 1 + k),
                        gateway=gateway,
                    )
                    for k in range(1, pods + 1)
                ),
            )
        )
    return PodLayout(cidr=cidr, nodes=tuple(entries))


def pods_file_body(pods: PodLayout) -> dict[str, list[dict[str, object]]]:
    """The collector's pods file (collector/podsfile.py): every pod's identity and address."""
    return {
        "pods": [
            {"namespace": POD_NAMESPACE, "name": p.pod_name, "node": p.node, "ips": [p.address]}
            for p in pods.pods
        ]
    }
