"""Kernel drop reasons end to end (root): real BPF on skb:kfree_skb, a lab, iptables, the collector.

One 3-node lab for the module (its own prefix and subnet: 10.160-169.x). The
agents load both eBPF programs with the lab's local-address filter (one kernel,
three "nodes"), so a drop counts on the node whose address the packet was for.

- a receiver-side iptables drop (the lab's loss fault: INPUT, ``statistic``)
  into node-2 shows up on node-2 as NETFILTER_DROP, as many packets as the
  iptables rule counted (within 10 %), and on no other node;
- UDP to a closed port of node-3 shows up on node-3 as NO_SOCKET, from node-1
  (the collector names the remote end by node), protocol udp.
"""

from __future__ import annotations

import os
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.faults import CHAIN, Fault
from lab.lab import Lab
from lab.shell import in_ns, run
from lab.topology import LabNode
from tests.e2e.labapi import metrics_text
from tests.e2e.labs import lab_fixture
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

# E2E_PREFIX / E2E_SUBNET_BYTE: another prefix and range on a shared machine
PREFIX = os.environ.get("E2E_PREFIX", "nmd") + str(os.getpid() % 10000)
SUBNET = (  # .0.0/24: test_rca_lab
    f"10.{int(os.environ.get('E2E_SUBNET_BYTE', 160 + os.getpid() % 10))}"
    f".{1 + os.getpid() % 200}.0/24"
)
CLOSED_PORT = 9  # discard: nothing listens in a lab node


lab = lab_fixture(nodes=3, prefix=PREFIX, subnet=SUBNET, traffic=False, bandwidth_budget=0.05)


def drops(lab: Lab) -> dict[tuple[str, str], float]:
    """netmesh_drops_total from the collector, by (node, reason)."""
    text = metrics_text(lab)
    out: dict[tuple[str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "netmesh_drops_total":
                out[(s.labels["node"], s.labels["reason"])] = s.value
    return out


def by_remote(lab: Lab) -> dict[tuple[str, str, str, str], float]:
    """netmesh_drops_by_remote_total by (node, reason, remote pod/node name, protocol)."""
    text = metrics_text(lab)
    out: dict[tuple[str, str, str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "netmesh_drops_by_remote_total":
                key = (s.labels["node"], s.labels["reason"], s.labels["remote_pod"])
                out[(*key, s.labels["protocol"])] = s.value
    return out


def probes_up(lab: Lab) -> bool:
    text = metrics_text(lab)
    up = re.findall(
        r'^netmesh_agent_drops_up\{node="[^"]+",mode="([^"]*)",reason="([^"]*)"\} 1', text, re.M
    )
    return len(up) == len(lab.topo.nodes)


def send_udp(src: LabNode, dst: LabNode, port: int, count: int) -> None:
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for _ in range({count}):\n"
        f"    s.sendto(b'netmesh-drops-test', ('{dst.address}', {port}))\n"
    )
    run(in_ns(src.netns, ["python3", "-c", code]), timeout=60)


def iptables_dropped(node: LabNode) -> int:
    """Packets the lab's loss rule dropped on ``node`` (the DROP rule's counter)."""
    out = run(in_ns(node.netns, ["iptables", "-w", "5", "-L", CHAIN, "-v", "-x", "-n"]))
    return sum(int(line.split()[0]) for line in out.splitlines() if " DROP " in f" {line} ")


def delta(
    now: dict[tuple[str, str], float], before: dict[tuple[str, str], float], key: tuple[str, str]
) -> float:
    return now.get(key, 0.0) - before.get(key, 0.0)


def test_receiver_iptables_drop_is_netfilter_drop_on_that_node_only(lab: Lab) -> None:
    wait_for(lambda: probes_up(lab), 120, interval=1, what="every agent's drop probe up")
    n1, n2, n3 = lab.topo.nodes
    before = drops(lab)
    lab.inject(n2.name, Fault(loss=0.3))
    try:
        # Our own packets on top of the agents' tests and light tier: enough to count.
        send_udp(n1, n2, CLOSED_PORT, 2000)
        send_udp(n3, n2, CLOSED_PORT, 1000)
        dropped = iptables_dropped(n2)
    finally:
        lab.clear(n2.name)  # no more drops from here on: the counters can settle
    assert dropped > 500, f"the iptables rule dropped only {dropped} packets"

    def settled() -> float | None:
        got = delta(drops(lab), before, (n2.name, "NETFILTER_DROP"))
        return got if abs(got - dropped) <= 0.1 * dropped else None

    try:
        wait_for(settled, 30, interval=1, what="node-2's NETFILTER_DROP to match iptables")
    except Exception:
        now = drops(lab)
        pytest.fail(
            f"iptables dropped {dropped}; netmesh_drops_total NETFILTER_DROP on {n2.name} rose "
            f"by {delta(now, before, (n2.name, 'NETFILTER_DROP'))}"
        )
    now = drops(lab)
    print(
        f"iptables dropped {dropped}, node-2 NETFILTER_DROP "
        f"+{delta(now, before, (n2.name, 'NETFILTER_DROP')):.0f}"
    )
    for other in (n1, n3):
        assert delta(now, before, (other.name, "NETFILTER_DROP")) == 0, (
            f"{other.name} counted NETFILTER_DROP for node-2's rule"
        )


def test_closed_udp_port_is_no_socket_on_the_receiver(lab: Lab) -> None:
    wait_for(lambda: probes_up(lab), 120, interval=1, what="every agent's drop probe up")
    n1, _, n3 = lab.topo.nodes
    before = drops(lab)
    remote_before = by_remote(lab)
    send_udp(n1, n3, CLOSED_PORT, 500)

    def counted() -> bool:
        return delta(drops(lab), before, (n3.name, "NO_SOCKET")) >= 500

    wait_for(counted, 30, interval=1, what="node-3's NO_SOCKET count")
    key = (n3.name, "NO_SOCKET", n1.name, "udp")
    got = by_remote(lab).get(key, 0.0) - remote_before.get(key, 0.0)
    assert got >= 500, f"drops by remote end {key}: +{got}, expected >= 500"
    assert delta(drops(lab), before, (n1.name, "NO_SOCKET")) < 500
