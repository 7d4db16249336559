"""The lab's layout as plain data: node names, namespaces, interfaces, addresses.

Every address is inside a private subnet that exists only on the lab's bridge
and in the lab's namespaces; nothing is routed anywhere else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LabNode:
    name: str  # node-1 ...
    netns: str  # <prefix>-node-1
    host_veth: str  # bridge side, in the root namespace
    address: str  # inside the namespace, on its eth0
    index: int


@dataclass(frozen=True, kw_only=True)
class Topology:
    prefix: str
    subnet: str
    nodes: tuple[LabNode, ...]

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def bridge_address(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    def node(self, name: str) -> LabNode:
        for node in self.nodes:
            if name in (node.name, str(node.index), node.address):
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise KeyError(f"no lab node {name!r} (nodes: {known})")


NODE_OFFSET = 10  # node i gets .(10 + i)


def build(prefix: str, subnet: str, count: int) -> Topology:
    network = ipaddress.IPv4Network(subnet)
    if not network.is_private:
        raise ValueError(f"lab subnet {subnet} is not a private range")
    if count < 2:
        raise ValueError("a lab needs at least 2 nodes")
    if network.num_addresses < NODE_OFFSET + count + 2:
        raise ValueError(f"lab subnet {subnet} is too small for {count} nodes")
    if len(f"{prefix}-br") > 15 or len(f"{prefix}{count}h") > 15:
        raise ValueError(f"prefix {prefix!r} makes interface names longer than 15 characters")
    nodes = tuple(
        LabNode(
            name=f"node-{i}",
            netns=f"{prefix}-node-{i}",
            host_veth=f"{prefix}{i}h",
            address=str(network.network_address + NODE_OFFSET + i),
            index=i,
        )
        for i in range(1, count + 1)
    )
    return Topology(prefix=prefix, subnet=subnet, nodes=nodes)
