"""Build the lab's pod network: a pod bridge and pod namespaces per node, a VXLAN overlay.

Per node, in its namespace (as flannel's VXLAN backend does):

- ``cni0``, a bridge holding the gateway (.1 of the node's block); every pod's
  ``eth0`` is paired with a ``vp<k>`` port on it; pods route everything via the gateway;
- ``vxlan0`` (VNI 1, UDP 4789, ``local`` = the node's address on ``eth0``,
  ``nolearning``) with the node's VTEP address (.0/32) and a fixed MAC;
- per peer node, no multicast: a permanent neighbour entry (peer VTEP → peer MAC),
  an FDB entry (peer MAC → peer node address) and a route to the peer's block
  via its VTEP, ``onlink`` on ``vxlan0``;
- IP forwarding on, and pod traffic leaving the pod CIDR masqueraded to the
  node's address (flannel's ``ip-masq``), so pods reach node addresses too.

Pod MTU = underlay 1500 - 50 (outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8) = 1450,
on ``vxlan0``, ``cni0``, the ``vp<k>`` ports and the pods' ``eth0``. Pod-to-pod
traffic across nodes leaves ``eth0`` encapsulated, so every underlay fault (node,
link, uplink) hits it too. The pod namespaces are named ``<prefix>-node-N-pod-K``:
lab/netns.py's teardown (every namespace with the lab's prefix) removes them.
"""

from __future__ import annotations

from lab.netns import steer_flows
from lab.pods import NodePods, PodLayout
from lab.shell import in_ns, run

UNDERLAY_MTU = 1500
VXLAN_OVERHEAD = 50
POD_MTU = UNDERLAY_MTU - VXLAN_OVERHEAD
VNI = 1
VXLAN_PORT = 4789
BRIDGE = "cni0"
VXLAN = "vxlan0"
PERMANENT = ("nud", "permanent")
NAT_POSTROUTING = ("iptables", "-w", "5", "-t", "nat", "-A", "POSTROUTING")


def vxlan_commands(
    entry: NodePods, peers: list[NodePods], *, mtu: int = POD_MTU, bound: bool = True
) -> list[list[str]]:
    """Commands (each bare, for the node's namespace) that create ``vxlan0`` and its peers.

    ``bound``: tie the device to ``eth0`` (as flannel does); the kernel then refuses an
    MTU above eth0's minus the 50 bytes of encapsulation, so the MTU-mismatch fault
    (lab/podfaults.py) recreates it unbound.
    """
    create = ["ip", "link", "add", VXLAN, "type", "vxlan", "id", str(VNI)]
    create += ["local", entry.node.address]
    if bound:
        create += ["dev", "eth0"]
    create += ["dstport", str(VXLAN_PORT), "nolearning"]
    cmds = [
        create,
        ["ip", "link", "set", VXLAN, "address", entry.vtep_mac, "mtu", str(mtu)],
        ["ip", "addr", "add", f"{entry.vtep}/32", "dev", VXLAN],
        ["ip", "link", "set", VXLAN, "up"],
    ]
    for peer in peers:
        cmds += [
            [
                "ip",
                "neigh",
                "replace",
                peer.vtep,
                "lladdr",
                peer.vtep_mac,
                "dev",
                VXLAN,
                *PERMANENT,
            ],
            ["bridge", "fdb", "append", peer.vtep_mac, "dev", VXLAN, "dst", peer.node.address],
            ["ip", "route", "replace", peer.cidr, "via", peer.vtep, "dev", VXLAN, "onlink"],
        ]
    return cmds


def node_commands(entry: NodePods, peers: list[NodePods], pod_cidr: str) -> list[list[str]]:
    """Commands (each run in the node's namespace) that build its bridge and overlay end."""
    cmds = [
        ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
        ["ip", "link", "add", BRIDGE, "type", "bridge"],
        ["ip", "link", "set", BRIDGE, "mtu", str(POD_MTU)],
        ["ip", "addr", "add", f"{entry.gateway}/{entry.network.prefixlen}", "dev", BRIDGE],
        ["ip", "link", "set", BRIDGE, "up"],
        *vxlan_commands(entry, peers),
        [*NAT_POSTROUTING, "-s", entry.cidr, "!", "-d", pod_cidr, "-j", "MASQUERADE"],
    ]
    return [in_ns(entry.node.netns, c) for c in cmds]


def peers_of(layout: PodLayout, entry: NodePods) -> list[NodePods]:
    return [p for p in layout.nodes if p.node.name != entry.node.name]


def pod_commands(entry: NodePods) -> list[list[str]]:
    """Commands that create the node's pod namespaces and wire each to ``cni0``."""
    node_ns = entry.node.netns
    mtu = str(POD_MTU)
    cmds: list[list[str]] = []
    for pod in entry.pods:
        cmds += [
            ["ip", "netns", "add", pod.netns],
            in_ns(
                node_ns,
                [
                    "ip",
                    "link",
                    "add",
                    pod.node_veth,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    pod.netns,
                ],
            ),
            in_ns(
                node_ns,
                ["ip", "link", "set", pod.node_veth, "master", BRIDGE, "mtu", mtu, "up"],
            ),
            in_ns(pod.netns, ["ip", "link", "set", "lo", "up"]),
            in_ns(pod.netns, ["ip", "link", "set", "eth0", "mtu", mtu]),
            in_ns(
                pod.netns,
                ["ip", "addr", "add", f"{pod.address}/{entry.network.prefixlen}", "dev", "eth0"],
            ),
            in_ns(pod.netns, ["ip", "link", "set", "eth0", "up"]),
            steer_flows(pod.node_veth, node_ns),
            steer_flows("eth0", pod.netns),
            in_ns(pod.netns, ["ip", "route", "add", "default", "via", pod.gateway]),
        ]
    return cmds


def commands(layout: PodLayout) -> list[list[str]]:
    """Everything that builds the pod network of ``layout``, in order."""
    cmds: list[list[str]] = []
    for entry in layout.nodes:
        cmds += node_commands(entry, peers_of(layout, entry), layout.cidr)
        cmds += pod_commands(entry)
    return cmds


def create(layout: PodLayout) -> None:
    for cmd in commands(layout):
        run(cmd)


def vxlan_counters(node_ns: str) -> dict[str, int]:
    """``vxlan0``'s packet/byte counters in a node's namespace (what crossed the overlay)."""
    out: dict[str, int] = {}
    for key in ("tx_packets", "rx_packets", "tx_bytes", "rx_bytes", "tx_errors", "tx_dropped"):
        text = run(in_ns(node_ns, ["cat", f"/sys/class/net/{VXLAN}/statistics/{key}"]))
        out[key] = int(text.strip() or 0)
    return out
