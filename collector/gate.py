"""``netmesh-check``'s judgement, no I/O: fresh or not, the exit code, the matrix and the text.

The check (collector/check.py) reads three answers of the collector and hands
them here:

- ``/api/v1/nodes`` and ``/api/v1/light`` → a ``Snapshot``: the members (up,
  when last reported, on the collector's clock) and the latest light-tier
  window of every ordered pair (values keyed by the /metrics family names of
  netmesh/catalogue.py);
- ``freshness(snapshot, since)``: what still keeps the data from being fresh
  — every member up and reported after ``since`` (the collector's clock when
  the check started), every ordered pair of members with light-tier data;
  empty = fresh;
- ``/api/v1/rca`` → ``Rca``, and ``decide`` → the exit code and its reasons:
  0 healthy (verdict ok, no suspect, no failing path, no DNS or Service finding), 1 suspects,
  DNS/Service findings or failing paths (also cluster-wide and isolated), 2 cannot tell
  (stale data, RCA off or without data, an answer that is not what the collector sends).

Every parser raises ``WireError`` (netmesh/jsonreader.py) naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from netmesh import catalogue as cat
from netmesh.jsonreader import JsonReader, WireError

HEALTHY, UNHEALTHY, UNKNOWN = 0, 1, 2
EXIT_NAMES = {HEALTHY: "healthy", UNHEALTHY: "unhealthy", UNKNOWN: "cannot tell"}

VERDICT_OK = "ok"
UNHEALTHY_VERDICTS = ("suspects", "cluster-wide", "isolated")
UNKNOWN_VERDICTS = ("off", "no-data")

MAX_ITEMS = 100_000  # list entries accepted in one answer (5,000 nodes x k=20 peers)
LISTED = 5  # names listed in one progress/reason line before "..."
LISTED_PATHS = 10  # failing paths printed in the text output

# The light-tier values the check shows, by their /metrics family.
CELL_FAMILIES = (
    cat.LIGHT_PROBES,
    cat.LIGHT_LOSS,
    cat.LIGHT_FORWARD_LOSS,
    cat.LIGHT_RETURN_LOSS,
    cat.LIGHT_RTT_MEDIAN,
    cat.LIGHT_RTT_P99,
    cat.LIGHT_MTU_LOSS,
)


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, kw_only=True)
class MemberView:
    name: str
    up: bool
    last_report_at: float | None


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One ordered pair's latest light-tier window."""

    source: str
    destination: str
    reported_at: float
    values: dict[str, float | None]  # family name → value (None: no sample)

    def value(self, family: cat.MetricFamily) -> float | None:
        return self.values.get(family.name)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "reported_at": self.reported_at,
            **self.values,
        }


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    now: float  # the collector's clock when it answered /api/v1/light
    members: tuple[MemberView, ...]
    cells: dict[tuple[str, str], Cell]
    light_down: dict[str, str] = field(default_factory=dict)  # node → reason

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]


def parse_snapshot(nodes: Any, light: Any) -> Snapshot:
    """``/api/v1/nodes`` and ``/api/v1/light`` answers → a Snapshot (WireError if malformed)."""
    members = []
    n = JsonReader(nodes, "/api/v1/nodes")
    for i, item in enumerate(n.items("nodes", limit=MAX_ITEMS)):
        r = JsonReader(item, n.child("nodes", i))
        if r.get("member", False) is not True:
            continue  # an agent outside the member list (e.g. on a cordoned node)
        up = r.get("up")
        if not isinstance(up, bool):
            raise WireError(f"{r.child('up')}: expected true or false")
        members.append(
            MemberView(
                name=r.string("name"), up=up, last_report_at=r.optional_number("last_report_at")
            )
        )
    g = JsonReader(light, "/api/v1/light")
    cells = {}
    for i, item in enumerate(g.items("paths", limit=MAX_ITEMS)):
        r = JsonReader(item, g.child("paths", i))
        v = JsonReader(r.get("values"), r.child("values"))
        cell = Cell(
            source=r.string("source"),
            destination=r.string("destination"),
            reported_at=r.number("reported_at"),
            values={f.name: v.optional_number(f.name) for f in CELL_FAMILIES},
        )
        cells[cell.source, cell.destination] = cell
    down = {}
    for i, item in enumerate(g.items("agents", limit=MAX_ITEMS, default=[])):
        r = JsonReader(item, g.child("agents", i))
        if r.get("light_up", None) is False:
            down[r.string("node")] = str(r.get("light_reason", "") or "no reason given")
    return Snapshot(
        now=g.number("now"),
        members=tuple(sorted(members, key=lambda m: m.name)),
        cells=cells,
        light_down=down,
    )


@dataclass(frozen=True, kw_only=True)
class Rca:
    verdict: str
    summary: str
    suspects: tuple[dict[str, Any], ...]
    failing_paths: tuple[dict[str, Any], ...]
    failing: int  # all failing paths (the list may be capped)
    computed_at: float | None
    dns_findings: tuple[dict[str, Any], ...] = ()
    service_findings: tuple[dict[str, Any], ...] = ()
    layer_findings: tuple[dict[str, Any], ...] = ()  # pod networks failing, host paths fine

    @property
    def check_findings(self) -> tuple[dict[str, Any], ...]:
        """The layer, DNS and Service findings (each a reason to exit 1)."""
        return (*self.layer_findings, *self.dns_findings, *self.service_findings)


def _findings(r: JsonReader, key: str) -> tuple[dict[str, Any], ...]:
    out = []
    for i, item in enumerate(r.items(key, limit=MAX_ITEMS, default=[])):
        f = JsonReader(item, r.child(key, i))
        f.string("kind"), f.string("summary", max_len=10_000)
        out.append(f.obj)
    return tuple(out)


def parse_rca(body: Any) -> Rca:
    """An ``/api/v1/rca`` answer → Rca (WireError if malformed)."""
    r = JsonReader(body, "/api/v1/rca")
    suspects = []
    for i, item in enumerate(r.items("suspects", limit=MAX_ITEMS, default=[])):
        s = JsonReader(item, r.child("suspects", i))
        suspects.append({**s.obj, "node": s.string("node"), "direction": s.string("direction")})
    paths = []
    for i, item in enumerate(r.items("failing_paths", limit=MAX_ITEMS, default=[])):
        p = JsonReader(item, r.child("failing_paths", i))
        p.string("source"), p.string("destination"), p.string("protocol")
        p.items("reasons", limit=MAX_ITEMS, default=[])
        paths.append(p.obj)
    return Rca(
        dns_findings=_findings(r, "dns_findings"),
        service_findings=_findings(r, "service_findings"),
        layer_findings=_findings(r, "layer_findings"),
        verdict=r.string("verdict"),
        summary=r.string("summary", max_len=100_000, allow_empty=True),
        suspects=tuple(suspects),
        failing_paths=tuple(paths),
        failing=r.integer("failing", default=len(paths)),
        computed_at=r.optional_number("computed_at"),
    )


# --------------------------------------------------------------------------- judgement


def _listed(names: Sequence[str]) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


def freshness(snap: Snapshot, since: float) -> list[str]:
    """What keeps the snapshot from being fresh data of every pair since ``since``; [] = fresh."""
    if not snap.members:
        return ["no members: no agent has reported"]
    problems = []
    down = [m.name for m in snap.members if not m.up]
    if down:
        problems.append(f"agents not up (stale or never reported): {_listed(down)}")
    old = [
        m.name
        for m in snap.members
        if m.up and (m.last_report_at is None or m.last_report_at < since)
    ]
    if old:
        problems.append(f"no report since the check started: {_listed(old)}")
    light_down = [f"{n} ({snap.light_down[n]})" for n in snap.names if n in snap.light_down]
    if light_down:
        problems.append(f"light tier down: {_listed(light_down)}")
    names = snap.names
    missing = [f"{a} -> {b}" for a in names for b in names if a != b and (a, b) not in snap.cells]
    if missing:
        problems.append(f"{len(missing)} pairs without light-tier data: {_listed(missing)}")
    return problems


def rca_due(snap: Snapshot) -> float:
    """The collector time the RCA must have been computed at to include every member's report."""
    return max((m.last_report_at or 0.0 for m in snap.members), default=0.0)


@dataclass(frozen=True, kw_only=True)
class Decision:
    code: int
    reasons: tuple[str, ...]


def decide(stale: Sequence[str], rca: Rca | None) -> Decision:
    """The exit code: 2 while anything is unknown, then 1 on suspects/failing paths, else 0."""
    if stale:
        return Decision(code=UNKNOWN, reasons=tuple(stale))
    if rca is None:
        return Decision(code=UNKNOWN, reasons=("no root-cause analysis since the data came in",))
    if rca.verdict in UNKNOWN_VERDICTS:
        why = rca.summary or "the collector has no analysis"
        unknown = f"RCA verdict {rca.verdict}: {why}"
        # No path verdict yet, but a DNS/Service/layer finding is a known fault already.
        found = tuple(str(f["summary"]) for f in rca.check_findings)
        if found:
            return Decision(code=UNHEALTHY, reasons=(*found, unknown))
        return Decision(code=UNKNOWN, reasons=(unknown,))
    reasons = []
    if rca.verdict in UNHEALTHY_VERDICTS:
        reasons.append(f"RCA verdict {rca.verdict}: {rca.summary}".rstrip(": "))
    if rca.suspects and rca.verdict not in UNHEALTHY_VERDICTS:
        reasons.append(f"suspects: {_listed([s['node'] for s in rca.suspects])}")
    if rca.failing:
        reasons.append(f"{rca.failing} failing paths")
    reasons += [str(f["summary"]) for f in rca.check_findings]
    if reasons:
        return Decision(code=UNHEALTHY, reasons=tuple(reasons))
    if rca.verdict != VERDICT_OK:
        return Decision(code=UNKNOWN, reasons=(f"unknown RCA verdict {rca.verdict!r}",))
    return Decision(code=HEALTHY, reasons=("verdict ok: no suspects, no failing paths",))


# --------------------------------------------------------------------------- output


def cell_text(cell: Cell | None) -> str:
    """``loss% RTTms`` of one pair: ``0.0% 0.21``; ``?`` without data."""
    if cell is None:
        return "?"
    loss, rtt = cell.value(cat.LIGHT_LOSS), cell.value(cat.LIGHT_RTT_MEDIAN)
    loss_text = "?" if loss is None else f"{100 * loss:.1f}%"
    rtt_text = "-" if rtt is None else f"{1000 * rtt:.2f}"
    return f"{loss_text} {rtt_text}"


def matrix_text(names: Sequence[str], cells: dict[tuple[str, str], Cell]) -> str:
    """Source rows x destination columns, each cell ``loss% RTT-median-ms``, '-' on the diagonal.

    Every column is as wide as its widest entry, so the table is only as
    wide as the names and values need.
    """
    corner = "from \\ to"
    rows = [[a, *("-" if a == b else cell_text(cells.get((a, b))) for b in names)] for a in names]
    header = [corner, *names]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))])

    legend = "light tier, latest window per pair: loss % and RTT median ms (? = no data)"
    return "\n".join([legend, line(header), *(line(r) for r in rows)])


def _path_text(p: dict[str, Any]) -> str:
    reasons = "; ".join(str(r) for r in p.get("reasons", []))
    return f"  {p['source']} -> {p['destination']} {p['protocol']}: {reasons}".rstrip(": ")


def report_text(
    url: str, snap: Snapshot | None, rca: Rca | None, decision: Decision, waited: float
) -> str:
    """The human output: the matrix, the verdict, suspects and failing paths, the exit code."""
    out = [f"collector: {url or '?'}"]
    if snap is not None:
        out[0] += f" (waited {waited:.1f}s for fresh data)"
        out += ["", matrix_text(snap.names, snap.cells)]
    if rca is not None:
        out += ["", f"verdict: {rca.verdict}" + (f" - {rca.summary}" if rca.summary else "")]
        for s in rca.suspects:
            out.append(
                f"  suspect {s['node']}: {s['direction']}, score {float(s.get('score', 0)):.2f}, "
                f"{s.get('failing_paths', '?')} failing paths with {s.get('peers', '?')} peers"
            )
        out += [f"  finding: {f['summary']}" for f in rca.check_findings]
        if rca.failing:
            out.append(f"failing paths: {rca.failing}")
            out += [_path_text(p) for p in rca.failing_paths[:LISTED_PATHS]]
            if rca.failing > LISTED_PATHS:
                out.append(f"  ... ({rca.failing - LISTED_PATHS} more)")
    out += [
        "",
        f"exit {decision.code} ({EXIT_NAMES[decision.code]}): " + "; ".join(decision.reasons),
    ]
    return "\n".join(out)


def report_json(
    url: str, snap: Snapshot | None, rca: Rca | None, decision: Decision, waited: float
) -> dict[str, Any]:
    """The machine output: one object with everything the text shows."""
    return {
        "collector": url,
        "exit_code": decision.code,
        "status": EXIT_NAMES[decision.code],
        "reasons": list(decision.reasons),
        "waited_seconds": round(waited, 3),
        "nodes": [] if snap is None else snap.names,
        "matrix": []
        if snap is None
        else [snap.cells[k].to_json() for k in sorted(snap.cells) if set(k) <= set(snap.names)],
        "verdict": None if rca is None else rca.verdict,
        "summary": None if rca is None else rca.summary,
        "suspects": [] if rca is None else list(rca.suspects),
        "failing": 0 if rca is None else rca.failing,
        "failing_paths": [] if rca is None else list(rca.failing_paths),
        "rca_computed_at": None if rca is None else rca.computed_at,
        "dns_findings": [] if rca is None else list(rca.dns_findings),
        "service_findings": [] if rca is None else list(rca.service_findings),
        "layer_findings": [] if rca is None else list(rca.layer_findings),
    }
