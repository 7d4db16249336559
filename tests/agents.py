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
    "NETMESH_BANDWIDTH_BUDGET": "1",  # tests back to back (the default spaces them)
    "NETMESH_CONNECT_TIMEOUT": "1",
    "NETMESH_REPORT_INTERVAL": "1",
    "NETMESH_REPORT_TIMEOUT": "1",
    "NETMESH_LOG_LEVEL": "debug",
}


def http_get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


class ServiceProcess:
    """A long-running process with its own environment and log file; its group dies at stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: pathlib.Path,
        env: Mapping[str, str] | None = None,
        *,
        log_name: str = "",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_dir / f"{log_name or name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped = False

    def start(self) -> ServiceProcess:
        self.stopped = False
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def check(self) -> bool:
        """Raise with the log tail if the process died on its own; True otherwise."""
        if not self.stopped and self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log_tail()}")
        return True

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        self.stopped = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def start_service(
    name: str, argv: Sequence[str], log_dir: pathlib.Path, env: Mapping[str, str] | None = None
) -> ServiceProcess:
    return ServiceProcess(name, argv, log_dir, env).start()


class AgentProcess(ServiceProcess):
    """One ``python -m agent`` with its own ports (loopback addresses or network namespaces)."""

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
        self.address = address
        self.http_port = free_port(address)
        self.iperf3_port = free_port(address)
        super().__init__(
            name,
            [*prefix, sys.executable, "-m", "agent"],
            log_dir,
            {
                **FAST,
                "NETMESH_NODE_NAME": name,
                "NETMESH_BIND_ADDRESS": address,
                "NETMESH_HTTP_PORT": str(self.http_port),
                "NETMESH_IPERF3_PORT": str(self.iperf3_port),
                **(env or {}),
            },
            log_name=f"agent-{name}",
        )
        if peers:
            self.env["NETMESH_STATIC_PEERS"] = ",".join(f"{n}={a}:{p}" for n, a, p in peers)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.http_port}"

    @property
    def peer(self) -> tuple[str, str, int]:
        return (self.name, self.address, self.iperf3_port)

    def start(self) -> AgentProcess:
        super().start()
        wait_for(self._healthy, 15, what=f"agent {self.name} /healthz")
        return self

    def _healthy(self) -> bool:
        self.check()
        try:
            return "ok" in http_get(self.url + "/healthz", timeout=0.5)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        return http_get(self.url + "/metrics")

    def report(self) -> dict[str, Any]:
        return dict(json.loads(http_get(self.url + "/api/v1/report")))


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
