"""Shared by the benchmarks: machine facts, the table they print, the JSON they write, /proc.

Every benchmark ends with ``report(name, rows, ...)``: it prints a table
(what, goal, measured, met) and writes ``bench-results/<name>.json`` with the
same rows, the machine and the run's parameters. Benchmarks report; they
assert nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import ipaddress
import json
import multiprocessing
import os
import pathlib
import platform
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from netmesh.lightreport import RTT_BUCKETS  # noqa: E402
from netmesh.wire import (  # noqa: E402
    AgentHealth,
    LightPath,
    LightStatus,
    ProbeStatus,
    Report,
    RetransmitFlow,
    TestCount,
    TestResult,
)

RESULTS_DIR = ROOT / "bench-results"
MiB = 2**20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    what: str
    measured: str
    goal: str = ""
    met: bool | None = None  # None: no goal, reported only
    value: float | None = None  # the number behind ``measured`` (JSON)
    unit: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def quick_default() -> bool:
    """``--quick`` by default when BENCH_QUICK is set (``make bench BENCH_QUICK=1``)."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def arguments(doc: str | None, quick: str | None = None) -> argparse.ArgumentParser:
    """A benchmark's parser: described by its docstring's first line, with ``--quick``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=quick_default(), help=quick)
    return parser


def skipped_without_root(name: str) -> bool:
    """True (and says so) when not root: the lab benchmarks need network namespaces."""
    if os.geteuid() == 0:
        return False
    print(f"{name}: needs root (network namespaces); skipped", file=sys.stderr)
    return True


def load_average() -> str:
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def hogs(n: int) -> Iterator[None]:
    """``n`` busy-loop processes for the block (CPU contention beside a lab); always killed."""
    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(n)]
    try:
        for p in procs:
            p.start()
        yield
    finally:
        for p in procs:
            if p.pid is not None:
                p.kill()
                p.join(5)


def load_row() -> Row:
    return Row("load average at the end", load_average())


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", pathlib.Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else ""
    except OSError:
        pass
    mem = 0
    try:
        m = re.search(r"^MemTotal:\s*(\d+)", pathlib.Path("/proc/meminfo").read_text(), re.M)
        mem = int(m.group(1)) * 1024 if m else 0
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": cpu,
        "memory_bytes": mem,
        "python": platform.python_version(),
    }


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[k]


def report(
    name: str,
    rows: Sequence[Row],
    *,
    params: dict[str, Any] | None = None,
    started: float | None = None,
) -> pathlib.Path:
    """Print the table and write bench-results/<name>.json; return its path."""
    heads = ("what", "measured", "goal", "met")
    cells = [
        (r.what, r.measured, r.goal or "-", "-" if r.met is None else ("yes" if r.met else "NO"))
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(f"== {name} ==")
    print(line.format(*heads))
    print(line.format(*("-" * w for w in widths)))
    for c in cells:
        print(line.format(*c))
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    doc = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds": None if started is None else round(time.monotonic() - started, 1),
        "machine": machine(),
        "params": params or {},
        "rows": [asdict(r) for r in rows],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"(written to {path.relative_to(ROOT)})")
    return path


# --------------------------------------------------------------------------- /proc


def rss_bytes(pid: int) -> int:
    try:
        text = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmRSS:\s*(\d+)", text, re.M)
    return int(m.group(1)) * 1024 if m else 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included), in seconds."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu_seconds(pid: int) -> float:
    """CPU of a process's waited-for children (cutime + cstime), e.g. finished iperf3 clients."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


# --------------------------------------------------------------------------- reports


def synthetic_report(
    i: int,
    n: int,
    peers: int,
    *,
    flows_per_agent: int = 3,
    generated_at: float = 1_700_000_100.0,
    base: str = "10.0.0.0",
    light_peers: int = 0,
) -> Report:
    """Agent ``i`` of ``n``: ``peers`` ring neighbours tested with TCP and UDP, a few
    retransmission pairs, probe up — what a real agent in k-peer mode reports; with
    ``light_peers``, the light tier's window to that many ring successors too."""
    name = f"node-{i:04d}"
    first = ipaddress.ip_address(base) + 1
    address = str(first + i)
    results = []
    tests = []
    for k in range(1, peers + 1):
        dst = f"node-{(i + k) % n:04d}"
        for proto in ("tcp", "udp"):
            tcp = proto == "tcp"
            results.append(
                TestResult(
                    source=name,
                    destination=dst,
                    protocol=proto,
                    result="ok",
                    started_at=generated_at - 60 + k,
                    duration_seconds=5.01 + k / 1000,
                    sent_bits_per_second=9.4e9 + k * 1013.7,
                    received_bits_per_second=9.3e9 + k * 997.3,
                    retransmits=k if tcp else None,
                    rtt_min_seconds=1e-5 + k * 1e-7 if tcp else None,
                    rtt_mean_seconds=2.5e-5 + k * 1e-7 if tcp else None,
                    rtt_max_seconds=9e-5 + k * 1e-7 if tcp else None,
                    jitter_seconds=None if tcp else 1.2e-5 + k * 1e-8,
                    lost_packets=None if tcp else 3,
                    packets=None if tcp else 8000 + k,
                    loss_ratio=None if tcp else 3 / (8000 + k),
                )
            )
            tests.append(TestCount(destination=dst, protocol=proto, result="ok", count=100 + k))
            if k == 1:
                tests.append(TestCount(destination=dst, protocol=proto, result="busy", count=1))
    flows = tuple(
        RetransmitFlow(
            local=address,
            remote=str(first + (i + k) % n),
            port=5201,
            count=7 * k + i % 5,
        )
        for k in range(1, min(flows_per_agent, peers) + 1)
    )
    return Report(
        node=name,
        address=address,
        iperf3_port=5201,
        http_port=9101,
        generated_at=generated_at,
        started_at=1_699_000_000.0,
        results=tuple(results),
        tests=tuple(tests),
        agent=AgentHealth(
            iperf3_server_up=1,
            iperf3_server_restarts=i % 3,
            scheduler_lag_seconds=0.0012 + i * 1e-7,
            skipped_tests=i % 2,
            members=n,
            epoch=1,
        ),
        probe=ProbeStatus(mode="tracepoint", up=1, map_entries=flows_per_agent, map_capacity=8192),
        retransmits=flows,
        light=synthetic_light(i, n, light_peers) if light_peers else None,
    )


def light_histogram(rtt: float, count: int) -> dict[str, Any]:
    """The cumulative RTT histogram fields of a path whose ``count`` RTTs were all ``rtt``
    (none with ``BENCH_NO_HISTOGRAM=1``: the light tier as it was before the histogram)."""
    if os.environ.get("BENCH_NO_HISTOGRAM"):
        return {}
    return {
        "rtt_bucket_counts": tuple(count if rtt <= b else 0 for b in RTT_BUCKETS),
        "rtt_count": count,
        "rtt_sum_seconds": rtt * count,
    }


def synthetic_light(i: int, n: int, peers: int) -> LightStatus:
    """Agent ``i``'s light tier: a 10 s window to each of ``peers`` ring successors
    (the default rate: 100 probes/s over 20 peers, ~50 per window each). A healthy
    fleet: ~1 % of the paths lost one probe, spread so that no node stands out (all
    paths into one node losing would make the RCA name it, and a fleet with hundreds
    of such nodes keeps the RCA's mining busy: a different benchmark)."""
    paths = []
    for k in range(1, peers + 1):
        sent = 50
        lost = (i * 31 + k * 7) % 97 == 0
        hist = light_histogram(60e-6 + k * 3e-6, 50 * 3600)
        paths.append(
            LightPath(
                destination=f"node-{(i + k) % n:04d}",
                window_seconds=10.0,
                sent=sent,
                received=sent - lost,
                loss_ratio=lost / sent,
                forward_sent=sent - 1,
                forward_received=sent - 1 - lost,
                forward_loss_ratio=lost / (sent - 1),
                return_sent=sent - 1 - lost,
                return_received=sent - 1 - lost,
                return_loss_ratio=0.0,
                rtt_min_seconds=5.1e-5 + k * 1e-7,
                rtt_median_seconds=7.3e-5 + k * 1e-7,
                rtt_p99_seconds=2.1e-4 + k * 1e-7,
                rtt_mean_seconds=8.0e-5 + k * 1e-7,
                jitter_seconds=1.1e-5 + k * 1e-8,
                mtu_size=1500,
                mtu_sent=3,
                mtu_received=3,
                **hist,
            )
        )
    return LightStatus(
        up=1, port=5202, peers=peers, probes_sent=360_000, echoes_received=359_000,
        paths=tuple(paths),
    )  # fmt: skip
