"""The racked lab (root): how well uplink and link faults land where they should.

One lab, 8 nodes on 2 racks (node-1..4 rack-1, node-5..8 rack-2), no HTTP
traffic, no eBPF probe, agents' default bandwidth budget (iperf3 rare), so
the agents' light tier (10 probes/s per ordered pair, 10 s windows) measures
loss. For each fault, three consecutive fresh 10 s windows of every ordered
pair are read from the collector's /api/v1/light (forward loss), grouped:

- ``--uplink rack-2 --loss 3%``: cross-rack paths vs same-rack paths;
- ``--uplink rack-2 --loss 3% --direction out``: rack-2 → rack-1 vs rack-1 → rack-2;
- ``--link node-2,node-6 --loss 5%``: that pair vs every other path;
- ``--uplink rack-2 --rate 100mbit``: iperf3 (own port) one cross-rack stream,
  one same-rack stream, and four cross-rack streams at once (rack-1 → rack-2,
  sharing the uplink);
- ``up`` time of the racked lab.

Asserts nothing; prints the table and writes bench-results/racks.json.

    .venv/bin/python tests/benchmarks/bench_racks.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence

from benchlib import Row, load_row, report

from lab.fabric import UplinkFault
from lab.lab import Lab
from lab.settings import LabSettings
from lab.shell import in_ns
from tests.e2e.labapi import Pair, light_windows_after, ordered_pairs
from tests.e2e.labup import QUIET, lab_up
from tests.helpers import wait_for

PREFIX = f"nmr{os.getpid() % 10000}"
SUBNET = f"10.{100 + os.getpid() % 20}.0.0/24"
WINDOWS = 3


def fresh_windows(lab: Lab, count: int) -> dict[Pair, list[float]]:
    """Forward loss of every ordered pair in ``count`` consecutive non-overlapping windows."""
    out: dict[Pair, list[float]] = {p: [] for p in ordered_pairs(lab)}
    since = time.time()
    for _ in range(count):
        got = wait_for(
            lambda after=since: light_windows_after(lab, after), 90, 1.0, "fresh light-tier windows"
        )
        for p in got:
            out[(p["source"], p["destination"])].append(
                float(p["values"]["netmesh_light_forward_loss_ratio"])
            )
        since = max(p["reported_at"] for p in got)
    return out


def summary(values: dict[Pair, list[float]], keep: Callable[[Pair], bool]) -> dict[str, float]:
    per_path = [statistics.fmean(v) for p, v in values.items() if keep(p) and v]
    return {
        "paths": len(per_path),
        "mean_pct": 100 * statistics.fmean(per_path),
        "min_pct": 100 * min(per_path),
        "max_pct": 100 * max(per_path),
    }


def fmt(s: dict[str, float]) -> str:
    return (
        f"{s['mean_pct']:.2f} % mean ({s['min_pct']:.2f}-{s['max_pct']:.2f}) "
        f"over {s['paths']:.0f} paths"
    )


def iperf3(lab: Lab, pairs: Sequence[Pair], base_port: int = 5311) -> list[float]:
    """Received bits/s of 3 s TCP tests, all pairs at once, each on a port of its own."""
    servers, clients = [], []
    try:
        for i, (_src, dst) in enumerate(pairs):
            d = lab.topo.node(dst)
            servers.append(
                subprocess.Popen(
                    in_ns(
                        d.netns, ["iperf3", "-s", "-1", "-B", d.address, "-p", str(base_port + i)]
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.5)  # servers listening (a failed client shows as an error below)
        for i, (src, dst) in enumerate(pairs):
            s, d = lab.topo.node(src), lab.topo.node(dst)
            cmd = ["iperf3", "-c", d.address, "-p", str(base_port + i), "-t", "3", "-J"]
            clients.append(subprocess.Popen(in_ns(s.netns, cmd), stdout=subprocess.PIPE, text=True))
        rates = []
        for c in clients:
            out, _ = c.communicate(timeout=30)
            rates.append(float(json.loads(out)["end"]["sum_received"]["bits_per_second"]))
        return rates
    finally:
        for p in [*servers, *clients]:
            p.kill()
            p.wait(timeout=10)


def main() -> None:
    started = time.monotonic()
    settings = LabSettings(
        nodes=8,
        racks=2,
        prefix=PREFIX,
        subnet=SUBNET,
        state_dir=tempfile.mkdtemp(prefix="nmr-bench-"),
        **QUIET,
        bandwidth_budget=0.01,
    )
    rows: list[Row] = []
    t0 = time.monotonic()
    with lab_up(settings) as lab:
        rack = {n.name: n.rack for n in lab.topo.nodes}

        def cross(p: Pair) -> bool:
            return rack[p[0]] != rack[p[1]]

        rows.append(Row("up, 8 nodes, 2 racks", f"{time.monotonic() - t0:.1f} s"))
        clean = fresh_windows(lab, WINDOWS)
        rows.append(Row("clean: all paths", fmt(summary(clean, lambda p: True))))

        lab.inject_uplink("rack-2", UplinkFault(loss=0.03))
        got = fresh_windows(lab, WINDOWS)
        rows.append(Row("uplink rack-2 3 % both: cross-rack", fmt(summary(got, cross))))
        rows.append(
            Row("uplink rack-2 3 % both: same rack", fmt(summary(got, lambda p: not cross(p))))
        )
        lab.clear_uplink("rack-2")

        lab.inject_uplink("rack-2", UplinkFault(loss=0.03, direction="out"))
        got = fresh_windows(lab, WINDOWS)
        out_of = summary(got, lambda p: rack[p[0]] == 2 and rack[p[1]] == 1)
        into = summary(got, lambda p: rack[p[0]] == 1 and rack[p[1]] == 2)
        rows.append(Row("uplink rack-2 3 % out: rack-2 -> rack-1", fmt(out_of)))
        rows.append(Row("uplink rack-2 3 % out: rack-1 -> rack-2", fmt(into)))
        lab.clear_uplink("rack-2")

        lab.inject_link("node-2,node-6", 0.05)
        got = fresh_windows(lab, WINDOWS)
        pair = {("node-2", "node-6"), ("node-6", "node-2")}
        rows.append(Row("link node-2<->node-6 5 %: the pair", fmt(summary(got, pair.__contains__))))
        rows.append(
            Row("link node-2<->node-6 5 %: other paths", fmt(summary(got, lambda p: p not in pair)))
        )
        lab.clear_link("node-2,node-6")

        lab.inject_uplink("rack-2", UplinkFault(rate_bps=100_000_000))
        (one,) = iperf3(lab, [("node-1", "node-5")])
        (same,) = iperf3(lab, [("node-6", "node-5")])
        four = iperf3(
            lab,
            [
                ("node-1", "node-5"),
                ("node-2", "node-6"),
                ("node-3", "node-7"),
                ("node-4", "node-8"),
            ],
        )
        lab.clear_uplink("rack-2")
        rows.append(
            Row("uplink rack-2 100 Mbit/s: one cross-rack TCP stream", f"{one / 1e6:.1f} Mbit/s")
        )
        rows.append(
            Row("uplink rack-2 100 Mbit/s: one same-rack TCP stream", f"{same / 1e6:.1f} Mbit/s")
        )
        rows.append(
            Row(
                "uplink rack-2 100 Mbit/s: 4 cross-rack streams at once",
                f"{sum(four) / 1e6:.1f} Mbit/s in total ("
                + ", ".join(f"{r / 1e6:.0f}" for r in four)
                + ")",
            )
        )
        rows.append(load_row())
    report("racks", rows, params={"nodes": 8, "racks": 2, "windows": WINDOWS}, started=started)


if __name__ == "__main__":
    main()
