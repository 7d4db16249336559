"""Per-event cost of a BPF program from bpf_stats, with an empty program as the floor.

``run_time_ns`` counts the time from the program's entry to its exit as the
kernel's clock sees it, including bpf_stats' own clock reads and whatever the
(virtual) CPU loses meanwhile. An empty program attached to the same
tracepoint during the same load is the floor of that measurement here: the
program's own cost is the difference. Used by bench_probe.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def prog_ids_of(fds: list[int]) -> list[int]:
    ids = []
    for fd in fds:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            m = re.search(r"^prog_id:\s*(\d+)", f.read(), re.M)
            if m:
                ids.append(int(m.group(1)))
    return ids


def bpf_stats(prog_id: int) -> tuple[int, int]:
    out = subprocess.run(
        ["bpftool", "prog", "show", "id", str(prog_id), "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    info = json.loads(out)
    return int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0))


class EmptyProgram:
    """``return 0`` on a tracepoint: the measurement's floor."""

    def __init__(self, tracepoint: str) -> None:
        from bcc import BPF  # noqa: PLC0415 - root-only benchmark

        self.bpf: Any = BPF(text="int netmesh_empty(void *ctx) { return 0; }")
        self.bpf.attach_tracepoint(tp=tracepoint.encode(), fn_name=b"netmesh_empty")
        fn = self.bpf.load_func(b"netmesh_empty", BPF.TRACEPOINT)
        [self.prog_id] = prog_ids_of([int(fn.fd)])

    def close(self) -> None:
        self.bpf.cleanup()


@dataclass(frozen=True)
class Cost:
    ns: float  # per event, as bpf_stats says
    floor_ns: float  # the empty program's, same events
    runs: int
    seconds: float

    @property
    def own_ns(self) -> float:
        return max(self.ns - self.floor_ns, 0.0)

    def text(self) -> str:
        return (
            f"{self.ns:.0f} ns per event ({self.own_ns:.0f} ns above an empty program's "
            f"{self.floor_ns:.0f} ns on the same events); {self.runs} runs "
            f"({self.runs / self.seconds:,.0f}/s)"
        )


def measure(prog_id: int, floor: EmptyProgram, load: Callable[[], float]) -> Cost:
    """Run ``load`` (returns its duration in seconds) and read both programs' stats around it."""
    t0, c0 = bpf_stats(prog_id)
    f0, g0 = bpf_stats(floor.prog_id)
    seconds = load()
    t1, c1 = bpf_stats(prog_id)
    f1, g1 = bpf_stats(floor.prog_id)
    runs = c1 - c0
    return Cost(
        ns=(t1 - t0) / max(runs, 1),
        floor_ns=(f1 - f0) / max(g1 - g0, 1),
        runs=runs,
        seconds=max(seconds, 1e-9),
    )
