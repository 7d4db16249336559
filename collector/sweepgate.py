"""``netmesh-check --bandwidth``'s judgement of an on-demand sweep, no I/O.

The check (collector/check.py) asks the collector for a sweep of the whole
mesh (``POST /api/v1/sweeps {"mesh": true}``), polls it, and hands its last
answer (collector/sweeps.py ``SweepBook.view``) here:

- ``parse_sweep_view`` checks the fields the check reads (``WireError`` names one);
- ``sweep_decision``: 0 every test ok; 1 a test failed (busy, refused, timeout,
  ...: the path is listed); 2 the sweep expired or did not finish in time;
- ``combine``: the check's exit code is the worst of the light-tier/RCA
  decision and this one (2 over 1 over 0), reasons of both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.gate import HEALTHY, UNHEALTHY, UNKNOWN, Decision
from netmesh.jsonreader import JsonReader, WireError

FINISHED = ("done", "expired")
LISTED = 5


@dataclass(frozen=True, kw_only=True)
class SweepView:
    id: str
    state: str
    tests: int
    completed: int
    failed: int
    reason: str
    results: tuple[dict[str, Any], ...]
    raw: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def progress(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"bandwidth sweep {self.id}: {self.state}, {self.completed}/{self.tests} tests{failed}"
        )


def parse_sweep_view(body: Any) -> SweepView:
    r = JsonReader(body, "sweep")
    results = r.items("results", limit=1_000_000, default=[])
    for i, item in enumerate(results):
        JsonReader(item, r.child("results", i)).string("source")
    state = r.string("state", max_len=16)
    if state not in ("pending", "running", *FINISHED):
        raise WireError(f"sweep.state: unknown state {state!r}")
    return SweepView(
        id=r.string("id"),
        state=state,
        tests=r.integer("tests"),
        completed=r.integer("completed"),
        failed=r.integer("failed"),
        reason=r.string("reason", max_len=4096, allow_empty=True),
        results=tuple(results),
        raw=dict(body),
    )


def _path(res: dict[str, Any]) -> str:
    return f"{res.get('source')}->{res.get('destination')} {res.get('protocol')}"


def sweep_decision(view: SweepView | None, timed_out: str = "") -> Decision:
    if view is None or not view.finished:
        why = timed_out or "the bandwidth sweep did not finish"
        state = "" if view is None else f" ({view.progress()})"
        return Decision(code=UNKNOWN, reasons=(why + state,))
    if view.state == "expired":
        return Decision(code=UNKNOWN, reasons=(f"bandwidth sweep expired: {view.reason}",))
    bad = [r for r in view.results if r.get("result") not in ("ok", None)]
    if bad:
        listed = ", ".join(f"{_path(r)} {r.get('result')}" for r in bad[:LISTED])
        more = f" and {len(bad) - LISTED} more" if len(bad) > LISTED else ""
        return Decision(
            code=UNHEALTHY,
            reasons=(f"bandwidth: {len(bad)} of {view.tests} tests failed: {listed}{more}",),
        )
    return Decision(code=HEALTHY, reasons=(f"bandwidth: all {view.tests} tests ok",))


def combine(a: Decision, b: Decision) -> Decision:
    """The worse of two decisions (2 over 1 over 0), with the reasons that make it so."""
    code = max(a.code, b.code)
    reasons = [r for d in (a, b) if d.code == code for r in d.reasons]
    return Decision(code=code, reasons=tuple(reasons))


def _rate(bps: Any) -> str:
    return "-" if not isinstance(bps, int | float) else f"{bps / 1e6:.0f} Mbit/s"


def sweep_text(view: SweepView | None) -> str:
    if view is None:
        return "bandwidth: no sweep"
    lines = [view.progress() + (f" - {view.reason}" if view.reason else "")]
    for r in view.results:
        extra = f" loss {r['loss_ratio'] * 100:.2f} %" if r.get("loss_ratio") is not None else ""
        rate = _rate(r.get("received_bits_per_second"))
        lines.append(f"  {_path(r)}: {r.get('result') or 'no result'} {rate}{extra}")
    return "\n".join(lines)
