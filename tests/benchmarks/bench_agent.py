"""The agent's own cost (root for the probe): RSS and CPU idle, and while testing.

Idle: one real agent (``python -m agent``, probe auto) alone on 127.0.0.1 —
no peers, so no tests: what the agent costs between tests (reports, drains,
liveness checks). Testing: two agents on 127.0.0.1 that test each other back
to back (1 s tests, 1 s guard: a test in every other second, far busier than
production's default), probe on. CPU is the agent process itself; the iperf3
processes it runs (server and clients) are listed apart.

Prints the table and writes bench-results/agent.json; asserts nothing.

    .venv/bin/python tests/benchmarks/bench_agent.py [--seconds 15] [--quick]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

from benchlib import MiB, Row, cpu_seconds, quick_default, report, rss_bytes

from tests.agents import AgentProcess
from tests.helpers import wait_for

ENV = {"NETMESH_PROBE_MODE": "auto", "NETMESH_LOG_LEVEL": "info", "NETMESH_PROBE_INTERVAL": "2"}


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def probe_known(agent: AgentProcess) -> bool:
    try:
        return "netmesh_agent_probe_up{" in agent.metrics()
    except OSError:
        return False


def measure(agent: AgentProcess, seconds: float) -> dict[str, float]:
    """Agent CPU (its own, then its descendants') over ``seconds``; RSS peak, sampled."""
    assert agent.proc is not None
    pid = agent.proc.pid
    seen: dict[int, float] = {}
    own0 = cpu_seconds(pid)
    rss_peak = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        rss_peak = max(rss_peak, rss_bytes(pid))
        for c in descendants(pid):
            seen[c] = max(seen.get(c, 0.0), cpu_seconds(c))
        time.sleep(0.2)
    wall = time.monotonic() - t0
    return {
        "cpu": (cpu_seconds(pid) - own0) / wall,
        # Descendants alive while sampled (iperf3 server + clients); rough: a short-lived
        # client's last CPU before it exited between samples is missed.
        "iperf3_cpu": sum(seen.values()) / wall,
        "rss": rss_bytes(pid),
        "rss_peak": rss_peak,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--quick", action="store_true", default=quick_default(), help="6 s per measurement"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds = 6.0
    if os.geteuid() != 0:
        print("bench_agent: the probe needs root; measuring with the probe off", file=sys.stderr)
        ENV["NETMESH_PROBE_MODE"] = "off"
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        log_dir = pathlib.Path(tmp)
        alone = AgentProcess("idle", "127.0.0.1", log_dir, env=ENV).start()
        try:
            wait_for(lambda: probe_known(alone), 60, interval=0.2, what="probe status")
            time.sleep(2)  # let start-up settle (a measurement, not a condition)
            idle = measure(alone, args.seconds)
        finally:
            alone.stop()
        a = AgentProcess("a", "127.0.0.1", log_dir, env=ENV)
        b = AgentProcess("b", "127.0.0.1", log_dir, env=ENV)
        a.env["NETMESH_STATIC_PEERS"] = ",".join(f"{n}={ad}:{p}" for n, ad, p in (a.peer, b.peer))
        b.env["NETMESH_STATIC_PEERS"] = a.env["NETMESH_STATIC_PEERS"]
        a.start()
        b.start()
        try:
            wait_for(lambda: probe_known(a), 60, interval=0.2, what="probe status")
            wait_for(
                lambda: "netmesh_path_success{" in a.metrics(), 30, interval=0.2, what="a test"
            )
            busy = measure(a, args.seconds)
            tests = a.metrics().count("netmesh_path_tests_total{")
        finally:
            a.stop()
            b.stop()
    mode = ENV["NETMESH_PROBE_MODE"]
    for what, m in (("idle (alone, no tests)", idle), ("testing (a test every 2 s)", busy)):
        rows.append(
            Row(
                f"agent RSS {what}, probe {mode}",
                f"{m['rss'] / MiB:.1f} MiB (peak {m['rss_peak'] / MiB:.1f})",
                goal="<= 80 MB",
                met=m["rss_peak"] <= 80e6,
                value=m["rss_peak"],
                unit="bytes",
            )
        )
        rows.append(
            Row(
                f"agent CPU {what} (1.0 = one core)",
                f"agent {m['cpu']:.3f}; its iperf3 processes ~{m['iperf3_cpu']:.3f}",
                value=m["cpu"],
            )
        )
    report(
        "agent",
        rows,
        params={"seconds": args.seconds, "probe_mode": mode, "test_series": tests},
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
