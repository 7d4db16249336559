"""The lab's pods as part of the lab object: checks at ``up``, the pods' workload, pod faults.

A mixin of ``Lab`` (lab/lab.py), apart because it is one concept: the pod
network's side of the lab (lab/pods.py lays it out, lab/overlay.py builds it,
lab/podfaults.py changes it).
"""

from __future__ import annotations

import ipaddress
import pathlib
import sys
import time
from typing import Any

from lab import overlay, podfaults, podnet, processes, shell, state
from lab.pods import LabPod, PodLayout
from lab.settings import LabSettings
from lab.state import LabError
from lab.topology import LabNode, Topology

TRAFFIC_PORT = 8080


def overlaps(a: str, b: str) -> bool:
    try:
        return ipaddress.IPv4Network(a).overlaps(ipaddress.IPv4Network(b))
    except ValueError:
        return False


class PodLab:
    """The pod methods of ``Lab``; the attributes and the two methods below are ``Lab``'s."""

    settings: LabSettings
    topo: Topology
    pods: PodLayout
    dir: pathlib.Path

    def _require_up(self) -> dict[str, Any]:
        raise NotImplementedError

    def save_state(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def _check_overlaps(self) -> None:
        """Refuse a subnet or pod CIDR that overlaps another running lab's (same state dir)."""
        mine = {"subnet": self.settings.subnet}
        if self.settings.pods:
            mine["pod_cidr"] = self.settings.pod_cidr
        for prefix in state.running_labs(self.settings.state_dir):
            if prefix == self.settings.prefix:
                continue
            other = state.read(state.state_path(self.settings.state_dir, prefix))
            theirs = {k: str(other.get(k) or "") for k in ("subnet", "pod_cidr")}
            for what, net in mine.items():
                for their_what, their_net in theirs.items():
                    if their_net and overlaps(net, their_net):
                        raise LabError(
                            f"{what} {net} overlaps the {their_what} {their_net} of lab "
                            f"{prefix!r}, which is up: choose another range or take it down"
                        )

    def _start_pod_traffic(self, lab_state: dict[str, Any]) -> None:
        """The seed's workload: an HTTP server in every pod, each pod calling all the others."""
        addresses = [p.address for p in self.pods.pods]
        for pod in self.pods.pods:
            lab_state["pids"][f"{pod.name}-traffic"] = processes.spawn(
                [
                    sys.executable,
                    "-m",
                    "lab.traffic",
                    "--listen",
                    pod.address,
                    "--port",
                    str(TRAFFIC_PORT),
                    "--peers",
                    ",".join(a for a in addresses if a != pod.address),
                ],
                lab_id=self.settings.prefix,
                netns=pod.netns,
                log_path=self.dir / "logs" / f"{pod.name.replace('/', '-')}-traffic.log",
                env={},
            )

    def local_cidrs(self, node: LabNode) -> str:
        """The addresses whose flows this node's probe counts: its own and its pods'."""
        cidrs = [f"{node.address}/32"]
        if self.pods.pods:
            cidrs.append(self.pods.of(node.name).cidr)
        return ",".join(cidrs)

    def _pod(self, name: str) -> LabPod:
        try:
            return self.pods.pod(name)
        except KeyError as exc:
            raise LabError(str(exc.args[0])) from None

    def inject_pod(self, pod_name: str, loss: float) -> LabPod:
        """Drop ``loss`` of the packets into one pod (receiver side); the pod."""
        lab_state = self._require_up()
        pod = self._pod(pod_name)
        podfaults.inject_pod_loss(pod, loss, netem=bool(lab_state["netem"]))
        lab_state["pod_faults"][pod.name] = {"loss": loss, "since": time.time()}
        self.save_state(lab_state)
        return pod

    def clear_pod(self, pod_name: str) -> str:
        lab_state = self._require_up()
        pod = self._pod(pod_name)
        podfaults.clear_pod(pod)
        lab_state["pod_faults"].pop(pod.name, None)
        self.save_state(lab_state)
        return pod.name

    def _clear_overlay_mtu(self, node: LabNode) -> None:
        podfaults.clear_overlay_mtu(self.pods, self.pods.of(node.name))
        if self.settings.pod_endpoints:
            for cmd in podnet.mtu_commands(self.pods.of(node.name), overlay.POD_MTU):
                shell.ok(cmd)

    def inject_overlay_mtu(self, node_name: str, mtu: int) -> LabNode:
        """Give one node's overlay devices and pods ``mtu`` (the encapsulation mismatch)."""
        lab_state = self._require_up()
        if not self.pods.pods:
            raise LabError("this lab has no pods (start it with `netmesh-lab up --pods P`)")
        try:
            node = self.topo.node(node_name)
        except KeyError as exc:
            raise LabError(str(exc.args[0])) from None
        try:
            podfaults.set_overlay_mtu(self.pods, self.pods.of(node.name), mtu)
            if self.settings.pod_endpoints:  # the node's pod-network endpoint too (lab/podnet.py)
                podnet.set_mtu(self.pods.of(node.name), mtu)
        except BaseException:
            self._clear_overlay_mtu(node)
            raise
        lab_state["overlay_faults"][node.name] = {"mtu": mtu, "since": time.time()}
        self.save_state(lab_state)
        return node
