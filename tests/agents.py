"""Run real agents as subprocesses for tests (loopback addresses or network namespaces)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import free_port, wait_for

# Short slots so that a full sweep of two nodes takes a few seconds.
FAST = {
    "NETMESH_TEST_DURATION": "1",
    "NETMESH_OMIT_SECONDS": "0",
    "NETMESH_GUARD_SECONDS": "1",
    "NETMESH_CONNECT_TIMEOUT": "1",
    "NETMESH_REPORT_INTERVAL": "1",
    "NETMESH_REPORT_TIMEOUT": "1",
    "NETMESH_LOG_LEVEL": "debug",
}


def http_get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


class AgentProcess:
    """One ``python -m agent`` process with its own ports, log file and environment."""

    def __init__(
        self,
        name: str,
        address: str,
        log_dir: pathlib.Path,
        *,
        peers: Sequence[tuple[str, str, int]] = (),
        env: Mapping[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.address = address
        self.http_port = free_port(address)
        self.iperf3_port = free_port(address)
        self.log_path = log_dir / f"agent-{name}.log"
        self.env = {
            **os.environ,
            **FAST,
            "NETMESH_NODE_NAME": name,
            "NETMESH_BIND_ADDRESS": address,
            "NETMESH_HTTP_PORT": str(self.http_port),
            "NETMESH_IPERF3_PORT": str(self.iperf3_port),
            **(env or {}),
        }
        if peers:
            self.env["NETMESH_STATIC_PEERS"] = ",".join(f"{n}={a}:{p}" for n, a, p in peers)
        self.prefix = list(prefix)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.http_port}"

    @property
    def peer(self) -> tuple[str, str, int]:
        return (self.name, self.address, self.iperf3_port)

    def start(self) -> AgentProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "agent"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(self._healthy, 15, what=f"agent {self.name} /healthz")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"agent {self.name} exited: {self.log_tail()}")
        try:
            return "ok" in http_get(self.url + "/healthz", timeout=0.5)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        return http_get(self.url + "/metrics")

    def report(self) -> dict[str, Any]:
        return dict(json.loads(http_get(self.url + "/api/v1/report")))

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def sample(metrics_text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format (labels must all match)."""
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def promtool_check(metrics_text: str) -> str:
    """Run ``promtool check metrics``; return its complaints ('' when clean)."""
    proc = subprocess.run(
        ["promtool", "check", "metrics"],
        input=metrics_text.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    out = (proc.stdout + proc.stderr).decode().strip()
    return out if proc.returncode != 0 or out else ""
