"""`netmesh-check` against the lab (root), run as a user runs it: a subprocess, exit codes.

Three nodes with the agents' light tier and a small iperf3 budget. The check
exits 0 on the clean lab, 1 once 30 % receiver-side loss into one node is
injected (the collector's RCA names it), and 2 against a URL where nothing
listens. Outputs are printed (pytest -s) for the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from lab.faults import Fault
from lab.lab import Lab
from tests.e2e.labs import ROOT, lab_fixture
from tests.e2e.labup import LIGHT_TIER
from tests.e2e.rca_lab import suspects, wait_verdict
from tests.helpers import free_port

PREFIX = f"nmc{os.getpid() % 10000}"
SUBNET = f"10.{180 + os.getpid() % 15}.7.0/24"


lab = lab_fixture(nodes=3, prefix=PREFIX, subnet=SUBNET, **LIGHT_TIER)


def netmesh_check(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    """``netmesh-check ARGS`` with this tree first on the path (what the console script runs)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "collector.check", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    print(f"$ netmesh-check {' '.join(args)}   # exit {proc.returncode}")
    print(proc.stderr + proc.stdout)
    return proc


def lab_args(lab: Lab) -> list[str]:
    return ["--lab", "--lab-prefix", lab.settings.prefix, "--lab-state-dir", lab.settings.state_dir]


def test_clean_lab_exits_0(lab: Lab) -> None:
    # The light tier needs a window or two before every pair has data and the RCA says ok.
    wait_verdict(lab, lambda b: b.get("verdict") == "ok", 90, "the RCA's verdict ok", 1.0)
    proc = netmesh_check(*lab_args(lab), "--timeout", "60")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exit 0 (healthy)" in proc.stdout and "verdict: ok" in proc.stdout
    assert "from \\ to" in proc.stdout
    body = json.loads(netmesh_check(*lab_args(lab), "--json").stdout)
    assert body["exit_code"] == 0 and len(body["matrix"]) == 6


def test_lossy_node_exits_1_and_is_named(lab: Lab) -> None:
    victim = lab.topo.nodes[1].name
    lab.inject(victim, Fault(loss=0.3))
    try:
        named, _ = wait_verdict(lab, suspects, 90, f"the RCA to name {victim}", 1.0)
        assert suspects(named)[0] == victim
        started = time.monotonic()
        proc = netmesh_check("--collector", lab.collector_url, "--timeout", "60", "--json")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        body = json.loads(proc.stdout)
        assert body["exit_code"] == 1 and body["verdict"] == "suspects"
        assert body["suspects"][0]["node"] == victim
        assert time.monotonic() - started < 60
        text = netmesh_check("--collector", lab.collector_url, "--timeout", "60")
        assert text.returncode == 1 and f"suspect {victim}:" in text.stdout
    finally:
        lab.clear(victim)


def test_nothing_listening_exits_2_with_the_reason() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    proc = netmesh_check("--collector", url, "--timeout", "3", "--request-timeout", "1")
    assert proc.returncode == 2
    assert "unreachable" in proc.stderr and "cannot tell" in proc.stderr
    assert time.monotonic() - started < 20
