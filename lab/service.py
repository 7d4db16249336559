"""The lab's Service: a virtual IP that every node translates to the collector, as kube-proxy does.

A ClusterIP exists only as rules on every node: kube-proxy's iptables mode
DNATs connections to the Service's address to one of its backends, in
OUTPUT for the node's own processes and in PREROUTING for its pods. The lab
does the same in every node namespace: ``<vip>:<port>`` (the last usable
address of the lab subnet, so a packet that escaped translation would stay
on the lab's bridge) → the collector's address and port. The agents' (and
pod endpoints') Service check connects to it.

Faults (lab/faults.py): ``--service down`` drops the node's connects to the
Service before translation (raw table, OUTPUT and PREROUTING: as stale or
broken Service rules blackhole them), ``--service pod-down`` only its pods'
(PREROUTING from ``cni0``). Nothing here does I/O but ``create``.
"""

from __future__ import annotations

from lab.shell import in_ns, run
from lab.topology import LabNode, Topology

NAT_CHAIN = "NETMESH-LAB-SVC"
IPT = ("iptables", "-w", "5")


def vip(topo: Topology) -> str:
    """The Service's virtual address: the lab subnet's last usable one."""
    return str(topo.network.broadcast_address - 1)


def target(topo: Topology, port: int) -> str:
    """host:port the Service check connects to."""
    return f"{vip(topo)}:{port}"


def match(topo: Topology, port: int) -> list[str]:
    """iptables match of connections to the Service (before translation)."""
    return ["-d", vip(topo), "-p", "tcp", "--dport", str(port)]


def nat_commands(topo: Topology, node: LabNode, *, port: int, backend: str) -> list[list[str]]:
    """The node's Service rules: its own and its pods' connects to the VIP → the backend."""
    nat = [*IPT, "-t", "nat"]
    cmds = [
        [*nat, "-N", NAT_CHAIN],
        [*nat, "-A", NAT_CHAIN, *match(topo, port), "-j", "DNAT", "--to-destination", backend],
        [*nat, "-A", "OUTPUT", "-j", NAT_CHAIN],
        [*nat, "-A", "PREROUTING", "-j", NAT_CHAIN],
    ]
    return [in_ns(node.netns, c) for c in cmds]


def create(topo: Topology, *, port: int, backend_address: str, backend_port: int) -> None:
    """Every node translates the Service to the backend (the collector)."""
    for node in topo.nodes:
        for cmd in nat_commands(topo, node, port=port, backend=f"{backend_address}:{backend_port}"):
            run(cmd)
