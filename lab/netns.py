"""Build and tear down the lab's network: bridges, one namespace + veth per node.

Teardown finds everything by name prefix, so it also cleans what a crashed
run left behind, and it is idempotent.
"""

from __future__ import annotations

import logging
import os

from lab.shell import CommandError, in_ns, ok, run
from lab.topology import Topology, nft_table

log = logging.getLogger(__name__)

MIN_BURST_BYTES = 128 * 1024  # > one 64 KiB GSO segment, or tbf drops it


def tbf_args(rate_bps: int) -> list[str]:
    """tbf for ``rate_bps``: a burst of 10 ms at that rate, at least 128 KiB."""
    burst = max(MIN_BURST_BYTES, rate_bps // 8 // 100)
    return ["tbf", "rate", f"{rate_bps}bit", "burst", str(burst), "latency", "50ms"]


def cpu_mask(cpus: int) -> str:
    """Every one of ``cpus`` CPUs as a sysfs CPU mask: hex words of 32 CPUs, comma-separated."""
    if cpus < 1:
        raise ValueError(f"cpus: {cpus} < 1")
    words = []
    for low in range(0, cpus, 32):
        words.append(f"{(1 << min(32, cpus - low)) - 1:08x}")
    return ",".join(reversed(words))


def steer_flows(dev: str, netns: str | None = None, mask: str | None = None) -> list[str]:
    """The command that spreads ``dev``'s received packets over every CPU by flow hash (RPS),
    as a NIC's RSS does.

    Without it a veth hands each packet to the sending CPU's backlog: a flow whose packets
    leave a qdisc on both CPUs of this 2-core machine arrives reordered, and TCP answers the
    reordering with (spurious) retransmissions — ~100 per node per 20 s on clean lab paths,
    enough to blur which node a fault's retransmissions belong to. Steered by flow hash, one
    flow's packets all queue on one CPU and stay in order. A kernel without RPS (no rps_cpus
    file) is left as it is. ``mask``: other CPUs than all ("0": RPS off, as the kernel
    leaves a new veth)."""
    mask = cpu_mask(os.cpu_count() or 1) if mask is None else mask
    script = (
        f"for q in /sys/class/net/{dev}/queues/rx-*/rps_cpus; do "
        f'[ -e "$q" ] || exit 0; echo {mask} > "$q" || exit 1; done'
    )
    cmd = ["sh", "-c", script]
    return in_ns(netns, cmd) if netns else cmd


def namespaces() -> list[str]:
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def links() -> list[str]:
    out = run(["ip", "-o", "link", "show"], check=False)
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def leftovers(prefix: str) -> tuple[list[str], list[str]]:
    """(namespaces, links) of a lab with this prefix that exist right now."""
    ns = [n for n in namespaces() if n.startswith(f"{prefix}-")]
    ls = [name for name in links() if name.startswith(prefix)]
    return ns, ls


def has_nft_table(prefix: str) -> bool:
    """Whether the lab's bridge-family nftables table (uplink loss) exists."""
    return ok(["nft", "list", "table", "bridge", nft_table(prefix)])


def _bridge(name: str) -> None:
    run(["ip", "link", "add", name, "type", "bridge"])
    run(["ip", "link", "set", name, "up"])


def create(topo: Topology, baseline_bps: int) -> None:
    """Create bridges (core + racks), namespaces, veths, addresses and baseline shaping."""
    length = topo.prefixlen
    _bridge(topo.bridge)
    run(["ip", "addr", "add", f"{topo.bridge_address}/{length}", "dev", topo.bridge])
    for rack in range(1, topo.racks + 1):
        rack_end, core_end = topo.uplink_rack_end(rack), topo.uplink_core_end(rack)
        _bridge(topo.rack_bridge(rack))
        run(["ip", "link", "add", rack_end, "type", "veth", "peer", "name", core_end])
        run(["ip", "link", "set", rack_end, "master", topo.rack_bridge(rack), "up"])
        run(["ip", "link", "set", core_end, "master", topo.bridge, "up"])
        run(steer_flows(rack_end))
        run(steer_flows(core_end))
    for node in topo.nodes:
        run(["ip", "netns", "add", node.netns])
        run(
            [
                "ip",
                "link",
                "add",
                node.host_veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                node.netns,
            ]
        )
        run(["ip", "link", "set", node.host_veth, "master", topo.node_bridge(node), "up"])
        run(in_ns(node.netns, ["ip", "link", "set", "lo", "up"]))
        run(in_ns(node.netns, ["ip", "addr", "add", f"{node.address}/{length}", "dev", "eth0"]))
        run(in_ns(node.netns, ["ip", "link", "set", "eth0", "up"]))
        run(steer_flows(node.host_veth))
        run(steer_flows("eth0", node.netns))
        if baseline_bps > 0:
            shape(node.netns, baseline_bps)


def shape(netns: str, rate_bps: int) -> None:
    """Shape a node's egress (what it sends) to ``rate_bps``."""
    run(in_ns(netns, ["tc", "qdisc", "replace", "dev", "eth0", "root", *tbf_args(rate_bps)]))


def unshape(netns: str) -> None:
    ok(in_ns(netns, ["tc", "qdisc", "del", "dev", "eth0", "root"]))


def destroy(prefix: str) -> list[str]:
    """Delete every namespace and link of the lab; return what was removed."""
    removed = []
    ns, ls = leftovers(prefix)
    for name in ns:
        try:
            run(["ip", "netns", "del", name])
            removed.append(f"netns {name}")
        except CommandError as exc:
            log.warning("could not delete namespace %s: %s", name, exc)
    # veth peers vanish with their namespace; bridges, uplinks and any stray veth remain.
    for name in ls:
        if name in links() and ok(["ip", "link", "del", name]):
            removed.append(f"link {name}")
    if has_nft_table(prefix) and ok(["nft", "delete", "table", "bridge", nft_table(prefix)]):
        removed.append(f"nft table bridge {nft_table(prefix)}")
    return removed
