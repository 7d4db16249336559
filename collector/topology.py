"""Where each node sits (zone, rack) and how fast its link is: the RCA's topology.

Static mode: the labels and link speed each agent reports (agent settings
``labels``, ``link_speed``). Kubernetes mode: the zone and rack come from the
Node objects the collector watches (settings ``zone_label``, ``rack_label``)
and win over what the agent says; the link speed still comes from the agent
(Kubernetes does not know it). Pure: reports and node records in, a map out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from collector.podmap import NodeInfo
from netmesh.labels import RACK, ZONE, label
from netmesh.wire import Report


@dataclass(frozen=True, slots=True)
class NodeTopology:
    zone: str = ""
    rack: str = ""
    link_speed: int | None = None  # bits per second; None = unknown


Topology = Mapping[str, NodeTopology]


def topology_of(
    reports: Iterable[Report], kube_nodes: Mapping[str, NodeInfo] | None = None
) -> dict[str, NodeTopology]:
    """Each reporting node's topology (Kubernetes node labels over reported labels)."""
    out: dict[str, NodeTopology] = {}
    for r in reports:
        zone, rack = label(r.labels, ZONE), label(r.labels, RACK)
        node = kube_nodes.get(r.node) if kube_nodes is not None else None
        if node is not None:
            zone, rack = node.zone or zone, node.rack or rack
        out[r.node] = NodeTopology(zone=zone, rack=rack, link_speed=r.link_speed_bits_per_second)
    if kube_nodes is not None:
        for name, node in kube_nodes.items():
            if name not in out and (node.zone or node.rack):
                out[name] = NodeTopology(zone=node.zone, rack=node.rack)
    return out
