"""The lab as one object: up, down, status, inject, clear — with its state on disk.

``up`` first removes anything a crashed run left behind (namespaces, links,
processes carrying the lab's marker), then builds the network, starts the
collector on the bridge address and one agent (plus an HTTP traffic
generator) in every node namespace, and waits until every agent is a member.
Any failure on the way tears everything down again.

``up`` records the lab (settings, topology, pids) in ``<state dir>/<prefix>/state.json``
(lab.state); later commands load the running lab from there. Faults go on a
node (lab.faults), a rack's uplink or one node pair's link (lab.fabric).

The lab runs authenticated: ``up`` writes a fresh random token (mode 0600) to
``<state dir>/<prefix>/auth-token`` and hands that file to the collector and
every agent (``NETMESH_AUTH_TOKEN_FILE``); ``down`` removes it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from lab import (
    dns,
    fabric,
    faults,
    netns,
    overlay,
    podfaults,
    podnet,
    processes,
    service,
    state,
)
from lab.fabric import UplinkFault
from lab.faults import Fault
from lab.podlab import TRAFFIC_PORT, PodLab
from lab.pods import PodLayout, layout, pods_file_body
from lab.settings import LabSettings
from lab.state import LabError as LabError  # noqa: PLC0414 (re-exported)
from lab.topology import LabNode, Topology, build

log = logging.getLogger(__name__)

T = TypeVar("T")

AGENT_HTTP_PORT = 9101
IPERF3_PORT = 5201

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


class Lab(PodLab):
    def __init__(self, settings: LabSettings) -> None:
        self.settings = settings
        self.topo: Topology = build(
            settings.prefix, settings.subnet, settings.nodes, settings.racks
        )
        self.pods: PodLayout = layout(self.topo, settings.pods, settings.pod_cidr)
        self.state_path = state.state_path(settings.state_dir, settings.prefix)
        self.dir = self.state_path.parent
        self.token_path = self.dir / "auth-token"
        self.pods_file = self.dir / "pods.json"

    # ------------------------------------------------------------------ state
    @property
    def collector_url(self) -> str:
        return f"http://{self.topo.bridge_address}:{self.settings.collector_port}"

    def agent_url(self, node: LabNode) -> str:
        return f"http://{node.address}:{AGENT_HTTP_PORT}"

    def load_state(self) -> dict[str, Any]:
        return state.read(self.state_path)

    def save_state(self, data: dict[str, Any]) -> None:
        state.write(self.state_path, data)

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
    def up(
        self,
        *,
        progress: Callable[[str], None] = lambda _m: None,
        services: bool = True,
        faults: Mapping[str, Fault] | None = None,
    ) -> None:
        """Build the lab; ``services=False`` builds only the network (namespaces, links,
        shaping, token) and starts no collector, agent or traffic process -- for running
        them some other way, e.g. as containers (tests/image). ``faults`` (node name ->
        fault) are injected once the network is up and before any agent starts: a fault
        the agents never saw the node without."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, tc, iptables)")
        self._check_overlaps()
        if self.settings.pod_endpoints:
            try:
                podnet.endpoints(self.pods)
            except ValueError as exc:
                raise LabError(f"{exc}, or --pod-endpoints false") from None
        if self.down():
            progress("removed leftovers of an earlier lab run")
        try:
            self._up(progress, services, dict(faults or {}))
        except BaseException:
            progress("start-up failed; cleaning up")
            self.down()
            raise

    def _up(self, progress: Callable[[str], None], services: bool, early: dict[str, Fault]) -> None:
        s = self.settings
        racks = f", {s.racks} racks" if s.racks else ""
        progress(f"creating {s.nodes} namespaces on {s.subnet} (bridge {self.topo.bridge}{racks})")
        netns.create(self.topo, s.baseline_rate)
        if self.pods.pods:
            progress(
                f"creating {len(self.pods.pods)} pods on {s.pod_cidr} "
                f"(VXLAN overlay, pod MTU {overlay.POD_MTU})"
            )
            overlay.create(self.pods)
            if s.pod_endpoints:
                podnet.create(self.pods)
        if s.service_check:
            service.create(
                self.topo,
                port=s.collector_port,
                backend_address=self.topo.bridge_address,
                backend_port=s.collector_port,
            )
        netem = faults.netem_available()
        lab_state: dict[str, Any] = {
            "prefix": s.prefix,
            "subnet": s.subnet,
            "settings": state.settings_to_json(s),
            "baseline_bps": s.baseline_rate,
            "netem": netem,
            "collector_url": self.collector_url,
            "service": service.target(self.topo, s.collector_port) if s.service_check else "",
            "racks": s.racks,
            "nodes": {
                n.name: {"netns": n.netns, "address": n.address, "rack": n.rack_label}
                for n in self.topo.nodes
            },
            "pod_cidr": s.pod_cidr if self.pods.pods else "",
            "pods": {
                p.name: {"netns": p.netns, "address": p.address, "node": p.node}
                for p in self.pods.pods
            },
            "pids": {},
            "faults": {},
            "pod_faults": {},
            "overlay_faults": {},
            "uplink_faults": {},
            "link_faults": {},
            "created_at": time.time(),
        }
        self.save_state(lab_state)
        self.write_token()
        for name, fault in early.items():
            node = self.inject(name, fault)
            progress(f"injected on {node.name} before the agents start: {fault.describe()}")
            lab_state = self.load_state()
        if not services:
            progress(f"lab network up: {s.nodes} nodes, no services started")
            return
        logs = self.dir / "logs"
        py = sys.executable
        collector_env = {}
        if self.pods.pods:
            self.pods_file.write_text(json.dumps(pods_file_body(self.pods), indent=2))
            collector_env["NETMESH_PODS_FILE"] = str(self.pods_file)
        progress(f"starting the collector on {self.collector_url}")
        lab_state["pids"]["collector"] = processes.spawn(
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
                **collector_env,
            },
        )
        wait_until(lambda: get_json(self.collector_url + "/healthz"), 20, "the collector")
        if s.dns_server:
            progress(f"starting the lab's DNS server on {self.topo.bridge_address}:53")
            try:
                lab_state["pids"]["dns"] = dns.start(
                    prefix=s.prefix, address=self.topo.bridge_address, log_path=logs / "dns.log"
                )
            except dns.DnsUnavailable as exc:
                raise LabError(f"{exc}, or start the lab with --dns-server false") from None
            for node in self.topo.nodes:
                dns.write_resolv_conf(self.resolv_conf(node), self.topo.bridge_address)
        peers = ",".join(n.address for n in self.topo.nodes)
        for node in self.topo.nodes:
            lab_state["pids"][node.name] = processes.spawn(
                [*WITH_TRACEFS, py, "-m", "agent"],
                lab_id=s.prefix,
                netns=node.netns,
                log_path=logs / f"{node.name}.log",
                env=self.agent_env(node),
            )
            if s.traffic and not self.pods.pods:
                others = ",".join(a for a in peers.split(",") if a != node.address)
                lab_state["pids"][f"{node.name}-traffic"] = processes.spawn(
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
        if s.traffic:
            self._start_pod_traffic(lab_state)
        if self.pods.pods and s.pod_endpoints:
            progress(f"starting {s.nodes} pod-network endpoints")
            for node in self.topo.nodes:
                pod = podnet.endpoint_of(self.pods.of(node.name))
                lab_state["pids"][f"{node.name}-podnet"] = processes.spawn(
                    [py, "-m", "agent"],
                    lab_id=s.prefix,
                    netns=pod.netns,
                    log_path=logs / f"{node.name}-podnet.log",
                    env=podnet.endpoint_env(self.agent_env(node), pod),
                )
        self.save_state(lab_state)
        progress(f"started {s.nodes} agents; waiting until all share one member list")
        wait_until(self._all_members, 60, "every agent to report and adopt the member list")
        progress(f"lab up: {s.nodes} nodes, netem {'available' if netem else 'missing'}")

    def resolv_conf(self, node: LabNode) -> pathlib.Path:
        """The node's resolver configuration (its agent's DNS check reads it)."""
        return self.dir / "resolv" / f"{node.name}.conf"

    def agent_env(self, node: LabNode) -> dict[str, str]:
        s = self.settings
        # The agent's static-mode labels and link speed (ignored by an agent that lacks
        # them: unknown NETMESH_ variables are not read).
        extra = {"NETMESH_LINK_SPEED": str(s.baseline_rate)} if s.baseline_rate else {}
        if node.rack:
            extra["NETMESH_LABELS"] = f"rack={node.rack_label}"
        if s.dns_server:
            extra.update(
                NETMESH_DNS_NAME=dns.lab_name(s.prefix),
                NETMESH_DNS_RESOLV_CONF=str(self.resolv_conf(node)),
                NETMESH_DNS_INTERVAL=str(s.dns_interval),
                NETMESH_DNS_TIMEOUT=str(min(2.0, s.dns_interval)),
                NETMESH_DNS_WINDOW=str(6 * s.dns_interval),
            )
        if s.service_check:
            extra.update(
                NETMESH_SERVICE_TARGET=service.target(self.topo, s.collector_port),
                NETMESH_SERVICE_INTERVAL=str(s.service_interval),
                NETMESH_SERVICE_TIMEOUT=str(min(2.0, s.service_interval)),
                NETMESH_SERVICE_WINDOW=str(6 * s.service_interval),
            )
        return {
            **extra,
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
            "NETMESH_PROBE_LOCAL_CIDRS": self.local_cidrs(node),
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
        shutil.rmtree(self.dir / "resolv", ignore_errors=True)
        self.token_path.unlink(missing_ok=True)
        self.pods_file.unlink(missing_ok=True)
        return removed

    # ------------------------------------------------------------------ faults
    def _require_up(self) -> dict[str, Any]:
        data = self.load_state()
        if not data or not self.is_up():
            raise LabError(f"no lab {self.settings.prefix!r} is up: run `netmesh-lab up` first")
        for key in ("faults", "uplink_faults", "link_faults", "pod_faults", "overlay_faults"):
            data.setdefault(key, {})
        return data

    def inject(self, node_name: str, fault: Fault) -> LabNode:
        lab_state = self._require_up()
        try:
            node = self.topo.node(node_name)
        except KeyError as exc:
            raise LabError(str(exc.args[0])) from None
        faults.inject(
            node,
            fault,
            netem=bool(lab_state["netem"]),
            baseline_bps=int(lab_state["baseline_bps"]),
            service_match=service.match(self.topo, self.settings.collector_port)
            if lab_state.get("service")
            else None,
        )
        lab_state["faults"][node.name] = {**fault.to_json(), "since": time.time()}
        self.save_state(lab_state)
        return node

    def _rack(self, name: str) -> int:
        try:
            return self.topo.rack(name)
        except KeyError as exc:
            raise LabError(str(exc.args[0])) from None

    def _apply_uplinks(self, recorded: dict[str, Any]) -> None:
        fabric.apply_uplinks(
            self.topo,
            {self._rack(name): UplinkFault.from_json(f) for name, f in recorded.items()},
        )

    def inject_uplink(self, rack_name: str, fault: UplinkFault) -> str:
        """Put ``fault`` on a rack's uplink (replacing an earlier one there); the rack's name."""
        if fault.empty():
            raise LabError("nothing to inject on an uplink: give --loss and/or --rate")
        lab_state = self._require_up()
        rack = f"rack-{self._rack(rack_name)}"
        recorded = {**lab_state["uplink_faults"], rack: {**fault.to_json(), "since": time.time()}}
        try:
            self._apply_uplinks(recorded)
        except BaseException:
            self._apply_uplinks(lab_state["uplink_faults"])
            raise
        lab_state["uplink_faults"] = recorded
        self.save_state(lab_state)
        return rack

    def _link(self, text: str) -> tuple[LabNode, LabNode, str]:
        a, b = fabric.parse_link(self.topo, text)
        return a, b, fabric.link_key(a, b)

    def _apply_links(self, recorded: dict[str, Any], nodes: set[str]) -> None:
        losses = {key: float(f["loss"]) for key, f in recorded.items()}
        fabric.apply_links(self.topo, losses, [self.topo.node(n) for n in sorted(nodes)])

    def inject_link(self, text: str, loss: float) -> str:
        """Drop ``loss`` of the packets between two nodes, both ways; the link's name."""
        lab_state = self._require_up()
        a, b, key = self._link(text)
        recorded = {**lab_state["link_faults"], key: {"loss": loss, "since": time.time()}}
        self._apply_links(recorded, {a.name, b.name})
        lab_state["link_faults"] = recorded
        self.save_state(lab_state)
        return key

    def clear(self, node_name: str | None = None) -> list[str]:
        """Clear one node's fault, or every fault (nodes, uplinks, links) without a name."""
        lab_state = self._require_up()
        try:
            targets = [self.topo.node(node_name)] if node_name else list(self.topo.nodes)
        except KeyError as exc:
            raise LabError(str(exc.args[0])) from None
        for node in targets:
            faults.clear(node, baseline_bps=int(lab_state["baseline_bps"]))
            lab_state["faults"].pop(node.name, None)
            if self.pods.pods and lab_state["overlay_faults"].pop(node.name, None):
                self._clear_overlay_mtu(node)
        cleared = [n.name for n in targets]
        if node_name is None:
            for pod in self.pods.pods:
                podfaults.clear_pod(pod)
            cleared += sorted(lab_state["pod_faults"])
            lab_state["pod_faults"] = {}
            if self.topo.racks:
                self._apply_uplinks({})
            ends = {n for key in lab_state["link_faults"] for n in key.split("|")}
            self._apply_links({}, ends)
            cleared += sorted(lab_state["uplink_faults"]) + sorted(lab_state["link_faults"])
            lab_state["uplink_faults"], lab_state["link_faults"] = {}, {}
        self.save_state(lab_state)
        return cleared

    def clear_uplink(self, rack_name: str) -> str:
        lab_state = self._require_up()
        rack = f"rack-{self._rack(rack_name)}"
        lab_state["uplink_faults"].pop(rack, None)
        self._apply_uplinks(lab_state["uplink_faults"])
        self.save_state(lab_state)
        return rack

    def clear_link(self, text: str) -> str:
        lab_state = self._require_up()
        a, b, key = self._link(text)
        lab_state["link_faults"].pop(key, None)
        self._apply_links(lab_state["link_faults"], {a.name, b.name})
        self.save_state(lab_state)
        return key

    def faults(self) -> dict[str, Any]:
        return dict(self.load_state().get("faults", {}))

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        lab_state = self.load_state()
        ns, links = netns.leftovers(self.settings.prefix)
        pids = lab_state.get("pids", {})
        own, strays = processes.split_own(set(pids.values()), processes.find(self.settings.prefix))
        return {
            "up": bool(lab_state) and bool(ns),
            "settings": dataclasses.asdict(self.settings) if lab_state else None,
            "racks": {
                f"rack-{k}": [n.name for n in self.topo.rack_nodes(k)]
                for k in range(1, self.topo.racks + 1)
            },
            "namespaces": ns,
            "links": links,
            "processes": {name: processes.alive(pid) for name, pid in sorted(pids.items())},
            # The lab's processes (agents, collector, traffic) with their children (iperf3).
            "lab_processes": len(own),
            "stray_processes": strays,
            "faults": lab_state.get("faults", {}),
            "uplink_faults": lab_state.get("uplink_faults", {}),
            "link_faults": lab_state.get("link_faults", {}),
            "pods": sorted(lab_state.get("pods", {})),
            "pod_cidr": lab_state.get("pod_cidr", ""),
            "pod_faults": lab_state.get("pod_faults", {}),
            "overlay_faults": lab_state.get("overlay_faults", {}),
            "netem": lab_state.get("netem"),
            "collector_url": lab_state.get("collector_url"),
        }
