"""Faults on the pod network: loss into one pod, and the overlay MTU mismatch on one node.

- Pod loss (``inject --pod node-2/pod-1 --loss 20%``): the seed puts netem on
  the pod's host-side veth. This kernel has no netem, so the drop is an iptables
  ``statistic`` rule on the traffic going INTO the pod (the pod namespace's
  INPUT, ``-i eth0``, chain ``NETMESH-POD``): the receiver drops, so senders
  retransmit — exactly what the veth's egress netem would cause. (The node
  namespace's FORWARD would miss pod-to-pod traffic on the same node: that is
  bridged on ``cni0``, not routed.) With netem, ``tc netem loss`` goes on the
  node-side ``vp<k>`` instead, as in the seed.
- Overlay MTU (``inject --node node-3 --overlay-mtu 1500``): node-3's
  ``vxlan0``, ``cni0``, pod ports and pods' ``eth0`` get MTU 1500 while an
  encapsulated 1500-byte packet needs 1550 on the 1500 underlay. (Bound to
  ``eth0`` the kernel refuses a VXLAN MTU above 1450, so the fault recreates
  ``vxlan0`` unbound, as a hand-configured CNI MTU would be.) Measured here
  (kernel 6.18, routed VXLAN as flannel's; BENCHMARKS.md): the first 1500-byte
  packet with DF set from a pod of that node is dropped at ``vxlan0`` (tx_dropped
  counts it) and the kernel answers the pod with ICMP "fragmentation needed"
  (PMTU 1450, cached ~10 min); later DF sends of that size fail at once in the pod
  (EMSGSIZE); datagrams without DF are encapsulated and the 1550-byte outer
  packets fragmented by the node (IpFragCreates) and reassembled by the peer;
  TCP is unharmed (the peer pod advertises an MSS for 1450, and PMTU discovery
  covers the rest; 5 MB both ways, no retransmission). So MTU-sized probes with
  DF from that node's pods fail while small packets and TCP work.
"""

from __future__ import annotations

from lab import overlay
from lab.faults import LAB_MTU, MIN_MTU, FaultError
from lab.pods import LabPod, NodePods, PodLayout
from lab.shell import CommandError, in_ns, ok, run

POD_CHAIN = "NETMESH-POD"
MAX_OVERLAY_MTU = 9000


def parse_overlay_mtu(text: str) -> int:
    """``1500`` → 1500: the MTU the node's overlay devices and pods get (576..9000)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise FaultError(f"overlay mtu {text!r}: use a whole number of bytes like 1500") from None
    if not MIN_MTU <= value <= MAX_OVERLAY_MTU:
        raise FaultError(f"overlay mtu {value}: must be {MIN_MTU}..{MAX_OVERLAY_MTU}")
    if value == overlay.POD_MTU:
        raise FaultError(
            f"overlay mtu {value} is the lab's correct pod MTU (underlay {LAB_MTU} - "
            f"{overlay.VXLAN_OVERHEAD}): nothing to inject; the classic mismatch is {LAB_MTU}"
        )
    return value


def pod_loss_commands(pod: LabPod, loss: float) -> list[list[str]]:
    ipt = ["iptables", "-w", "5"]
    rule = ["-A", POD_CHAIN, "-i", "eth0", "-m", "statistic", "--mode", "random"]
    rule += ["--probability", f"{loss:.6f}", "-j", "DROP"]
    return [in_ns(pod.netns, [*ipt, "-F", POD_CHAIN]), in_ns(pod.netns, [*ipt, *rule])]


def inject_pod_loss(pod: LabPod, loss: float, *, netem: bool) -> None:
    """Drop ``loss`` of the packets into ``pod`` (replacing an earlier pod fault)."""
    clear_pod(pod)
    try:
        if netem:
            dev = pod.node_veth
            node_ns = pod.netns.rsplit("-pod-", 1)[0]
            run(
                [
                    *in_ns(node_ns, ["tc", "qdisc", "replace", "dev", dev, "root", "netem"]),
                    "loss",
                    f"{loss * 100}%",
                ]
            )
            return
        ipt = ["iptables", "-w", "5"]
        ok(in_ns(pod.netns, [*ipt, "-N", POD_CHAIN]))
        if not ok(in_ns(pod.netns, [*ipt, "-C", "INPUT", "-j", POD_CHAIN])):
            run(in_ns(pod.netns, [*ipt, "-I", "INPUT", "-j", POD_CHAIN]))
        for cmd in pod_loss_commands(pod, loss):
            run(cmd)
    except CommandError:
        clear_pod(pod)
        raise


def clear_pod(pod: LabPod) -> None:
    node_ns = pod.netns.rsplit("-pod-", 1)[0]
    ok(in_ns(node_ns, ["tc", "qdisc", "del", "dev", pod.node_veth, "root"]))
    ok(in_ns(pod.netns, ["iptables", "-w", "5", "-F", POD_CHAIN]))


def pod_drop_rules(pod: LabPod) -> str:
    return run(in_ns(pod.netns, ["iptables", "-w", "5", "-S", POD_CHAIN]), check=False)


def mtu_commands(layout: PodLayout, entry: NodePods, mtu: int) -> list[list[str]]:
    """Give the node's overlay device, pod bridge, pod ports and pods' links ``mtu``.

    ``vxlan0`` is recreated (with its peers' neighbour, FDB and route entries):
    unbound from ``eth0`` when ``mtu`` exceeds what fits in the underlay, as the
    lab builds it otherwise.
    """
    ns = entry.node.netns
    bound = mtu <= overlay.POD_MTU
    cmds = [in_ns(ns, ["ip", "link", "del", overlay.VXLAN])]
    cmds += [
        in_ns(ns, c)
        for c in overlay.vxlan_commands(
            entry, overlay.peers_of(layout, entry), mtu=mtu, bound=bound
        )
    ]
    for pod in entry.pods:
        cmds.append(in_ns(ns, ["ip", "link", "set", pod.node_veth, "mtu", str(mtu)]))
        cmds.append(in_ns(pod.netns, ["ip", "link", "set", "eth0", "mtu", str(mtu)]))
        # A PMTU the pod learnt under an earlier MTU would hide the change: flush it.
        cmds.append(in_ns(pod.netns, ["ip", "route", "flush", "cache"]))
    cmds.append(in_ns(ns, ["ip", "link", "set", overlay.BRIDGE, "mtu", str(mtu)]))
    return cmds


def set_overlay_mtu(layout: PodLayout, entry: NodePods, mtu: int) -> None:
    for cmd in mtu_commands(layout, entry, mtu):
        run(cmd)


def clear_overlay_mtu(layout: PodLayout, entry: NodePods) -> None:
    """Back to the lab's overlay (bound, MTU 1450); quiet when nothing was changed."""
    for cmd in mtu_commands(layout, entry, overlay.POD_MTU):
        ok(cmd)
