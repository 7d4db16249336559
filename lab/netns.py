"""Build and tear down the lab's network: a bridge, one namespace + veth per node.

Teardown finds everything by name prefix, so it also cleans what a crashed
run left behind, and it is idempotent.
"""

from __future__ import annotations

import logging

from lab.shell import CommandError, in_ns, ok, run
from lab.topology import Topology

log = logging.getLogger(__name__)

MIN_BURST_BYTES = 128 * 1024  # > one 64 KiB GSO segment, or tbf drops it


def tbf_args(rate_bps: int) -> list[str]:
    """tbf for ``rate_bps``: a burst of 10 ms at that rate, at least 128 KiB."""
    burst = max(MIN_BURST_BYTES, rate_bps // 8 // 100)
    return ["tbf", "rate", f"{rate_bps}bit", "burst", str(burst), "latency", "50ms"]


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


def create(topo: Topology, baseline_bps: int) -> None:
    """Create bridge, namespaces, veths, addresses and baseline shaping."""
    length = topo.prefixlen
    run(["ip", "link", "add", topo.bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"{topo.bridge_address}/{length}", "dev", topo.bridge])
    run(["ip", "link", "set", topo.bridge, "up"])
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
        run(["ip", "link", "set", node.host_veth, "master", topo.bridge, "up"])
        run(in_ns(node.netns, ["ip", "link", "set", "lo", "up"]))
        run(in_ns(node.netns, ["ip", "addr", "add", f"{node.address}/{length}", "dev", "eth0"]))
        run(in_ns(node.netns, ["ip", "link", "set", "eth0", "up"]))
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
    # veth peers vanish with their namespace; the bridge and any stray veth remain.
    for name in ls:
        if name in links() and ok(["ip", "link", "del", name]):
            removed.append(f"link {name}")
    return removed
