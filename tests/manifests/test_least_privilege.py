"""Least privilege, measured: the real agent under ``capsh`` with the DaemonSet's capabilities.

A container runtime starts the agent (uid 0) with bounding = permitted =
effective = the capabilities the DaemonSet adds, no inheritable or ambient
ones, and no_new_privs (``allowPrivilegeEscalation: false``). ``capsh``
reproduces exactly that: it drops every other capability from the bounding
set, clears the inheritable set, sets no_new_privs and execs the agent as
root, which then holds only the bounding set.

- with exactly the DaemonSet's set the eBPF probe loads
  (``netmesh_agent_probe_up 1``) and the agent tests its peers;
- with one of them missing the probe reports up 0 and the agent still tests;
- and the kernel itself refuses each smaller set (the agent's own privilege
  check bypassed), so the set is not larger than it must be.

Traffic: loopback only (127.0.77.0/24). Root only: capsh needs CAP_SETPCAP.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.probe import kernel_features
from agent.probe_logic import ProbeUnavailable, find_kernel_headers
from tests.agents import AgentProcess
from tests.helpers import wait_for
from tests.manifests.conftest import Render

pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parents[2]
CAP_NUMBERS = {"BPF": 39, "PERFMON": 38, "SYS_ADMIN": 21, "SYS_RESOURCE": 24}


def _need_machine() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (capsh drops capabilities from root); CI runs as root")
    if shutil.which("capsh") is None:
        pytest.fail("capsh is missing (libcap2-bin, scripts/install-deps.sh installs it)")
    feats = kernel_features()
    if not (feats.tracepoint or feats.kprobes):
        pytest.skip("no tracefs tracepoint tcp:tcp_retransmit_skb and no kprobes here")
    try:
        find_kernel_headers(os.uname().release, os.environ)
    except ProbeUnavailable as exc:
        pytest.skip(f"no kernel headers for BCC: {exc}")


def daemonset_capabilities(default: Render) -> set[str]:
    (c,) = default.one("DaemonSet", "netmesh-agent")["spec"]["template"]["spec"]["containers"]
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    return set(c["securityContext"]["capabilities"]["add"])


def _bounding_set() -> list[str]:
    out = subprocess.run(["capsh", "--print"], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("Bounding set ="))
    return [c for c in line.split("=", 1)[1].strip().split(",") if c]


def capsh_prefix(keep: set[str]) -> list[str]:
    """Run a command as root holding exactly ``keep`` (Kubernetes names: BPF, PERFMON)."""
    wanted = {"cap_" + k.lower() for k in keep}
    bounding = _bounding_set()
    missing = wanted - set(bounding)
    if missing:
        pytest.skip(f"this machine's bounding set lacks {sorted(missing)}: cannot grant them")
    drop = ",".join(c for c in bounding if c not in wanted)
    return ["capsh", f"--drop={drop}", "--inh=", "--no-new-privs", "--shell=/usr/bin/env", "--"]


def mask(keep: set[str]) -> int:
    return sum(1 << CAP_NUMBERS[k] for k in keep)


def cap_eff(pid: int) -> int:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^CapEff:\s*([0-9a-f]+)", status, re.M).group(1), 16)  # type: ignore[union-attr]


def _samples(agent: AgentProcess, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for fam in text_string_to_metric_families(agent.metrics())
        for s in fam.samples
        if s.name == name
    ]


def probe_up(agent: AgentProcess) -> tuple[float, dict[str, str]] | None:
    found = _samples(agent, "netmesh_agent_probe_up")
    return (found[0][1], found[0][0]) if found else None


def ok_tests(agent: AgentProcess) -> float:
    return sum(
        v
        for labels, v in _samples(agent, "netmesh_path_tests_total")
        if labels.get("result") == "ok" and labels.get("source_node") == agent.name
    )


@pytest.fixture(scope="module")
def cap_sets(default: Render) -> dict[str, set[str]]:
    _need_machine()
    full = daemonset_capabilities(default)
    sets = {"daemonset": full}
    for cap in sorted(full):
        sets[f"without-{cap.lower()}"] = full - {cap}
    return sets


@pytest.fixture(scope="module")
def mesh(
    cap_sets: dict[str, set[str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, AgentProcess]]:
    """One agent per capability set, all testing each other over loopback."""
    log_dir = tmp_path_factory.mktemp("capsh-agents")
    env = {
        "NETMESH_PROTOCOLS": "tcp",
        "NETMESH_PROBE_INTERVAL": "0.5",
        "NETMESH_LOG_LEVEL": "info",
    }
    agents = {
        name: AgentProcess(name, f"127.0.77.{i}", log_dir, env=env, prefix=capsh_prefix(keep))
        for i, (name, keep) in enumerate(sorted(cap_sets.items()), start=1)
    }
    peers = [a.peer for a in agents.values()]
    for a in agents.values():
        a.env["NETMESH_STATIC_PEERS"] = ",".join(f"{n}={addr}:{p}" for n, addr, p in peers)
    try:
        for a in agents.values():
            a.start()
        yield agents
    finally:
        for a in agents.values():
            a.stop()


def test_agents_hold_exactly_their_capabilities(
    mesh: dict[str, AgentProcess], cap_sets: dict[str, set[str]]
) -> None:
    for name, agent in mesh.items():
        assert agent.proc is not None
        assert cap_eff(agent.proc.pid) == mask(cap_sets[name]), name


def test_daemonset_capabilities_load_the_probe_and_test(mesh: dict[str, AgentProcess]) -> None:
    agent = mesh["daemonset"]
    up = wait_for(
        lambda: (p := probe_up(agent)) is not None and p[0] == 1 and p,
        60,
        interval=0.2,
        what=f"probe up with the DaemonSet's capabilities; log:\n{agent.log_tail()}",
    )
    assert up[1]["mode"] in {"tracepoint", "kprobe"}
    wait_for(lambda: ok_tests(agent) >= 1, 30, interval=0.2, what="a successful test")


def test_fewer_capabilities_probe_down_but_still_testing(mesh: dict[str, AgentProcess]) -> None:
    for name, agent in mesh.items():
        if name == "daemonset":
            continue
        up = wait_for(lambda a=agent: probe_up(a), 30, interval=0.2, what=f"{name} probe status")
        assert up[0] == 0, f"{name}: the probe loaded with fewer capabilities"
        assert up[1]["mode"] == "none" and "privileged" in up[1]["reason"], up
        wait_for(lambda a=agent: ok_tests(a) >= 1, 30, interval=0.2, what=f"{name} tests ok")


LOAD = """
from agent.probe import load_probe
from agent.probe_logic import ProbeConfig, ProbeUnavailable
try:
    # cap_eff: skip the agent's own privilege check; let the kernel decide.
    load_probe(ProbeConfig(), cap_eff=-1).close()
    print("LOADED")
except ProbeUnavailable as exc:
    print("REFUSED", exc)
"""


def test_the_kernel_refuses_each_smaller_set(cap_sets: dict[str, set[str]]) -> None:
    for name, keep in cap_sets.items():
        if name == "daemonset":
            continue
        proc = subprocess.run(
            [*capsh_prefix(keep), sys.executable, "-c", LOAD],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("REFUSED"), f"{name} ({sorted(keep)}): {proc.stdout}"
        assert "not permitted" in proc.stderr.lower() or "privilege" in proc.stdout.lower()
        # the reason names what is missing (agent/probe_errors.py), not headers or seccomp
        for cap in {"BPF", "PERFMON"} - keep:
            assert f"lacks CAP_{cap}" in proc.stdout, f"{name}: {proc.stdout}"
