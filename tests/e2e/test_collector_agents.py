"""Real agents on loopback addresses report to a real collector (static mode).

Two ``netmesh-agent`` processes (127.0.0.2, 127.0.0.3) run real iperf3 tests
against each other and push reports to a ``netmesh-collector`` process on
127.0.0.1. The collector's /metrics must hold both directions for TCP and
UDP and pass ``promtool check metrics``; a collector restart must lose
nothing that matters (the matrix refills from the next reports); a stopped
agent's series must disappear after the report TTL. Traffic stays on loopback.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.agents import ServiceProcess, promtool_check
from tests.helpers import free_port, wait_for

BIN = pathlib.Path(sys.executable).parent
TTL = 4.0

pytestmark = pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return str(resp.read().decode())


def console_script(
    name: str, program: str, env: dict[str, str], log_dir: pathlib.Path
) -> ServiceProcess:
    """A netmesh console script from this venv as a service process."""
    return ServiceProcess(name, [str(BIN / program)], log_dir, env)


class Mesh:
    def __init__(self, tmp: pathlib.Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.collector = self._collector()
        self.agents = {
            name: console_script(
                f"agent-{name}",
                "netmesh-agent",
                {
                    "NETMESH_NODE_NAME": name,
                    "NETMESH_BIND_ADDRESS": address,
                    "NETMESH_HTTP_PORT": str(free_port(address)),
                    "NETMESH_IPERF3_PORT": str(free_port(address)),
                    "NETMESH_COLLECTOR_URL": self.url,
                    "NETMESH_TEST_DURATION": "1",
                    "NETMESH_OMIT_SECONDS": "0",
                    "NETMESH_GUARD_SECONDS": "1",
                    "NETMESH_BANDWIDTH_BUDGET": "1",
                    "NETMESH_REPORT_INTERVAL": "1",
                    "NETMESH_REPORT_TIMEOUT": "1",
                    "NETMESH_CONNECT_TIMEOUT": "1",
                    "NETMESH_UDP_BITRATE": "50M",
                    "NETMESH_PROBE_MODE": "off",  # both agents share one kernel here
                },
                tmp,
            )
            for name, address in (("node-a", "127.0.0.2"), ("node-b", "127.0.0.3"))
        }

    def _collector(self) -> ServiceProcess:
        return console_script(
            "collector",
            "netmesh-collector",
            {
                "NETMESH_BIND_ADDRESS": "127.0.0.1",
                "NETMESH_PORT": str(self.port),
                "NETMESH_REPORT_TTL": str(TTL),
                "NETMESH_STALE_AFTER": "2",
                "NETMESH_EXPIRY_INTERVAL": "0.2",
            },
            self.tmp,
        )

    def restart_collector(self) -> None:
        self.collector.stop()
        self.collector = self._collector().start()

    def get(self, path: str) -> str | None:
        self.collector.check()
        for agent in self.agents.values():
            agent.check()
        try:
            return _get(self.url + path)
        except (urllib.error.URLError, OSError):
            return None

    def logs(self) -> str:
        procs = [self.collector, *self.agents.values()]
        return "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in procs)


@pytest.fixture
def mesh(tmp_path: pathlib.Path) -> Iterator[Mesh]:
    m = Mesh(tmp_path)
    m.collector.start()
    wait_for(lambda: m.get("/healthz"), 15, what="collector /healthz")
    for agent in m.agents.values():
        agent.start()
    try:
        yield m
    finally:
        for agent in m.agents.values():
            agent.stop()
        m.collector.stop()


PAIRS = [(s, d, p) for s, d in (("node-a", "node-b"), ("node-b", "node-a")) for p in ("tcp", "udp")]


def _all_paths_ok(mesh: Mesh) -> str | None:
    text = mesh.get("/metrics")
    if text is None:
        return None
    for s, d, p in PAIRS:
        line = (
            f'netmesh_path_success{{source_node="{s}",destination_node="{d}",protocol="{p}",'
            'network="host"} 1'
        )
        if line not in text:
            return None
    return text


def _matrix_full(mesh: Mesh) -> bool:
    body = mesh.get("/api/v1/matrix")
    if body is None:
        return False
    paths = {(p["source"], p["destination"], p["protocol"]) for p in json.loads(body)["paths"]}
    return set(PAIRS) <= paths


def test_two_real_agents_through_a_real_collector(mesh: Mesh) -> None:
    try:
        text = wait_for(lambda: _all_paths_ok(mesh), 40, 0.25, "both directions, TCP and UDP")
        assert promtool_check(text) == "", promtool_check(text)
        for node in ("node-a", "node-b"):
            assert f'netmesh_agent_up{{node="{node}"}} 1' in text
        nodes = json.loads(mesh.get("/api/v1/nodes") or "{}")
        assert [n["name"] for n in nodes["nodes"]] == ["node-a", "node-b"]

        # A restarted collector starts empty and refills from the agents' next reports.
        mesh.restart_collector()
        wait_for(lambda: mesh.get("/healthz"), 15, what="collector back")
        wait_for(lambda: _matrix_full(mesh), 30, 0.25, "the matrix to refill")
        wait_for(lambda: _all_paths_ok(mesh), 30, 0.25, "metrics after the restart")

        # A stopped agent disappears after the TTL (and its peer drops it too).
        mesh.agents["node-b"].stop()

        def b_gone() -> bool:
            text = mesh.get("/metrics") or ""
            return (
                'netmesh_agent_up{node="node-a"} 1' in text
                and 'source_node="node-b"' not in text
                and 'destination_node="node-b"' not in text
                and '{node="node-b"' not in text
            )

        wait_for(b_gone, TTL + 15, 0.25, "node-b's series to disappear")
        members = json.loads(mesh.get("/api/v1/nodes") or "{}")
        assert [n["name"] for n in members["nodes"]] == ["node-a"]
    except AssertionError:
        print(mesh.logs())
        raise
