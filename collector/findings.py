"""Root-cause analysis, step 5: the findings — the smallest things that explain the failing paths.

Every path test is a transaction of items (``collector/mining.py``); the
candidates are the items that name a place in the network:

- ``node=X`` (any path of X), ``src=X`` (out of X), ``dst=X`` (into X);
- ``link=A|B``: the paths between two nodes, both directions;
- ``rack=R``, ``src-rack=R``, ``dst-rack=R`` (paths with an end in rack R),
  ``rack-path=R1|R2`` (paths between two racks);
- ``zone=Z``, ``zone-path=Z1|Z2`` likewise for zones.

Each also for one protocol alone (``dst=X&protocol=tcp``): a fault that
only TCP bandwidth shows is not diluted by the passing UDP tests of the same
paths; once a place is named for one protocol, its failing paths of the
other protocols are its too (not left to smaller things inside it).

Racks and zones come from the topology (``collector/topology.py``). A
candidate's *net gain* is the still-unexplained failing paths it covers minus
the passing paths it holds: a thing is named only when most of its paths fail
and naming it explains more than it wrongly accuses. Greedily the candidate
with the highest net gain is named (ties: the one with fewer paths — the
smaller thing —, then link < node < rack path < rack < zone path < zone,
then by name), its failing paths are explained, and the search repeats up to
``max_suspects`` findings: several independent faults give several findings.
A candidate qualifies when it explains at least ``min_failing_paths`` more
failing paths, with a net gain of at least 0 (a node: half its paths, in
the direction named, fail, as before) or above 0 (a link, rack, zone: more
of its paths fail than pass), confidence ({item} → {FAIL}) of at least
``min_confidence`` and lift above ``min_lift``; a node needs ``min_peers``
peers among the paths it explains (a victim that talks only to a broken node
is never named); a link needs both ends healthy elsewhere (at most
``link_elsewhere_ratio`` of each end's other paths fail); a rack or zone
(or a path between two) needs three nodes among them (fewer are a node or a
link).

So one node's failing paths name the node, not its rack (same paths
explained, the rack holds more passing paths); a bad link between two nodes
that pass elsewhere names the link, not either node (each node holds many
passing paths); a rack uplink names the rack; paths between two racks name
the rack path, no node. When everything fails equally no candidate has a
lift above 1: the verdict is cluster-wide (``collector/verdict.py``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.judging import PathOutcome
from collector.mining import FAIL, Rule
from collector.topology import NodeTopology

KIND_ORDER = ("link", "node", "rack-path", "rack", "zone-path", "zone")
KIND_OF = {
    "link": "link",
    "node": "node",
    "src": "node",
    "dst": "node",
    "rack-path": "rack-path",
    "rack": "rack",
    "src-rack": "rack",
    "dst-rack": "rack",
    "zone-path": "zone-path",
    "zone": "zone",
}
DIRECTION_OF = {"src": "outbound", "dst": "inbound", "src-rack": "outbound", "dst-rack": "inbound"}
EVIDENCE_PATHS = 10
PROTOCOL_SEP = "&protocol="  # dst=node-3&protocol=tcp: the paths into node-3 of one protocol


def criterion(reason: str) -> str:
    """Which criterion a FAIL reason comes from (judging.py, meshjudge.py, lightjudge.py)."""
    for prefix, name in (
        ("test ", "test-failed"),
        ("loss ", "loss"),
        ("iperf3 retransmits", "retransmits"),
        ("iperf3 RTT", "rtt"),
        ("eBPF", "ebpf-retransmits"),
        ("light-tier loss", "light-loss"),
        ("light-tier RTT", "light-rtt"),
        ("light tier:", "light-no-echo"),
        ("MTU blackhole", "mtu-blackhole"),
    ):
        if reason.startswith(prefix):
            return name
    if "path's baseline" in reason:
        return "bandwidth-history"
    if "link speed" in reason:
        return "bandwidth-capacity"
    if "median" in reason:
        return "bandwidth-peers"
    return "other"


def place_items(o: PathOutcome, topology: Mapping[str, NodeTopology]) -> list[str]:
    """The candidate items of one path test (see the module docstring)."""
    s, d = o.source, o.destination
    a, b = sorted((s, d))
    items = [f"node={s}", f"node={d}", f"src={s}", f"dst={d}", f"link={a}|{b}"]
    ts, td = topology.get(s), topology.get(d)
    for attr, name in (("rack", "rack"), ("zone", "zone")):
        vs = getattr(ts, attr) if ts is not None else ""
        vd = getattr(td, attr) if td is not None else ""
        if vs:
            items.append(f"{name}={vs}")
        if vd and vd != vs:
            items.append(f"{name}={vd}")
        if name == "rack":
            if vs:
                items.append(f"src-rack={vs}")
            if vd:
                items.append(f"dst-rack={vd}")
        if vs and vd and vs != vd:
            x, y = sorted((vs, vd))
            items.append(f"{name}-path={x}|{y}")
    return [*items, *(f"{i}{PROTOCOL_SEP}{o.protocol}" for i in items)]


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One thing named, with its evidence."""

    kind: str  # link, node, rack-path, rack, zone-path, zone
    subject: str  # node-3, node-2|node-5, rack-1, rack-1|rack-2
    item: str  # the transaction item: dst=node-3, link=node-2|node-5, dst=node-3&protocol=tcp
    protocol: str  # "" = every protocol; else the one whose paths fail (tcp, udp, light)
    direction: str  # inbound, outbound or both
    explains: int  # failing paths it was named for (not explained by an earlier finding)
    failing: int  # all failing paths it holds
    paths: int  # all paths it holds
    nodes: tuple[str, ...]  # the nodes on the failing paths it explains
    criteria: tuple[tuple[str, int], ...]  # criterion -> failing paths it explains that fail it
    evidence: tuple[PathOutcome, ...]  # some of those paths, with their reasons
    rule: Rule  # {item} -> {FAIL}
    # The layer that fails: the path RCA judges the host network's paths, so its
    # findings are the underlay (collector/layers.py names the overlay, dnsjudge DNS).
    layer: str = "underlay"

    def title(self) -> str:
        a, _, b = self.subject.partition("|")
        only = f" ({self.protocol})" if self.protocol else ""
        if self.kind == "link":
            return f"link {a} ↔ {b}{only}"
        if self.kind in ("rack-path", "zone-path"):
            return f"path between {self.kind[:4]}s {a} and {b}{only}"
        notes = [n for n in (self.direction, self.protocol) if n and n != "both"]
        way = f" ({', '.join(notes)})" if notes else ""
        return f"{self.kind} {self.subject}{way}"

    def text(self) -> str:
        crit = ", ".join(f"{c} {n}" for c, n in self.criteria)
        return (
            f"{self.title()}: {self.failing} of its {self.paths} paths fail ({crit}); "
            f"confidence {self.rule.confidence:.2f}, lift {self.rule.lift:.2f}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "layer": self.layer,
            "subject": self.subject,
            "title": self.title(),
            "direction": self.direction,
            "protocol": self.protocol,
            "explains": self.explains,
            "failing_paths": self.failing,
            "paths": self.paths,
            "nodes": list(self.nodes),
            "criteria": dict(self.criteria),
            "confidence": self.rule.confidence,
            "lift": self.rule.lift,
            "rule": self.rule.text(),
            "evidence": [p.to_json() for p in self.evidence],
        }


def _split(item: str) -> tuple[str, str, str]:
    """role, value, protocol ("" = all) of a candidate item."""
    place, _, protocol = item.partition(PROTOCOL_SEP)
    role, _, value = place.partition("=")
    return role, value, protocol


def _item(role: str, value: str, protocol: str) -> str:
    return f"{role}={value}" + (f"{PROTOCOL_SEP}{protocol}" if protocol else "")


def _direction(failing: Sequence[PathOutcome], paths: set[int], node: str) -> str:
    inbound = sum(1 for i in paths if failing[i].destination == node)
    outbound = len(paths) - inbound
    if inbound >= 2 * outbound:
        return "inbound"
    return "outbound" if outbound >= 2 * inbound else "both"


class Search:
    """The counts the greedy search needs: every candidate's paths, failing and passing."""

    def __init__(
        self,
        outcomes: Sequence[PathOutcome],
        failing: Sequence[PathOutcome],
        topology: Mapping[str, NodeTopology],
    ) -> None:
        self.n = len(outcomes)
        self.failing = failing
        self.topology = topology
        self.paths: Counter[str] = Counter()
        self.per_protocol: Counter[str] = Counter(o.protocol for o in outcomes)
        self.failing_per_protocol: Counter[str] = Counter(o.protocol for o in failing)
        # Every candidate comes from a failing path, so only the paths that share a node,
        # rack or zone with one can be in a candidate: count those (few, when little fails).
        self._nodes = {n for o in failing for n in (o.source, o.destination)}
        self._places = {
            f"{attr}={v}"
            for n in self._nodes
            if (t := topology.get(n)) is not None
            for attr, v in (("rack", t.rack), ("zone", t.zone))
            if v
        }
        # ... every node of a rack or zone a failing path touches, once, not per path
        self._nodes |= {
            n
            for n, t in topology.items()
            if f"rack={t.rack}" in self._places or f"zone={t.zone}" in self._places
        }
        for o in outcomes:
            if o.source in self._nodes or o.destination in self._nodes:
                self.paths.update(place_items(o, topology))
        self.fails: dict[str, set[int]] = defaultdict(set)
        for i, o in enumerate(failing):
            for item in place_items(o, topology):
                self.fails[item].add(i)

    def rule(self, item: str) -> Rule:
        """{item} -> {FAIL}; for one protocol's item the lift is against that protocol's
        failing share (every TCP test failing is no TCP-specific association)."""
        f, p = len(self.fails[item]), self.paths[item]
        confidence = f / p
        protocol = _split(item)[2]
        base = (
            self.failing_per_protocol[protocol] / self.per_protocol[protocol]
            if protocol
            else len(self.failing) / self.n
        )
        return Rule(
            antecedent=frozenset((item,)),
            consequent=frozenset((FAIL,)),
            count=f,
            support=f / self.n,
            confidence=confidence,
            lift=confidence / base,
        )

    def run(
        self,
        *,
        max_findings: int,
        min_failing: int,
        min_confidence: float,
        min_lift: float,
        min_peers: int,
        elsewhere: float,
    ) -> tuple[list[Finding], set[int]]:
        """The findings, greedily (module docstring), and the failing paths left unexplained."""
        remaining = set(range(len(self.failing)))
        found: list[Finding] = []
        named: set[tuple[str, str]] = set()  # (kind, subject): named once, whatever protocol
        while remaining and len(found) < max_findings:
            best: tuple[tuple[int, int, int, str], str, set[int]] | None = None
            for item, idx in self.fails.items():
                role, value, _ = _split(item)
                if (KIND_OF[role], value) in named:
                    continue
                cover = idx & remaining
                gain = len(cover) - (self.paths[item] - len(idx))
                if len(cover) < min_failing or gain < (0 if KIND_OF[role] == "node" else 1):
                    continue
                rule = self.rule(item)
                if rule.confidence < min_confidence or rule.lift <= min_lift:
                    continue
                if not self._qualifies(item, cover, min_peers, elsewhere):
                    continue
                key = (-gain, self.paths[item], KIND_ORDER.index(KIND_OF[role]), item)
                if best is None or key < best[0]:
                    best = (key, item, cover)
            if best is None:
                break
            _, item, cover = best
            role, value, protocol = _split(item)
            named.add((KIND_OF[role], value))
            if protocol:  # the place is named: its failing paths of every protocol are its
                cover = cover | (self.fails.get(_item(role, value, ""), set()) & remaining)
            found.append(self._finding(item, cover))
            remaining -= cover
        return found, remaining

    def _qualifies(self, item: str, cover: set[int], min_peers: int, elsewhere: float) -> bool:
        role, value, protocol = _split(item)
        kind = KIND_OF[role]
        ends = {n for i in cover for n in (self.failing[i].source, self.failing[i].destination)}
        if kind == "node":
            return len(ends - {value}) >= min_peers
        if kind == "link":  # both ends healthy elsewhere (in the same protocol, if one)
            for end in value.split("|"):
                node = _item("node", end, protocol)
                other = self.paths[node] - self.paths[item]
                bad = len(self.fails.get(node, ())) - len(self.fails[item])
                if other > 0 and bad > elsewhere * other:
                    return False
            return True
        return len(ends) >= 3  # a rack, zone or the path between two: more than one link

    def _finding(self, item: str, cover: set[int]) -> Finding:
        role, value, protocol = _split(item)
        kind = KIND_OF[role]
        direction = DIRECTION_OF.get(role, "both")
        if role == "node":
            direction = _direction(self.failing, self.fails[item], value)
        paths = [self.failing[i] for i in sorted(cover)]
        crit: Counter[str] = Counter()
        for o in paths:
            crit.update({criterion(r) for r in o.reasons})
        return Finding(
            kind=kind,
            subject=value,
            item=item,
            protocol=protocol,
            direction=direction,
            explains=len(cover),
            failing=len(self.fails[item]),
            paths=self.paths[item],
            nodes=tuple(sorted({n for o in paths for n in (o.source, o.destination)})),
            criteria=tuple(sorted(crit.items(), key=lambda kv: (-kv[1], kv[0]))),
            evidence=tuple(paths[:EVIDENCE_PATHS]),
            rule=self.rule(item),
        )

    def covered(self, outcomes: Sequence[PathOutcome], findings: Sequence[Finding]) -> list[bool]:
        """Whether each outcome belongs to one of ``findings`` (for the cluster-wide test)."""
        items = {f.item for f in findings}
        return [
            self._relevant(o) and any(i in items for i in place_items(o, self.topology))
            for o in outcomes
        ]

    def _relevant(self, o: PathOutcome) -> bool:
        return o.source in self._nodes or o.destination in self._nodes
