"""Faults on the lab's fabric rather than on one node: a rack's uplink, one node pair's link.

- Uplink (racked labs): ``rate`` is tbf on the uplink veth end whose egress
  carries that direction (the core end for traffic into the rack, the rack end
  for traffic out of it). ``loss`` is an nftables rule in the bridge family,
  ``numgen random`` on the rack bridge's forward hook matched on the uplink's
  rack end (``iifname`` into the rack, ``oifname`` out of it): this kernel has
  neither netem nor tc's gact action, and iptables in a node namespace would
  hit every rack member's traffic only at the ends. Drops in a bridge's
  forward path are silent to the sender, as on a lossy switch port.
- Link (one pair, both directions): iptables ``statistic`` drops on each
  end's INPUT matched on the other end's address, in a chain of its own
  (``NETMESH-LINK``) so a node fault and a link fault never clear each other.

Both are applied declaratively: the whole set of uplink rules, or a node's
whole link chain, is rebuilt from the lab's recorded faults on every change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lab.faults import FaultError
from lab.netns import tbf_args
from lab.shell import in_ns, ok, run
from lab.topology import LabNode, Topology

LINK_CHAIN = "NETMESH-LINK"
DIRECTIONS = ("both", "in", "out")  # in: core → rack, out: rack → core
LOSS_SCALE = 1_000_000  # nft numgen modulus: loss resolution of 1e-6


@dataclass(frozen=True, kw_only=True)
class UplinkFault:
    loss: float = 0.0  # ratio 0-1
    rate_bps: int = 0  # 0 = unshaped
    direction: str = "both"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise FaultError(f"direction {self.direction!r}: one of {', '.join(DIRECTIONS)}")

    def empty(self) -> bool:
        return not (self.loss or self.rate_bps)

    def carries(self, direction: str) -> bool:
        return self.direction in ("both", direction)

    def describe(self) -> str:
        parts = []
        if self.loss:
            parts.append(f"{self.loss * 100:g}% loss")
        if self.rate_bps:
            parts.append(f"rate {self.rate_bps / 1e6:g} Mbit/s")
        where = {"both": "both directions", "in": "into the rack", "out": "out of the rack"}
        return (", ".join(parts) or "none") + f" ({where[self.direction]})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UplinkFault:
        return cls(
            loss=float(data.get("loss", 0.0)),
            rate_bps=int(data.get("rate_bps", 0)),
            direction=str(data.get("direction", "both")),
        )


def link_key(a: LabNode, b: LabNode) -> str:
    """One name per unordered pair: ``node-2|node-5`` (lower index first)."""
    if a.name == b.name:
        raise FaultError(f"a link needs two different nodes, not {a.name} twice")
    first, second = sorted((a, b), key=lambda n: n.index)
    return f"{first.name}|{second.name}"


def parse_link(topo: Topology, text: str) -> tuple[LabNode, LabNode]:
    """``node-2,node-5`` (names, indexes or addresses) → the two nodes."""
    parts = [p.strip() for p in text.replace("|", ",").split(",") if p.strip()]
    if len(parts) != 2:
        raise FaultError(f"link {text!r}: give two nodes, like node-2,node-5")
    try:
        a, b = topo.node(parts[0]), topo.node(parts[1])
    except KeyError as exc:
        raise FaultError(str(exc.args[0])) from None
    link_key(a, b)
    return a, b


# ---------------------------------------------------------------------- uplinks


def _nft_loss(loss: float) -> str:
    return f"numgen random mod {LOSS_SCALE} < {round(loss * LOSS_SCALE)} drop"


def nft_rules(topo: Topology, faults: Mapping[int, UplinkFault]) -> list[str]:
    """The forward-hook rules for these uplink faults (rack → fault)."""
    rules = []
    for rack, fault in sorted(faults.items()):
        if not fault.loss:
            continue
        end = topo.uplink_rack_end(rack)
        if fault.carries("in"):
            rules.append(f'iifname "{end}" {_nft_loss(fault.loss)}')
        if fault.carries("out"):
            rules.append(f'oifname "{end}" {_nft_loss(fault.loss)}')
    return rules


def nft_script(topo: Topology, faults: Mapping[int, UplinkFault]) -> str:
    """An ``nft -f`` script that replaces the lab's table (removes it when no rule is left)."""
    table = f"bridge {topo.nft_table}"
    lines = [f"table {table} {{}}", f"delete table {table}"]
    rules = nft_rules(topo, faults)
    if rules:
        lines += [
            f"table {table} {{",
            "  chain forward {",
            "    type filter hook forward priority 0; policy accept;",
            *(f"    {rule}" for rule in rules),
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def uplink_qdiscs(topo: Topology, rack: int, fault: UplinkFault | None) -> list[list[str]]:
    """tc commands that set both ends of ``rack``'s uplink to what ``fault`` asks."""
    cmds = []
    for direction, dev in (("in", topo.uplink_core_end(rack)), ("out", topo.uplink_rack_end(rack))):
        if fault and fault.rate_bps and fault.carries(direction):
            cmds.append(["tc", "qdisc", "replace", "dev", dev, "root", *tbf_args(fault.rate_bps)])
        else:
            cmds.append(["tc", "qdisc", "del", "dev", dev, "root"])
    return cmds


def apply_uplinks(topo: Topology, faults: Mapping[int, UplinkFault]) -> None:
    """Make every uplink carry exactly ``faults`` (racks not in it: no fault)."""
    if any(f.loss for f in faults.values()):
        run(["nft", "-f", "-"], stdin=nft_script(topo, faults))
    else:
        ok(["nft", "delete", "table", "bridge", topo.nft_table])
    for rack in range(1, topo.racks + 1):
        for cmd in uplink_qdiscs(topo, rack, faults.get(rack)):
            if cmd[2] == "del":
                ok(cmd)  # no qdisc to delete is fine
            else:
                run(cmd)


# ---------------------------------------------------------------------- links


def link_losses(topo: Topology, links: Mapping[str, float], node: LabNode) -> dict[str, float]:
    """The peers' addresses whose traffic ``node`` drops, with the loss ratio."""
    out = {}
    for key, loss in links.items():
        a, b = (topo.node(n) for n in key.split("|"))
        if node.name in (a.name, b.name):
            out[(b if a.name == node.name else a).address] = loss
    return out


def link_chain_commands(node: LabNode, losses: Mapping[str, float]) -> list[list[str]]:
    """iptables commands (in ``node``'s namespace) that make its link chain exactly ``losses``;
    the first two (create chain, hook it into INPUT) may fail harmlessly when already done."""
    ipt = ["iptables", "-w", "5"]
    cmds = [
        in_ns(node.netns, [*ipt, "-N", LINK_CHAIN]),
        in_ns(node.netns, [*ipt, "-C", "INPUT", "-j", LINK_CHAIN]),
        in_ns(node.netns, [*ipt, "-F", LINK_CHAIN]),
    ]
    for address, loss in sorted(losses.items()):
        rule = ["-A", LINK_CHAIN, "-i", "eth0", "-s", f"{address}/32"]
        rule += ["-m", "statistic", "--mode", "random", "--probability", f"{loss:.6f}"]
        cmds.append(in_ns(node.netns, [*ipt, *rule, "-j", "DROP"]))
    return cmds


def apply_links(topo: Topology, links: Mapping[str, float], nodes: Iterable[LabNode]) -> None:
    """Rebuild the link chain of each of ``nodes`` from ``links`` (``a|b`` → loss)."""
    for node in nodes:
        create, check, *rest = link_chain_commands(node, link_losses(topo, links, node))
        ok(create)
        if not ok(check):
            run([*check[: check.index("-C")], "-I", *check[check.index("-C") + 1 :]])
        for cmd in rest:
            run(cmd)
