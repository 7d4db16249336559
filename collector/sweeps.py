"""On-demand bandwidth sweeps on the collector's side: requests, their progress, their listing.

``POST /api/v1/sweeps`` (collector/sweepapi.py) hands a request body to
``SweepBook.request``: exactly one of ``{"node": X}`` (X with every other
member, both directions), ``{"source": A, "destination": B}`` (that ordered
pair) or ``{"mesh": true}`` (every ordered pair), optionally ``"protocols"``
(default tcp and udp). The book checks it against the member list (unknown
node, fewer than two members: 422; malformed: 400; too many pending: 429;
state unchanged on every error), stamps an id and a start time ``lead``
seconds ahead (every agent hears of it in a report answer first), and lists it
in every report answer until its window on the slot grid has ended
(netmesh/ondemand.py places it; every agent computes the same placement).

Agents tag a sweep's results with its id; ``record(report)`` keeps each
(client, server, protocol) result once, and the request is **done** when all
arrived, **expired** (with the missing tests named) ``grace`` seconds after its
planned end otherwise. States: pending (before its first slot), running, done,
expired.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from collector.state import Stats
from netmesh.ondemand import (
    PROTOCOL_NAMES,
    Placement,
    Sweep,
    SweepKind,
    ended,
    pairs,
    place,
)
from netmesh.wire import MemberList, Report, TestResult

FALLBACK_SLOT_SECONDS = 8.0  # the agent's default slot (5 s test + 1 s omit + 2 s guard)
FALLBACK_REPORT_INTERVAL = 10.0  # the agent's default report interval
MIN_LEAD = 2.0
MAX_MESH_NODES = 200  # a mesh sweep takes n - 1 rounds (at 200 nodes x 2 protocols x 8 s: 53 min)
ACTIVE = ("pending", "running")

TestKey = tuple[str, str, str]  # (client, server, protocol)


class SweepError(Exception):
    """A refused request: HTTP status and a reason for the caller (nothing changed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Request:
    sweep: Sweep
    requested_at: float
    caller: str
    expected: frozenset[TestKey]
    results: dict[TestKey, TestResult] = field(default_factory=dict)
    state: str = "pending"
    finished_at: float | None = None
    reason: str = ""
    window: tuple[float, float] | None = None  # planned start and end, once placed

    def target(self) -> dict[str, Any]:
        s = self.sweep
        if s.kind == "node":
            return {"node": s.node}
        if s.kind == "pair":
            return {"source": s.source, "destination": s.destination}
        return {"mesh": True}


@dataclass(frozen=True)
class Agents:
    """What the agents said about their timing (the collector places sweeps on their grid)."""

    slot_seconds: float = FALLBACK_SLOT_SECONDS
    report_interval: float = FALLBACK_REPORT_INTERVAL

    @classmethod
    def from_reports(cls, reports: Iterable[Report]) -> Agents:
        reports = list(reports)
        slots = [r.agent.slot_seconds for r in reports if r.agent.slot_seconds > 0]
        intervals = [r.agent.report_interval for r in reports if r.agent.report_interval > 0]
        return cls(
            slot_seconds=max(slots, default=FALLBACK_SLOT_SECONDS),
            report_interval=max(intervals, default=FALLBACK_REPORT_INTERVAL),
        )


def parse_request(
    body: Any, members: MemberList
) -> tuple[SweepKind, tuple[str, ...], dict[str, str], tuple[str, ...]]:
    """(kind, nodes, names, protocols) of a request body; SweepError 400/422 when it is wrong."""
    if not isinstance(body, dict):
        raise SweepError(
            400,
            'the body must be a JSON object: {"node": NAME}, '
            '{"source": A, "destination": B} or {"mesh": true}',
        )
    allowed = {"node", "source", "destination", "mesh", "protocols"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise SweepError(
            400,
            f"unknown field(s) {', '.join(map(repr, extra))}; "
            f"allowed: {', '.join(sorted(allowed))}",
        )
    has = [k for k in ("node", "source", "destination", "mesh") if k in body]
    if has == ["node"]:
        kind: SweepKind = "node"
    elif has == ["source", "destination"]:
        kind = "pair"
    elif has == ["mesh"]:
        if body["mesh"] is not True:
            raise SweepError(400, "mesh: must be true")
        kind = "mesh"
    else:
        raise SweepError(400, "give exactly one of: node, source and destination, mesh")
    names: dict[str, str] = {k: body[k] for k in has if k != "mesh"}
    for key, value in names.items():
        if not isinstance(value, str) or not value:
            raise SweepError(400, f"{key}: must be a non-empty string (a node name)")
    protocols = body.get("protocols", list(PROTOCOL_NAMES))
    if (
        not isinstance(protocols, list)
        or not protocols
        or any(p not in PROTOCOL_NAMES for p in protocols)
        or len(set(protocols)) != len(protocols)
    ):
        raise SweepError(400, "protocols: a non-empty list of distinct 'tcp', 'udp'")
    nodes = tuple(sorted(m.name for m in members.members))
    known = set(nodes)
    for key, value in names.items():
        if value not in known:
            raise SweepError(422, f"{key}: unknown node {value!r} (not a member of the mesh)")
    if kind == "pair" and names["source"] == names["destination"]:
        raise SweepError(422, "source and destination are the same node")
    if len(nodes) < 2:
        raise SweepError(422, "fewer than two members: nothing to test")
    if kind == "mesh" and len(nodes) > MAX_MESH_NODES:
        raise SweepError(
            422,
            f"a mesh sweep of {len(nodes)} members would take {len(nodes) - 1} rounds; "
            f"mesh sweeps are limited to {MAX_MESH_NODES} members (sweep nodes one at a time)",
        )
    return kind, nodes, names, tuple(p for p in PROTOCOL_NAMES if p in protocols)


class SweepBook:
    def __init__(
        self,
        *,
        max_pending: int,
        lead: float,
        grace: float,
        history: int,
        clock: Callable[[], float],
        stats: Stats | None = None,
    ) -> None:
        self.max_pending = max_pending
        self.lead = lead
        self.grace = grace
        self.history = history
        self.clock = clock
        self.stats = stats if stats is not None else Stats()
        self.requests: OrderedDict[str, Request] = OrderedDict()
        self.listed: dict[str, Sweep] = {}  # handed to agents until the window has ended
        self.agents = Agents()
        self._seq = 0
        self._last_start = 0.0
        self._body: bytes | None = None  # the "sweeps" JSON, rebuilt when ``listed`` changes
        self._placed: tuple[tuple[tuple[str, ...], float], dict[str, Placement]] | None = None

    # ----------------------------------------------------------------- requests

    def request(self, body: Any, members: MemberList, caller: str = "") -> tuple[Request, bool]:
        """A new request (True), or the same pending/running one already asked for (False)."""
        try:
            return self._request(body, members, caller)
        except SweepError:
            self.stats.sweeps["refused"] += 1
            raise
        finally:
            self._count_active()

    def _count_active(self) -> None:
        self.stats.sweeps_active = sum(1 for r in self.requests.values() if r.state in ACTIVE)

    def _request(self, body: Any, members: MemberList, caller: str) -> tuple[Request, bool]:
        kind, nodes, names, protocols = parse_request(body, members)
        now = self.clock()
        self.tick(now)
        for req in self.requests.values():
            s = req.sweep
            same = (s.kind, s.node, s.source, s.destination, s.protocols) == (
                kind,
                names.get("node", ""),
                names.get("source", ""),
                names.get("destination", ""),
                protocols,
            )
            if same and req.state in ACTIVE and s.nodes == nodes:
                return req, False
        active = sum(1 for r in self.requests.values() if r.state in ACTIVE)
        if active >= self.max_pending:
            raise SweepError(
                429, f"{active} sweeps pending or running (sweep_max_pending): retry later"
            )
        lead = self.lead or 2 * self.agents.report_interval + 2
        start = max(now + max(lead, MIN_LEAD), self._last_start + 0.001)
        self._seq += 1
        sweep = Sweep(
            id=f"{int(now * 1000)}-{self._seq}",
            start_at=round(start, 3),
            protocols=protocols,
            kind=kind,
            nodes=nodes,
            node=names.get("node", ""),
            source=names.get("source", ""),
            destination=names.get("destination", ""),
        )
        self._last_start = sweep.start_at
        expected = frozenset((c, s, p) for c, s in pairs(sweep) for p in protocols)
        req = Request(sweep=sweep, requested_at=now, caller=caller, expected=expected)
        self.requests[sweep.id] = req
        self.listed[sweep.id] = sweep
        self._body = None
        self.stats.sweeps["requested"] += 1
        return req, True

    # ----------------------------------------------------------------- progress

    def record(self, report: Report) -> None:
        """Keep the sweep results of a report (tagged with an active sweep's id)."""
        tagged = [r for r in report.results if r.sweep]
        if not tagged:
            return
        for res in tagged:
            req = self.requests.get(res.sweep)
            if req is None or req.state not in ACTIVE:
                continue
            key = (res.source, res.destination, res.protocol)
            if key in req.expected:
                req.results.setdefault(key, res)
                if len(req.results) == len(req.expected):
                    req.state, req.finished_at = "done", self.clock()
                    self.stats.sweeps["done"] += 1
                    self._count_active()

    def busy(self) -> bool:
        """Anything to list or to watch (else ``tick`` has nothing to do)."""
        return bool(self.listed) or any(r.state in ACTIVE for r in self.requests.values())

    def observe(self, reports: Iterable[Report]) -> None:
        """The agents' timing, from their latest reports."""
        self.agents = Agents.from_reports(reports)

    def placements(self) -> dict[str, Placement]:
        key = (tuple(sorted(self.listed)), self.agents.slot_seconds)
        if self._placed is None or self._placed[0] != key:
            placed = place(self.listed.values(), self.agents.slot_seconds)
            self._placed = (key, {p.sweep.id: p for p in placed})
        return self._placed[1]

    def tick(self, now: float) -> None:
        """pending → running at the first slot, → expired ``grace`` after the planned end;
        stop listing sweeps whose window ended; keep ``history`` finished requests."""
        slot = self.agents.slot_seconds
        placed = self.placements()
        for req in self.requests.values():
            p = placed.get(req.sweep.id)
            if p is not None:
                req.window = (p.start_time(slot), p.end_time(slot))
            if req.state not in ACTIVE or p is None:
                continue
            if req.state == "pending" and now >= p.start_time(slot):
                req.state = "running"
            if now > p.end_time(slot) + self.grace:
                missing = sorted(req.expected - req.results.keys())
                req.state, req.finished_at = "expired", now
                self.stats.sweeps["expired"] += 1
                req.reason = f"no result within {self.grace:g}s of the planned end for " + _listed(
                    [f"{c}->{s} {proto}" for c, s, proto in missing]
                )
        gone = ended(list(placed.values()), math.floor(now / slot))
        for sweep_id in gone:
            owner = self.requests.get(sweep_id)
            if owner is None or owner.state not in ACTIVE:
                del self.listed[sweep_id]
                self._body = None
        self._count_active()
        finished = [k for k, r in self.requests.items() if r.state not in ACTIVE]
        for key in finished[: max(0, len(finished) - self.history)]:
            if key not in self.listed:
                del self.requests[key]

    # ----------------------------------------------------------------- views

    def answer(self) -> bytes | None:
        """The ``sweeps`` JSON for report answers (None: nothing to list)."""
        if not self.listed:
            return None
        if self._body is None:
            sweeps = sorted(self.listed.values(), key=lambda s: (s.start_at, s.id))
            self._body = json.dumps([s.to_json() for s in sweeps], separators=(",", ":")).encode()
        return self._body

    def view(self, req: Request, now: float, *, results: bool = True) -> dict[str, Any]:
        """A sweep as the API shows it; ``results=False`` leaves out the per-test list."""
        placed = self.placements().get(req.sweep.id)
        if placed is not None:
            slot = self.agents.slot_seconds
            req.window = (placed.start_time(slot), placed.end_time(slot))
        tests = []
        for c, s, p in sorted(req.expected) if results else ():
            res = req.results.get((c, s, p))
            tests.append(
                {
                    "source": c,
                    "destination": s,
                    "protocol": p,
                    "result": res.result if res else None,
                    "message": res.message if res else "",
                    "started_at": res.started_at if res else None,
                    "received_bits_per_second": res.received_bits_per_second if res else None,
                    "loss_ratio": res.loss_ratio if res else None,
                }
            )
        failed = sum(1 for r in req.results.values() if not r.ok)
        out = {
            "now": now,
            "id": req.sweep.id,
            "state": req.state,
            "target": req.target(),
            "protocols": list(req.sweep.protocols),
            "requested_at": req.requested_at,
            "start_at": req.sweep.start_at,
            "planned_start": req.window[0] if req.window else None,
            "planned_end": req.window[1] if req.window else None,
            "finished_at": req.finished_at,
            "reason": req.reason,
            "tests": len(req.expected),
            "completed": len(req.results),
            "failed": failed,
        }
        if results:
            out["results"] = tests
        return out

    def views(self, now: float, *, results: bool = False) -> dict[str, Any]:
        return {
            "now": now,
            "slot_seconds": self.agents.slot_seconds,
            "sweeps": [
                self.view(r, now, results=results) for r in reversed(self.requests.values())
            ],
        }


def _listed(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
