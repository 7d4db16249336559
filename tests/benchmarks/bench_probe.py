"""Measure both eBPF programs: cost per event under load (retransmit and drop storms), memory.

Run as root from the repository root::

    .venv/bin/python tests/benchmarks/bench_probe.py

Prints a table (and bench-results/probe.json); asserts nothing about time.
Each cost is shown next to an empty program's on the same tracepoint during the
same load (tests/benchmarks/probecost.py): on this VM that floor is a large share.
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
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.drops import load_drops  # noqa: E402
from agent.drops_logic import DropsConfig  # noqa: E402
from agent.probe import LoadedProbe, load_probe  # noqa: E402
from agent.probe_logic import STAT_EVENTS, ProbeConfig, parse_cidrs  # noqa: E402
from tests.benchmarks.benchlib import Row, quick_default, report  # noqa: E402
from tests.benchmarks.probecost import EmptyProgram, measure, prog_ids_of  # noqa: E402
from tests.e2e.conftest import NetPair, make_pair  # noqa: E402
from tests.helpers import free_port, wait_for  # noqa: E402

MiB = 2**20


def prog_ids(probe: LoadedProbe) -> list[int]:
    return prog_ids_of(probe.prog_fds())


def storm(pair: NetPair, probe: LoadedProbe, prog_id: int, *, offloads: bool) -> Row:
    pair.offloads(offloads)
    e0 = probe.read()[1][STAT_EVENTS]
    out: list[str] = []

    def load() -> float:
        out.append(
            pair.run(
                pair.a, "iperf3", "-c", pair.addr_b, "-p", "5201", "-t", "5", "-J", timeout=60
            ).stdout
        )
        return 5.0

    floor = EmptyProgram("tcp:tcp_retransmit_skb")
    try:
        cost = measure(prog_id, floor, load)
    finally:
        floor.close()
    e1 = probe.read()[1][STAT_EVENTS]
    result = json.loads(out[0])
    return Row(
        f"retransmission program per event (offloads {'on' if offloads else 'off'}, "
        "5% drop, 5 s storm)",
        f"{cost.text()}; counted skbs {e1 - e0}, iperf3 retransmits "
        f"{result['end']['sum_sent']['retransmits']}",
        goal="<= 100 ns",
        met=cost.runs > 0 and cost.ns <= 100,
        value=cost.ns,
        unit="ns",
        extra={"floor_ns": cost.floor_ns, "own_ns": cost.own_ns, "runs": cost.runs},
    )


def udp_flood(pair: NetPair, port: int, count: int) -> float:
    """``count`` small UDP datagrams from a to b's ``port``; returns the seconds it took."""
    code = (
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "t = time.monotonic()\n"
        f"for _ in range({count}):\n"
        f"    s.sendto(b'x' * 64, ('{pair.addr_b}', {port}))\n"
        "print(time.monotonic() - t)\n"
    )
    return float(pair.run(pair.a, "python3", "-c", code, timeout=120).stdout.strip())


def drop_storms(pair: NetPair) -> list[Row]:
    """The drop program under three loads: iptables drops, closed-port drops, TCP at full speed."""
    drops = load_drops(DropsConfig(local_cidrs=parse_cidrs(["10.203.0.0/16"])))
    rows: list[Row] = []
    try:
        [prog_id] = prog_ids_of(drops.prog_fds())
        floor = EmptyProgram("skb:kfree_skb")
        try:
            pair.iptables(pair.b, ["INPUT", "-p", "udp", "--dport", "9999", "-j", "DROP"])
            loads: list[tuple[str, Callable[[], float]]] = [
                (
                    "every event a loss: iptables DROP of a UDP flood",
                    lambda: udp_flood(pair, 9999, 200_000),
                ),
                (
                    "every event a loss: UDP flood to a closed port",
                    lambda: udp_flood(pair, 9, 200_000),
                ),
                (
                    "TCP at full speed (iperf3 5 s, no loss rule): the frees kfree_skb sees",
                    lambda: _iperf3(pair),
                ),
            ]
            for what, load in loads:
                cost = measure(prog_id, floor, load)
                _, reasons, _ = drops.read()
                rows.append(
                    Row(
                        f"drop program per event ({what})",
                        cost.text() + f"; reasons so far {dict(sorted(reasons.items()))}",
                        goal="<= 100 ns",
                        met=cost.runs > 0 and cost.ns <= 100,
                        value=cost.ns,
                        unit="ns",
                        extra={"floor_ns": cost.floor_ns, "own_ns": cost.own_ns, "runs": cost.runs},
                    )
                )
        finally:
            floor.close()
            pair.remove_rules()
    finally:
        drops.close()
    return rows


def _iperf3(pair: NetPair) -> float:
    pair.run(pair.a, "iperf3", "-c", pair.addr_b, "-p", "5202", "-t", "5", timeout=60)
    return 5.0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"^VmRSS:\s*(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 0


def agent_rss(probe_mode: str, drops_mode: str | None = None) -> tuple[float, str]:
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
        "NETMESH_DROPS_MODE": probe_mode if drops_mode is None else drops_mode,
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
                    body = r.read()
                    return b"netmesh_agent_probe_up{" in body and b"netmesh_agent_drops_up{" in body
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
        pair.remove_rules()
        pair.iperf3_server(5202)
        rows += drop_storms(pair)
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
    for probe_mode, drops_mode in (("off", "off"), ("auto", "off"), ("auto", "auto")):
        rss, stages = agent_rss(probe_mode, drops_mode)
        both = drops_mode == "auto"
        rows.append(
            Row(
                f"agent steady RSS, probe_mode={probe_mode}, drops_mode={drops_mode}"
                + (" (both programs loaded)" if both else ""),
                f"{rss:.1f} MiB"
                + (f" (retransmission probe load stages: {stages})" if stages else ""),
                goal="<= 80 MB" if both else "",
                met=rss * MiB <= 80e6 if both else None,
                value=rss * MiB,
                unit="bytes",
            )
        )
    report("probe", rows, started=started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
