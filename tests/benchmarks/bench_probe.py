"""Measure the retransmission probe: per-event cost in a retransmission storm, and memory.

Run as root from the repository root::

    .venv/bin/python tests/benchmarks/bench_probe.py

Prints a table (and bench-results/probe.json); asserts nothing about time.
Uses the e2e namespaces fixture (traffic stays inside its namespaces and on
loopback) and restores kernel.bpf_stats_enabled afterwards. ``--quick`` is
accepted (the storm is already short).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.probe import LoadedProbe, load_probe  # noqa: E402
from agent.probe_logic import STAT_EVENTS, ProbeConfig, parse_cidrs  # noqa: E402
from tests.benchmarks.benchlib import Row, quick_default, report  # noqa: E402
from tests.e2e.conftest import NetPair, make_pair  # noqa: E402
from tests.helpers import free_port, wait_for  # noqa: E402

MiB = 2**20


def prog_ids(probe: LoadedProbe) -> list[int]:
    ids = []
    for fd in probe.prog_fds():
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


def storm(pair: NetPair, probe: LoadedProbe, prog_id: int, *, offloads: bool) -> Row:
    pair.offloads(offloads)
    t0, c0 = bpf_stats(prog_id)
    e0 = probe.read()[1][STAT_EVENTS]
    out = pair.run(
        pair.a, "iperf3", "-c", pair.addr_b, "-p", "5201", "-t", "5", "-J", timeout=60
    ).stdout
    t1, c1 = bpf_stats(prog_id)
    e1 = probe.read()[1][STAT_EVENTS]
    result = json.loads(out)
    runs = c1 - c0
    ns = (t1 - t0) / max(runs, 1)
    return Row(
        f"probe cost per retransmission event (offloads {'on' if offloads else 'off'}, "
        "5% drop, 5 s storm)",
        f"{ns:.0f} ns per event; {runs} program runs ({runs / 5:.0f}/s), "
        f"counted skbs {e1 - e0}, iperf3 retransmits "
        f"{result['end']['sum_sent']['retransmits']}, {(t1 - t0) / 5e9 * 100:.4f}% of one CPU",
        goal="<= 100 ns",
        met=runs > 0 and ns <= 100,
        value=ns,
        unit="ns",
    )


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"^VmRSS:\s*(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 0


def agent_rss(probe_mode: str) -> tuple[float, str]:
    """RSS of a real agent process once its probe status is known (probe up or off)."""
    http_port, iperf_port = free_port(), free_port()
    log_path = pathlib.Path(f"/tmp/bench-probe-agent-{os.getpid()}-{probe_mode}.log")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NETMESH_NODE_NAME": socket.gethostname().split(".")[0] or "bench",
        "NETMESH_BIND_ADDRESS": "127.0.0.1",
        "NETMESH_HTTP_PORT": str(http_port),
        "NETMESH_IPERF3_PORT": str(iperf_port),
        "NETMESH_PROBE_MODE": probe_mode,
    }
    with log_path.open("wb") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def probe_known() -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{http_port}/metrics", timeout=1
                ) as r:
                    return b"netmesh_agent_probe_up{" in r.read()
            except OSError:
                return False

        wait_for(probe_known, 30, interval=0.2, what="agent probe status")
        time.sleep(1)  # let the first drains settle (measurement, not a condition)
        rss = rss_kib(agent.pid) / 1024
        lines = [ln for ln in log_path.read_text().splitlines() if "RSS MiB" in ln]
        return rss, lines[-1].split("; ", 1)[-1] if lines else ""
    finally:
        os.killpg(agent.pid, signal.SIGTERM)
        agent.wait(timeout=10)
        log_path.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=quick_default(),
        help="accepted; the run is short anyway",
    )
    parser.parse_args()
    if os.geteuid() != 0:
        print("bench_probe: needs root; skipped", file=sys.stderr)
        return 0
    started = time.monotonic()
    rows: list[Row] = []
    stats_path = "/proc/sys/kernel/bpf_stats_enabled"
    old = pathlib.Path(stats_path).read_text().strip()
    pathlib.Path(stats_path).write_text("1")
    pair = make_pair()
    try:
        t = time.monotonic()
        probe = load_probe(ProbeConfig(local_cidrs=parse_cidrs(["10.203.0.0/16"])))
        load_s = time.monotonic() - t
        rows.append(
            Row(
                f"probe load, mode {probe.mode} (checks + BTF + compile + attach)",
                f"{load_s:.2f} s; this process RSS MiB: "
                + ", ".join(f"{k} {v / MiB:.1f}" for k, v in probe.rss.items()),
                value=load_s,
                unit="s",
            )
        )
        [prog_id] = prog_ids(probe)
        pair.drop_tcp("5201", 0.05)
        pair.iperf3_server(5201)

        def listening() -> str:
            return pair.run(pair.b, "ss", "-Hltn", "sport = :5201").stdout.strip()

        wait_for(listening, 10, what="iperf3 server")
        rows.append(storm(pair, probe, prog_id, offloads=False))
        rows.append(storm(pair, probe, prog_id, offloads=True))
        t = time.monotonic()
        for _ in range(20):
            probe.read()
        drain = (time.monotonic() - t) / 20
        rows.append(
            Row("drain (read map + stats)", f"{drain * 1000:.2f} ms", value=drain, unit="s")
        )
        probe.close()
    finally:
        pair.cleanup()
        pathlib.Path(stats_path).write_text(old)
    for mode in ("off", "auto"):
        rss, stages = agent_rss(mode)
        rows.append(
            Row(
                f"agent steady RSS, probe_mode={mode}",
                f"{rss:.1f} MiB" + (f" (load stages: {stages})" if stages else ""),
                goal="<= 80 MB" if mode == "auto" else "",
                met=rss * MiB <= 80e6 if mode == "auto" else None,
                value=rss * MiB,
                unit="bytes",
            )
        )
    report("probe", rows, started=started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
