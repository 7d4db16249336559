"""The lab as one object: up, down, status, inject, clear — with its state on disk.

``up`` first removes anything a crashed run left behind (namespaces, links,
processes carrying the lab's marker), then builds the network, starts the
collector on the bridge address and one agent (plus an HTTP traffic
generator) in every node namespace, and waits until every agent is a member.
Any failure on the way tears everything down again.

The lab runs authenticated: ``up`` writes a fresh random token (mode 0600) to
``<state dir>/<prefix>/auth-token`` and hands that file to the collector and
every agent (``NETMESH_AUTH_TOKEN_FILE``); ``down`` removes it.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from lab import faults, netns, processes
from lab.faults import Fault
from lab.settings import LabSettings
from lab.topology import LabNode, Topology, build

log = logging.getLogger(__name__)

T = TypeVar("T")

AGENT_HTTP_PORT = 9101
IPERF3_PORT = 5201
TRAFFIC_PORT = 8080

# `ip netns exec` gives the command a private mount namespace with a fresh
# /sys, without tracefs/debugfs; BCC needs them, so mount them in there (the
# mounts vanish with the process) and exec the agent.
WITH_TRACEFS = [
    "sh",
    "-c",
    "mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null; "
    'mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null; exec "$@"',
    "with-tracefs",
]


class LabError(RuntimeError):
    """The lab cannot do what was asked; the message says why and what to do."""


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (urllib.error.URLError, OSError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Lab:
    def __init__(self, settings: LabSettings) -> None:
        self.settings = settings
        self.topo: Topology = build(settings.prefix, settings.subnet, settings.nodes)
        self.dir = pathlib.Path(settings.state_dir) / settings.prefix
        self.state_path = self.dir / "state.json"
        self.token_path = self.dir / "auth-token"

    # ------------------------------------------------------------------ state
    @property
    def collector_url(self) -> str:
        return f"http://{self.topo.bridge_address}:{self.settings.collector_port}"

    def agent_url(self, node: LabNode) -> str:
        return f"http://{node.address}:{AGENT_HTTP_PORT}"

    def load_state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_path.read_text()))
        except (OSError, ValueError):
            return {}

    def save_state(self, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(self.state_path)

    def write_token(self) -> None:
        """A new random token for this lab, readable by root only."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.token_path.unlink(missing_ok=True)
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")

    def is_up(self) -> bool:
        return bool(self.load_state()) and bool(netns.leftovers(self.settings.prefix)[0])

    # ------------------------------------------------------------------ up / down
    def up(self, *, progress: Callable[[str], None] = lambda _m: None) -> None:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, tc, iptables)")
        if self.down():
            progress("removed leftovers of an earlier lab run")
        try:
            self._up(progress)
        except BaseException:
            progress("start-up failed; cleaning up")
            self.down()
            raise

    def _up(self, progress: Callable[[str], None]) -> None:
        s = self.settings
        progress(f"creating {s.nodes} namespaces on {s.subnet} (bridge {self.topo.bridge})")
        netns.create(self.topo, s.baseline_rate)
        netem = faults.netem_available()
        state: dict[str, Any] = {
            "prefix": s.prefix,
            "subnet": s.subnet,
            "baseline_bps": s.baseline_rate,
            "netem": netem,
            "collector_url": self.collector_url,
            "nodes": {n.name: {"netns": n.netns, "address": n.address} for n in self.topo.nodes},
            "pids": {},
            "faults": {},
            "created_at": time.time(),
        }
        self.save_state(state)
        self.write_token()
        logs = self.dir / "logs"
        py = sys.executable
        progress(f"starting the collector on {self.collector_url}")
        state["pids"]["collector"] = processes.spawn(
            [py, "-m", "collector"],
            lab_id=s.prefix,
            log_path=logs / "collector.log",
            env={
                "NETMESH_MODE": "static",
                "NETMESH_BIND_ADDRESS": self.topo.bridge_address,
                "NETMESH_PORT": str(s.collector_port),
                "NETMESH_REPORT_TTL": "30",
                "NETMESH_STALE_AFTER": "15",
                "NETMESH_AUTH_TOKEN_FILE": str(self.token_path),
            },
        )
        wait_until(lambda: get_json(self.collector_url + "/healthz"), 20, "the collector")
        peers = ",".join(n.address for n in self.topo.nodes)
        for node in self.topo.nodes:
            state["pids"][node.name] = processes.spawn(
                [*WITH_TRACEFS, py, "-m", "agent"],
                lab_id=s.prefix,
                netns=node.netns,
                log_path=logs / f"{node.name}.log",
                env=self.agent_env(node),
            )
            if s.traffic:
                others = ",".join(a for a in peers.split(",") if a != node.address)
                state["pids"][f"{node.name}-traffic"] = processes.spawn(
                    [
                        py,
                        "-m",
                        "lab.traffic",
                        "--listen",
                        node.address,
                        "--port",
                        str(TRAFFIC_PORT),
                        "--peers",
                        others,
                    ],
                    lab_id=s.prefix,
                    netns=node.netns,
                    log_path=logs / f"{node.name}-traffic.log",
                    env={},
                )
        self.save_state(state)
        progress(f"started {s.nodes} agents; waiting until all share one member list")
        wait_until(self._all_members, 60, "every agent to report and adopt the member list")
        progress(f"lab up: {s.nodes} nodes, netem {'available' if netem else 'missing'}")

    def agent_env(self, node: LabNode) -> dict[str, str]:
        s = self.settings
        return {
            "NETMESH_NODE_NAME": node.name,
            "NETMESH_BIND_ADDRESS": node.address,
            "NETMESH_HTTP_PORT": str(AGENT_HTTP_PORT),
            "NETMESH_IPERF3_PORT": str(IPERF3_PORT),
            "NETMESH_COLLECTOR_URL": self.collector_url,
            "NETMESH_AUTH_TOKEN_FILE": str(self.token_path),
            "NETMESH_REPORT_INTERVAL": str(s.report_interval),
            "NETMESH_REPORT_TIMEOUT": str(min(2.0, s.report_interval)),
            "NETMESH_TEST_DURATION": str(s.test_duration),
            "NETMESH_OMIT_SECONDS": str(s.omit_seconds),
            "NETMESH_GUARD_SECONDS": str(s.guard_seconds),
            "NETMESH_CONNECT_TIMEOUT": "1",
            "NETMESH_UDP_BITRATE": str(s.udp_bitrate),
            "NETMESH_CONCURRENCY": str(s.concurrency),
            "NETMESH_BANDWIDTH_BUDGET": str(s.bandwidth_budget),
            "NETMESH_PROBE_MODE": s.probe_mode,
            # One kernel, many "nodes": count only this node's flows.
            "NETMESH_PROBE_LOCAL_CIDRS": f"{node.address}/32",
            "NETMESH_PROBE_INTERVAL": "2",
            # The drop-reason probe follows the retransmission probe (same filter).
            "NETMESH_DROPS_MODE": "off" if s.probe_mode == "off" else "auto",
            "NETMESH_DROPS_INTERVAL": "2",
        }

    def _all_members(self) -> bool:
        """Every agent reported, and every agent plans with the same full member list.

        Until then agents' plans can differ and tests may collide ("busy").
        """
        data = get_json(self.collector_url + "/api/v1/nodes")
        items = [n for n in data["nodes"] if n.get("up") and n.get("member")]
        if {n["name"] for n in items} < {n.name for n in self.topo.nodes}:
            return False
        views = {(n["health"]["members"], n["health"]["epoch"]) for n in items}
        return views == {(self.settings.nodes, data["epoch"])}

    def down(self) -> list[str]:
        """Stop every lab process and remove every namespace and link; idempotent."""
        removed = []
        pids = processes.find(self.settings.prefix)
        if pids:
            processes.terminate(pids)
            removed.append(f"{len(pids)} processes")
        removed += netns.destroy(self.settings.prefix)
        if self.state_path.exists():
            self.state_path.unlink()
        self.token_path.unlink(missing_ok=True)
        return removed

    # ------------------------------------------------------------------ faults
    def _require_up(self) -> dict[str, Any]:
        state = self.load_state()
        if not state or not self.is_up():
            raise LabError(f"no lab {self.settings.prefix!r} is up: run `netmesh-lab up` first")
        return state

    def inject(self, node_name: str, fault: Fault) -> LabNode:
        state = self._require_up()
        try:
            node = self.topo.node(node_name)
        except KeyError as exc:
            raise LabError(str(exc.args[0])) from None
        faults.inject(
            node, fault, netem=bool(state["netem"]), baseline_bps=int(state["baseline_bps"])
        )
        state["faults"][node.name] = {**fault.to_json(), "since": time.time()}
        self.save_state(state)
        return node

    def clear(self, node_name: str | None = None) -> list[str]:
        state = self._require_up()
        targets = [self.topo.node(node_name)] if node_name else list(self.topo.nodes)
        for node in targets:
            faults.clear(node, baseline_bps=int(state["baseline_bps"]))
            state["faults"].pop(node.name, None)
        self.save_state(state)
        return [n.name for n in targets]

    def faults(self) -> dict[str, Any]:
        return dict(self.load_state().get("faults", {}))

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        state = self.load_state()
        ns, links = netns.leftovers(self.settings.prefix)
        pids = state.get("pids", {})
        return {
            "up": bool(state) and bool(ns),
            "namespaces": ns,
            "links": links,
            "processes": {name: processes.alive(pid) for name, pid in sorted(pids.items())},
            "stray_processes": len(processes.find(self.settings.prefix)),
            "faults": state.get("faults", {}),
            "netem": state.get("netem"),
            "collector_url": state.get("collector_url"),
        }
