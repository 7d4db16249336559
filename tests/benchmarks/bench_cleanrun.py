"""A clean racked lab left alone (root): does the RCA ever name anything?

Six nodes on three racks, the lab's default settings otherwise (HTTP traffic,
eBPF probe, DNS, bandwidth sweeps back to back); no fault is injected. After
the first full sweep, /api/v1/rca is polled every ``--poll`` seconds for
``--minutes`` minutes; every poll whose findings (or suspects) are not empty
is counted, and each distinct finding is listed with the first time it was
seen. Goal (issue 15): zero findings over 30 minutes.

    PYTHONPATH=$PWD python tests/benchmarks/bench_cleanrun.py [--minutes 30] [--hogs N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

from benchlib import Row, hogs, load_average, load_row, quick_default, report

from lab.settings import LabSettings
from tests.e2e.labup import lab_up
from tests.e2e.rca_lab import rca_deadline, verdict, wait_clean

PREFIX = f"nmgc{os.getpid() % 1000}"
SUBNET = f"10.{60 + os.getpid() % 5}.1.0/24"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0 if quick_default() else 30.0)
    parser.add_argument("--poll", type=float, default=3.0)
    parser.add_argument("--nodes", type=int, default=6)
    parser.add_argument("--racks", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=0, help="busy-loop processes beside the lab")
    args = parser.parse_args()
    started = time.monotonic()
    settings = LabSettings(
        nodes=args.nodes,
        racks=args.racks,
        prefix=PREFIX,
        subnet=SUBNET,
        state_dir=tempfile.mkdtemp(prefix="nmg-clean-"),
    )
    polls = bad = errors = 0
    seen: dict[str, float] = {}
    load_start = load_average()
    with lab_up(settings) as lab, hogs(args.hogs):
        wait_clean(lab, rca_deadline(lab, 3))
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        while time.monotonic() < end:
            try:
                body: dict[str, Any] = verdict(lab)
            except OSError:
                errors += 1
                time.sleep(args.poll)
                continue
            polls += 1
            named = [f"{f['kind']} {f['subject']}" for f in body.get("findings", [])]
            named += [f"suspect {s['node']}" for s in body.get("suspects", [])]
            if named:
                bad += 1
                for n in named:
                    if n not in seen:
                        seen[n] = time.monotonic() - t0
                        print(f"{seen[n]:7.0f} s: {n}: {body.get('summary')}", flush=True)
            time.sleep(args.poll)
        minutes = (time.monotonic() - t0) / 60
    rows = [
        Row(
            f"clean {args.nodes} nodes / {args.racks} racks, {minutes:.1f} min, "
            f"{polls} polls every {args.poll:.0f} s, {args.hogs} busy loops beside it",
            f"{bad} polls with a finding ({len(seen)} distinct)",
            goal="0 findings",
            met=bad == 0,
            value=bad,
        ),
        Row(
            "distinct findings (first seen, s)",
            ", ".join(f"{k} @{v:.0f}" for k, v in seen.items()) or "-",
        ),
        Row("poll errors", str(errors)),
        Row("load average at the start", load_start),
        load_row(),
    ]
    report("cleanrun", rows, params=vars(args), started=started)


if __name__ == "__main__":
    main()
