"""The lab's layout as plain data: node names, namespaces, interfaces, addresses, racks.

Every address is inside a private subnet that exists only on the lab's bridges
and in the lab's namespaces; nothing is routed anywhere else.

Flat (``racks=0``): every node's veth on one bridge, ``<prefix>-br``, which
holds the collector's address (.1).

Racked (``racks=R``): the nodes sit on R rack bridges ``<prefix>-r<k>``, each
joined to the core bridge ``<prefix>-br`` (still .1, the collector) by an
uplink veth pair ``<prefix>u<k>r`` (rack end) ↔ ``<prefix>u<k>c`` (core end).
It stays one L2 segment, so the agents need no routes; traffic between racks
crosses two uplinks, traffic within a rack none. Nodes go to racks in blocks
(node-1..node-4 in rack-1, node-5..node-8 in rack-2 for 8 nodes, 2 racks).
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
    rack: int = 0  # 1..R; 0 = flat lab

    @property
    def rack_label(self) -> str:
        return f"rack-{self.rack}" if self.rack else ""


@dataclass(frozen=True, kw_only=True)
class Topology:
    prefix: str
    subnet: str
    nodes: tuple[LabNode, ...]
    racks: int = 0

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def bridge(self) -> str:
        """The bridge with the collector's address (the core bridge when racked)."""
        return f"{self.prefix}-br"

    @property
    def bridge_address(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    @property
    def nft_table(self) -> str:
        return nft_table(self.prefix)

    def rack_bridge(self, rack: int) -> str:
        return f"{self.prefix}-r{rack}"

    def uplink_rack_end(self, rack: int) -> str:
        """The uplink's end on the rack bridge: its egress leaves the core for the rack."""
        return f"{self.prefix}u{rack}r"

    def uplink_core_end(self, rack: int) -> str:
        """The uplink's end on the core bridge: its egress enters the rack."""
        return f"{self.prefix}u{rack}c"

    def node_bridge(self, node: LabNode) -> str:
        return self.rack_bridge(node.rack) if node.rack else self.bridge

    def node(self, name: str) -> LabNode:
        for node in self.nodes:
            if name in (node.name, str(node.index), node.address):
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise KeyError(f"no lab node {name!r} (nodes: {known})")

    def rack(self, name: str) -> int:
        """``rack-2`` or ``2`` → 2."""
        if not self.racks:
            raise KeyError("this lab has no racks (start it with `netmesh-lab up --racks R`)")
        text = name.strip().removeprefix("rack-")
        if text.isdigit() and 1 <= int(text) <= self.racks:
            return int(text)
        known = ", ".join(f"rack-{k}" for k in range(1, self.racks + 1))
        raise KeyError(f"no lab rack {name!r} (racks: {known})")

    def rack_nodes(self, rack: int) -> tuple[LabNode, ...]:
        return tuple(n for n in self.nodes if n.rack == rack)


NODE_OFFSET = 10  # node i gets .(10 + i)


def nft_table(prefix: str) -> str:
    """The lab's nftables table (bridge family, root namespace): uplink loss rules."""
    return f"netmesh_lab_{prefix}"


MAX_RACKS = 16


def rack_of(index: int, count: int, racks: int) -> int:
    """Node ``index`` (1-based) of ``count`` goes to this rack: contiguous, balanced blocks."""
    return (index - 1) * racks // count + 1 if racks else 0


def build(prefix: str, subnet: str, count: int, racks: int = 0) -> Topology:
    network = ipaddress.IPv4Network(subnet)
    if not network.is_private:
        raise ValueError(f"lab subnet {subnet} is not a private range")
    if count < 2:
        raise ValueError("a lab needs at least 2 nodes")
    if not 0 <= racks <= min(count, MAX_RACKS):
        raise ValueError(f"racks {racks}: must be 0 (flat) or 1..{min(count, MAX_RACKS)}")
    # + network, broadcast and the Service's virtual address (lab/service.py)
    if network.num_addresses < NODE_OFFSET + count + 3:
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
            rack=rack_of(i, count, racks),
        )
        for i in range(1, count + 1)
    )
    return Topology(prefix=prefix, subnet=subnet, nodes=nodes, racks=racks)
