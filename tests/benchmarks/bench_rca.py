"""Verdict accuracy of the collector's RCA over randomised lab runs, and the time to verdict.

Run as root from the repository root::

    .venv/bin/python tests/benchmarks/bench_rca.py [RUNS]      (default 6)

One 4-node lab; each run waits for a clean verdict, injects 10-30 % receiver-side loss
into a random node, measures the time from injection to the first verdict that names a
suspect (right = that node is named first), clears it and measures the time until no
suspect remains. Prints a table and writes bench-results/rca.json; asserts nothing
about time.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lab.faults import Fault  # noqa: E402
from lab.settings import LabSettings  # noqa: E402
from tests.e2e.labup import lab_up  # noqa: E402
from tests.e2e.rca_lab import (  # noqa: E402
    rca_deadline,
    suspects,
    wait_clean,
    wait_named,
    wait_verdict,
)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    rng = random.Random()
    with tempfile.TemporaryDirectory() as state_dir:
        settings = LabSettings(
            nodes=4,
            prefix=f"nmb{os.getpid() % 10000}",
            subnet=f"10.{170 + os.getpid() % 10}.0.0/24",
            state_dir=state_dir,
        )
        rows = []
        with lab_up(settings, progress=lambda m: print(m, flush=True)) as lab:
            names = [n.name for n in lab.topo.nodes]
            sweep = lab.settings.sweep_seconds()
            for i in range(1, runs + 1):
                wait_clean(lab, rca_deadline(lab, 3))
                node, loss = rng.choice(names), rng.uniform(0.10, 0.30)
                lab.inject(node, Fault(loss=loss))
                try:
                    body, named_after = wait_named(lab, rca_deadline(lab, 3))
                    first = suspects(body)
                finally:
                    lab.clear(node)
                cleared = time.monotonic()
                wait_verdict(
                    lab,
                    lambda b: b["suspects"] == [],
                    rca_deadline(lab, 3),
                    "no suspect after clear",
                )
                row = {
                    "run": i,
                    "node": node,
                    "loss": round(loss, 3),
                    "named": first,
                    "right": bool(first) and first[0] == node,
                    "seconds_to_verdict": round(named_after, 1),
                    "seconds_to_clear": round(time.monotonic() - cleared, 1),
                }
                rows.append(row)
                print(
                    f"run {i}: {loss:.0%} loss into {node}: named {first} after "
                    f"{named_after:.1f}s; clear after {row['seconds_to_clear']}s",
                    flush=True,
                )
    right = sum(r["right"] for r in rows)
    times = [r["seconds_to_verdict"] for r in rows]
    clears = [r["seconds_to_clear"] for r in rows]
    print(f"\nRCA accuracy on the lab (4 nodes, sweep {sweep:.0f}s, 10-30 % loss into one node)")
    print(f"{'runs':>5} {'right':>6} {'verdict s (median/max)':>24} {'clear s (median/max)':>22}")
    print(
        f"{len(rows):>5} {right:>6} {statistics.median(times):>14.1f} / {max(times):<7.1f}"
        f" {statistics.median(clears):>12.1f} / {max(clears):<7.1f}"
    )
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "rca.json").write_text(
        json.dumps({"sweep_seconds": sweep, "runs": rows, "right": right}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
