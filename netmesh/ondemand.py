"""On-demand bandwidth sweeps: what the collector hands out and the plan every agent derives.

A *sweep* asks for iperf3 tests now instead of waiting for the budgeted ring
plan: of one node (every pair it is part of, both directions), of one ordered
pair, or of the whole mesh. The collector stamps each request with an id and
a start time a few report intervals ahead and lists every sweep whose window
has not ended in each report's answer (``"sweeps"``, next to the member list)::

    sweep = {"id": str, "start_at": float, "protocols": ["tcp", "udp"],
             "kind": "node" | "pair" | "mesh", "nodes": [str, ...],   # sorted
             "node": str,                        # kind "node"
             "source": str, "destination": str}  # kind "pair"

The plan is a pure function of the sweeps and the slot length, so every agent
(and the collector, for progress and expiry) computes the same one:

- the pairs: ``node``: node -> every other of ``nodes`` and back; ``pair``: the
  one ordered pair; ``mesh``: every ordered pair of ``nodes``;
- the rounds: with ``nodes`` in sorted order, pair (c, s) belongs to round
  ``(pos(s) - pos(c)) mod n`` (empty offsets left out). In one round every node
  is the client of at most one test and the server of at most one (a node's
  one server is at +offset, its one client at -offset). A node sweep and a mesh
  sweep both take n - 1 rounds, the optimum (a node is client n - 1 times);
- the slots: the same slot grid as the budgeted plan (``omit + duration +
  guard`` seconds from the Unix epoch); a sweep takes rounds x protocols slots,
  protocols inner, from the first slot boundary at or after ``start_at``, or
  after the end of the sweep placed before it (sweeps are placed in
  ``(start_at, id)`` order, so two sweeps never share a slot);
- while any sweep's window covers a slot, the budgeted plan does not run in it
  (on any node), so on-demand tests never meet a planned test at a server.

Agents mark the results of sweep tests with the sweep's id (``TestResult.sweep``);
the collector counts a sweep done when every (pair, protocol) has such a result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from netmesh.jsonreader import JsonReader, WireError

SweepKind = Literal["node", "pair", "mesh"]
KINDS: tuple[SweepKind, ...] = ("node", "pair", "mesh")
PROTOCOL_NAMES = ("tcp", "udp")
MAX_SWEEPS = 64  # sweeps in one answer
MAX_SWEEP_NODES = 100_000
MAX_ID = 64

Pair = tuple[str, str]  # (client, server)


@dataclass(frozen=True, kw_only=True)
class Sweep:
    id: str
    start_at: float
    protocols: tuple[str, ...]
    kind: SweepKind
    nodes: tuple[str, ...]  # sorted, unique
    node: str = ""
    source: str = ""
    destination: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "start_at": self.start_at,
            "protocols": list(self.protocols),
            "kind": self.kind,
            "nodes": list(self.nodes),
        }
        if self.kind == "node":
            out["node"] = self.node
        elif self.kind == "pair":
            out["source"], out["destination"] = self.source, self.destination
        return out


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where a sweep runs on the slot grid: slots ``first`` .. ``end - 1``."""

    sweep: Sweep
    rounds: tuple[tuple[Pair, ...], ...]
    first: int
    end: int
    own: int  # the first slot at or after start_at (first > own: pushed by the sweep before)

    def start_time(self, slot_seconds: float) -> float:
        return self.first * slot_seconds

    def end_time(self, slot_seconds: float) -> float:
        return self.end * slot_seconds


@dataclass(frozen=True, kw_only=True)
class SweepTest:
    client: str
    server: str
    protocol: str
    round: int


def pairs(sweep: Sweep) -> list[Pair]:
    """Every ordered pair the sweep tests (client, server)."""
    if sweep.kind == "pair":
        return [(sweep.source, sweep.destination)]
    if sweep.kind == "node":
        others = [n for n in sweep.nodes if n != sweep.node]
        return [(sweep.node, o) for o in others] + [(o, sweep.node) for o in others]
    return [(c, s) for c in sweep.nodes for s in sweep.nodes if c != s]


def rounds(sweep: Sweep) -> tuple[tuple[Pair, ...], ...]:
    """The sweep's pairs in rounds; in each, a node is client of <= 1 test and server of <= 1."""
    pos = {name: i for i, name in enumerate(sweep.nodes)}
    n = len(sweep.nodes)
    by_offset: dict[int, list[Pair]] = {}
    for c, s in pairs(sweep):
        by_offset.setdefault((pos[s] - pos[c]) % n, []).append((c, s))
    return tuple(
        tuple(sorted(by_offset[off], key=lambda p: pos[p[0]])) for off in sorted(by_offset)
    )


def slot_count(rnds: Sequence[Sequence[Pair]], sweep: Sweep) -> int:
    return len(rnds) * len(sweep.protocols)


def place(sweeps: Iterable[Sweep], slot_seconds: float) -> list[Placement]:
    """Every sweep's window, in (start_at, id) order, one after another, never overlapping."""
    out: list[Placement] = []
    end = -(2**62)
    for sweep in sorted(sweeps, key=lambda s: (s.start_at, s.id)):
        rnds = rounds(sweep)
        own = math.ceil(sweep.start_at / slot_seconds - 1e-9)
        first = max(own, end)
        end = first + slot_count(rnds, sweep)
        out.append(Placement(sweep=sweep, rounds=rnds, first=first, end=end, own=own))
    return out


def slot_tests(
    placements: Sequence[Placement], number: int
) -> tuple[Placement | None, list[SweepTest]]:
    """The sweep whose window holds slot ``number`` (None: none does) and its tests in it."""
    for p in placements:
        if p.first <= number < p.end:
            k = number - p.first
            protocols = p.sweep.protocols
            rnd, protocol = divmod(k, len(protocols))
            tests = [
                SweepTest(client=c, server=s, protocol=protocols[protocol], round=rnd + 1)
                for c, s in p.rounds[rnd]
            ]
            return p, tests
    return None, []


def ended(placements: Sequence[Placement], number: int) -> list[str]:
    """Ids of sweeps that may be forgotten at slot ``number`` without moving any other.

    Windows that ended before ``number`` form a prefix of the placements; it is
    cut where the next sweep starts at its own time, not where the one before
    pushed it (forgetting the pusher would move a sweep that agents run).
    """
    cut = sum(1 for p in placements if p.end <= number)
    while 0 < cut < len(placements) and placements[cut].first != placements[cut].own:
        cut -= 1
    return [p.sweep.id for p in placements[:cut]]


# --------------------------------------------------------------------------- parsing


def parse_sweep(obj: Any, path: str = "sweep") -> Sweep:
    r = JsonReader(obj, path)
    name = r.string("kind", max_len=8)
    kinds = [k for k in KINDS if k == name]
    if not kinds:
        raise WireError(f"{r.child('kind')}: unknown kind {name!r} (node, pair or mesh)")
    kind = kinds[0]
    protocols = []
    for i, item in enumerate(r.items("protocols", limit=len(PROTOCOL_NAMES))):
        if item not in PROTOCOL_NAMES or item in protocols:
            raise WireError(f"{r.child('protocols', i)}: {item!r} is not tcp or udp (once)")
        protocols.append(item)
    if not protocols:
        raise WireError(f"{r.child('protocols')}: empty")
    nodes = r.items("nodes", limit=MAX_SWEEP_NODES)
    for i, name in enumerate(nodes):
        if not isinstance(name, str) or not name or len(name) > 253:
            raise WireError(f"{r.child('nodes', i)}: not a node name")
    if list(nodes) != sorted(set(nodes)):
        raise WireError(f"{r.child('nodes')}: must be sorted and unique")
    known = set(nodes)
    node = source = destination = ""
    if kind == "node":
        node = r.string("node")
        named = [node]
    elif kind == "pair":
        source, destination = r.string("source"), r.string("destination")
        if source == destination:
            raise WireError(f"{path}: source and destination are the same node")
        named = [source, destination]
    else:
        named = []
    for name in named:
        if name not in known:
            raise WireError(f"{path}: {name!r} is not one of the sweep's nodes")
    start_at = r.number("start_at")
    if not math.isfinite(start_at):
        raise WireError(f"{r.child('start_at')}: not finite")
    return Sweep(
        id=r.string("id", max_len=MAX_ID),
        start_at=start_at,
        protocols=tuple(protocols),
        kind=kind,
        nodes=tuple(nodes),
        node=node,
        source=source,
        destination=destination,
    )


def parse_sweeps(obj: Any) -> tuple[Sweep, ...]:
    """The ``sweeps`` of a report's answer (absent: none)."""
    if not isinstance(obj, dict) or "sweeps" not in obj:
        return ()
    r = JsonReader(obj, "")
    sweeps = tuple(
        parse_sweep(item, r.child("sweeps", i))
        for i, item in enumerate(r.items("sweeps", limit=MAX_SWEEPS))
    )
    ids = [s.id for s in sweeps]
    if len(set(ids)) != len(ids):
        raise WireError("sweeps: duplicate ids")
    return sweeps
