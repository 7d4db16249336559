"""Issue 15's RCA grid (root): time from injection to the CORRECT finding, per fault class.

Three kinds of lab, one per ``--lab`` (run them one after the other, or in
parallel with different ``--slot`` values when time is short):

- ``flat``: 6 nodes on one bridge -- node loss 0.5/1/2/5 % (node-3), node
  egress at 10/30/50 % of its peers (node-3), two faults of different kinds
  at once (node-2 egress at 30 %, node-5 5 % loss);
- ``racks``: 8 nodes on 4 racks (two each; with 2 racks an uplink and the path between
  the racks are one and the same) -- one bad link (node-2 <-> node-6, 5 %
  loss), rack-2's uplink lossy (3 %), rack-2's uplink at 100 Mbit/s;
- ``prestart``: a fresh 6-node lab per run with node-3's egress at 30 %
  before the agents start (``Lab.up(faults=...)``); timed from the lab being
  up (every agent a member), the build time printed beside it.

The lab's default settings otherwise (HTTP traffic, eBPF probe, DNS, sweeps
back to back). Classes run round-robin (every class once, then again) until
``--runs`` rounds are done or ``--until`` (a UTC HH:MM) has passed. Each run:
inject, poll /api/v1/rca every 0.5 s until the correct finding (kind and
subject) appears -- or 3 sweeps pass -- and note everything else named
meanwhile; then ``clear`` and time until nothing is named (the "after clear"
row), then wait for the verdict ok before the next run. Asserts nothing;
prints the table, writes bench-results/rcagrid-<lab>.json.

    PYTHONPATH=$PWD python tests/benchmarks/bench_rcagrid.py [--lab flat|racks|prestart|all]
        [--runs 3] [--quick] [--until HH:MM] [--slot 0]

``all`` (the default) is ~45 minutes on a loaded 2-core machine; ``--quick`` one round.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchlib import Row, arguments, load_row, report

from lab.fabric import UplinkFault
from lab.faults import Fault
from lab.lab import Lab, LabError
from lab.settings import LabSettings
from tests.e2e.labup import lab_up
from tests.e2e.rca_lab import Named, named, verdict
from tests.helpers import watch

GBIT = 1_000_000_000


@dataclass(frozen=True)
class FaultClass:
    name: str
    inject: Callable[[Lab], None]
    want: frozenset[Named]
    rate: bool  # goal: one sweep (rate) or 30 s (loss)


@dataclass
class Result:
    took: list[float] = field(default_factory=list)  # seconds to the correct finding
    missed: int = 0
    others: set[str] = field(default_factory=set)  # this run's (reset per run)
    per_run: list[list[str]] = field(default_factory=list)  # every run's others
    cleared: list[float] = field(default_factory=list)  # seconds from clear to nothing named
    extra: list[str] = field(default_factory=list)


def void(_value: object) -> None:
    return None


def node_fault(node: str, fault: Fault) -> Callable[[Lab], None]:
    def inject(lab: Lab) -> None:
        lab.inject(node, fault)

    return inject


def classes(lab_kind: str) -> list[FaultClass]:
    if lab_kind == "flat":
        out = [
            FaultClass(
                f"node loss {p:g} %",
                node_fault("node-3", Fault(loss=p / 100)),
                frozenset({("node", "node-3")}),
                False,
            )
            for p in (0.5, 1, 2, 5)
        ]
        out += [
            FaultClass(
                f"node egress at {p} %",
                node_fault("node-3", Fault(rate_bps=GBIT * p // 100)),
                frozenset({("node", "node-3")}),
                True,
            )
            for p in (10, 30, 50)
        ]

        def two(lab: Lab) -> None:
            lab.inject("node-2", Fault(rate_bps=GBIT * 30 // 100))
            lab.inject("node-5", Fault(loss=0.05))

        out.append(
            FaultClass(
                "two faults: node-2 egress 30 % + node-5 loss 5 %",
                two,
                frozenset({("node", "node-2"), ("node", "node-5")}),
                True,
            )
        )
        return out
    if lab_kind == "racks":
        return [
            FaultClass(
                "one bad link node-2<->node-6, 5 % loss",
                lambda lab: void(lab.inject_link("node-2,node-6", 0.05)),
                frozenset({("link", "node-2|node-6")}),
                False,
            ),
            FaultClass(
                "rack-2 uplink 3 % loss",
                lambda lab: void(lab.inject_uplink("rack-2", UplinkFault(loss=0.03))),
                frozenset({("rack", "rack-2")}),
                False,
            ),
            FaultClass(
                "rack-2 uplink at 100 Mbit/s",
                lambda lab: void(lab.inject_uplink("rack-2", UplinkFault(rate_bps=100_000_000))),
                frozenset({("rack", "rack-2")}),
                True,
            ),
        ]
    return [
        FaultClass(
            "node-3 egress 30 % before the agents start",
            lambda lab: None,
            frozenset({("node", "node-3")}),
            True,
        )
    ]


def answer(lab: Lab) -> dict[str, Any] | None:
    """The verdict; None when the collector did not answer."""
    try:
        return verdict(lab)
    except OSError:
        return None


def poll(lab: Lab, want: frozenset[Named], timeout: float, res: Result) -> float | None:
    """Seconds until ``want`` is named (None: not within ``timeout``), recorded in ``res`` with
    what else was named meanwhile (``res.others``: this run's)."""
    took, bodies = watch(
        lambda: answer(lab), lambda b: b is not None and want <= named(b), timeout, 0.5
    )
    res.others = {f"{k} {s}" for b in bodies if b is not None for k, s in named(b) - want}
    res.per_run.append(sorted(res.others))
    if took is None:
        res.missed += 1
    else:
        res.took.append(took)
    return took


def until_nothing(lab: Lab, timeout: float) -> float | None:
    return watch(lambda: answer(lab), lambda b: b is not None and not named(b), timeout, 0.5)[0]


def until_ok(lab: Lab, timeout: float) -> None:
    watch(lambda: answer(lab), lambda b: b is not None and b["verdict"] == "ok", timeout, 0.5)


def settings(kind: str, slot: int, state_dir: str) -> LabSettings:
    nodes, racks = (8, 4) if kind == "racks" else (6, 0)
    return LabSettings(
        nodes=nodes,
        racks=racks,
        prefix=f"nmg{kind[0]}{os.getpid() % 1000}",
        subnet=f"10.{66 + slot}.{os.getpid() % 200}.0/24",
        state_dir=state_dir,
    )


def past(until: str | None) -> bool:
    if not until:
        return False
    now = datetime.datetime.now(datetime.UTC).strftime("%H:%M")
    return now >= until


def run_prestart(s: LabSettings, fc: FaultClass, res: Result) -> None:
    sweep = s.sweep_seconds()
    t0 = time.monotonic()
    with lab_up(s, faults={"node-3": Fault(rate_bps=GBIT * 30 // 100)}) as lab:
        res.extra.append(f"{time.monotonic() - t0:.0f}")
        took = poll(lab, fc.want, 3 * sweep + 4, res)
        print(f"{fc.name}: {took} (up took {res.extra[-1]} s)", flush=True)


def run_one(lab: Lab, fc: FaultClass, res: Result) -> None:
    sweep = lab.settings.sweep_seconds()
    fc.inject(lab)
    took = poll(lab, fc.want, 3 * sweep + 4, res)
    lab.clear()
    gone = until_nothing(lab, 3 * sweep + 4)
    if gone is not None:
        res.cleared.append(gone)
    print(
        f"{fc.name}: named {took}, nothing named {gone} s after clear; others {sorted(res.others)}",
        flush=True,
    )
    until_ok(lab, 3 * sweep + 4)


def rows(kind: str, sweep: float, grid: dict[str, tuple[FaultClass, Result]]) -> list[Row]:
    out = []
    cleared: list[float] = []
    clear_missed = 0
    for fc, res in grid.values():
        goal_s = sweep + 4 if fc.rate else 30.0
        goal = f"<= 1 sweep ({sweep:.0f} s)" if fc.rate else "<= 30 s (15 s w/ light tier)"
        n = len(res.took) + res.missed
        if res.took:
            measured = f"median {statistics.median(res.took):.1f} s, worst {max(res.took):.1f} s"
        else:
            measured = "never named"
        measured += f" ({len(res.took)}/{n} runs named)"
        counts: dict[str, int] = {}
        for others in res.per_run:
            for o in others:
                counts[o] = counts.get(o, 0) + 1
        measured += "; also named: " + (
            ", ".join(f"{o} ({k}/{n})" for o, k in sorted(counts.items())) or "nothing"
        )
        if res.extra:
            measured += f"; lab up took {', '.join(res.extra)} s"
        met = bool(res.took) and not res.missed and max(res.took) <= goal_s and not counts
        out.append(
            Row(
                fc.name,
                measured,
                goal=goal,
                met=met,
                value=max(res.took) if res.took else None,
                unit="s",
                extra={
                    "took": res.took,
                    "missed": res.missed,
                    "others": res.per_run,
                    "cleared": res.cleared,
                },
            )
        )
        cleared += res.cleared
        clear_missed += n - len(res.cleared) if kind != "prestart" else 0
    if kind != "prestart" and (cleared or clear_missed):
        out.append(
            Row(
                "after clear: until nothing named",
                (
                    f"median {statistics.median(cleared):.1f} s, worst {max(cleared):.1f} s"
                    if cleared
                    else "-"
                )
                + f" ({len(cleared)} clears, {clear_missed} still named after 3 sweeps)",
                goal=f"<= 2 sweeps ({2 * sweep:.0f} s)",
                met=not clear_missed and bool(cleared) and max(cleared) <= 2 * sweep,
                value=max(cleared) if cleared else None,
                unit="s",
            )
        )
    out.append(load_row())
    return out


def run_lab(kind: str, args: argparse.Namespace) -> None:
    started = time.monotonic()
    s = settings(kind, args.slot, tempfile.mkdtemp(prefix="nmg-grid-"))
    grid = {fc.name: (fc, Result()) for fc in classes(kind)}
    lab = Lab(s)
    try:
        if kind != "prestart":
            lab.up()
            until_ok(lab, 3 * s.sweep_seconds())
        for _round in range(args.runs):
            for fc, res in grid.values():
                if past(args.until):
                    break
                try:
                    if kind == "prestart":
                        run_prestart(s, fc, res)
                    else:
                        run_one(lab, fc, res)
                except LabError as exc:
                    print(f"{fc.name}: {exc}", flush=True)
                    res.missed += 1
    finally:
        lab.down()
    report(
        f"rcagrid-{kind}",
        rows(kind, s.sweep_seconds(), grid),
        params={**vars(args), "lab": kind, "nodes": s.nodes, "racks": s.racks},
        started=started,
    )


def main() -> None:
    parser = arguments(__doc__, quick="1 run")
    parser.add_argument("--lab", choices=("flat", "racks", "prestart", "all"), default="all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--until", help="start no run after this UTC time (HH:MM)")
    parser.add_argument("--slot", type=int, default=0, help="subnet second octet 66+slot")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    for kind in ("flat", "racks", "prestart") if args.lab == "all" else (args.lab,):
        run_lab(kind, args)


if __name__ == "__main__":
    main()
